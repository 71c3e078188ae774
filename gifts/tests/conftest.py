import pytest


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Uploads go to a per-test private folder (never the web root, never the dev data)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "private")},
        },
    }
    yield
