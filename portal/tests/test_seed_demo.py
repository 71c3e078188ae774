import pytest
from django.apps import apps
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def _counts():
    return {
        m._meta.label: m.objects.count()
        for m in apps.get_models()
        if m._meta.app_label in {"portal", "billing", "authorization", "gifts"}
        and m._meta.label != "portal.AuditEntry"
    }


def test_seed_demo_twice_gives_the_same_data(capsys):
    call_command("seed_demo")
    first = _counts()
    out = capsys.readouterr().out
    assert "dev " in out and "creator " in out and "demo-pass-2026" in out
    call_command("seed_demo")
    assert _counts() == first
    assert first["portal.Organization"] >= 4 and first["portal.Creator"] >= 2
