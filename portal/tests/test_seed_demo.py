import datetime as dt

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db.models import Max
from django.utils import timezone

from billing.models import UsageHourly

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


def _seed_demo_ago(monkeypatch, ago: dt.timedelta) -> None:
    """seed_demo as if it had run ``ago`` before now; the real clock is back afterwards."""
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - ago)
    call_command("seed_demo")
    monkeypatch.setattr(timezone, "now", real_now)


def test_seed_demo_again_hours_later_adds_the_new_hours_instead_of_failing(monkeypatch):
    # Given a demo seeded three hours ago (the data of `scripts/run` is kept across runs)
    _seed_demo_ago(monkeypatch, dt.timedelta(hours=3))
    last_before = UsageHourly.objects.aggregate(last=Max("hour"))["last"]
    calls_before = {u.pk: u.calls for u in UsageHourly.objects.all()}
    # When it is seeded again now, its current month's usage batch has more hours in it: that
    # body must not reuse the earlier batch id (FEE-2.3 ingest refuses that: BATCH-ID-REUSED)
    call_command("seed_demo")
    # Then the usage runs up to the new hour, and the hours sent again were replaced, not added
    assert UsageHourly.objects.aggregate(last=Max("hour"))["last"] > last_before
    calls_after = {u.pk: u.calls for u in UsageHourly.objects.all()}
    assert {pk: calls_after[pk] for pk in calls_before} == calls_before


def test_seed_demo_again_a_month_later_runs_and_keeps_the_ledger_in_agreement(monkeypatch):
    # Given a demo seeded 40 days ago (another month: other usage months, other settlements)
    _seed_demo_ago(monkeypatch, dt.timedelta(days=40))
    # When it is seeded again today, then it runs, and every wallet agrees with its ledger
    call_command("seed_demo")
    call_command("verify_ledger")
