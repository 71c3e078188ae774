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


@pytest.fixture
def migration_data():
    """Rows the data migrations seed (staff groups with their permissions, the GIFT rule
    version). A transactional test that ran earlier flushed them; put them back, idempotently."""
    import datetime as dt
    import importlib

    from django.contrib.auth.models import Group, Permission

    from gifts.models import RuleVersion

    staff_groups = importlib.import_module("portal.migrations.0002_staff_groups")
    for name, app_labels in staff_groups.GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label__in=app_labels),
            *Permission.objects.filter(
                content_type__app_label="portal", codename__in=staff_groups.SHARED_VIEW
            ),
        )
    RuleVersion.objects.get_or_create(
        code="GIFT",
        version="2022-07-01",
        defaults={"title": "【全球购】赠品管理规范", "effective_from": dt.date(2022, 7, 1)},
    )
