"""The daily prune of the email outbox: sent emails past the retention go, in primary-key
batches; recent ones, pending ones and failed ones (for staff to see and resend) stay; the
notices stay in the inbox; reruns change nothing."""

import datetime as dt

import pytest
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import tasks
from portal.celery import app, collect_beat_schedule
from portal.models import Notification, OutboundEmail
from portal.services import outbound_emails_prune
from portal.tests.factories import OutboundEmailFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 4, 50, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def retention(settings):
    settings.EMAIL_OUTBOX_RETENTION_DAYS = 30


def sent(age: dt.timedelta, now=NOW) -> OutboundEmail:
    return OutboundEmailFactory(
        created_at=now - age, next_attempt_at=now - age, state="sent", attempts=1, sent_at=now - age
    )


def remaining_ids() -> set[int]:
    return set(OutboundEmail.objects.values_list("pk", flat=True))


def test_old_sent_emails_go_recent_pending_and_failed_ones_stay():
    old = [sent(31 * DAY), sent(90 * DAY)]
    recent = sent(29 * DAY)
    pending = OutboundEmailFactory(created_at=NOW - 60 * DAY, next_attempt_at=NOW - 60 * DAY, attempts=3)
    failed = OutboundEmailFactory(created_at=NOW - 60 * DAY, next_attempt_at=NOW, state="failed", attempts=16)

    assert outbound_emails_prune(now=NOW) == 2

    assert remaining_ids() == {recent.pk, pending.pk, failed.pk}
    assert Notification.objects.filter(pk__in=[e.notification_id for e in old]).count() == 2


def test_retention_comes_from_the_setting(settings):
    settings.EMAIL_OUTBOX_RETENTION_DAYS = 7
    sent(8 * DAY)
    six_days = sent(6 * DAY)

    assert outbound_emails_prune(now=NOW) == 1
    assert remaining_ids() == {six_days.pk}


def test_a_retention_under_one_day_is_refused(settings):
    settings.EMAIL_OUTBOX_RETENTION_DAYS = 0
    sent(2 * DAY)

    with pytest.raises(ImproperlyConfigured):
        outbound_emails_prune(now=NOW)
    assert OutboundEmail.objects.count() == 1


def test_batches_delete_by_primary_key_and_a_rerun_deletes_nothing():
    old = [sent((31 + i) * DAY) for i in range(7)]
    recent = sent(DAY)

    with CaptureQueriesContext(connection) as queries:
        deleted = outbound_emails_prune(now=NOW, batch_size=3)

    assert deleted == len(old) == 7
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3 and all('"portal_outboundemail"."id" IN (' in sql for sql in deletes)
    assert outbound_emails_prune(now=NOW, batch_size=3) == 0
    assert remaining_ids() == {recent.pk}


def test_the_batch_query_reads_the_partial_index():
    sent(31 * DAY)
    with CaptureQueriesContext(connection) as queries:
        outbound_emails_prune(now=NOW)
    select = next(q["sql"] for q in queries if q["sql"].startswith("SELECT"))

    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned otherwise
        cur.execute(f"EXPLAIN {select}")
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "portal_outbound_email_sent" in plan


def test_task_prunes_with_the_real_clock():
    long_ago = sent(400 * DAY, now=timezone.now())
    fresh = sent(DAY, now=timezone.now())

    assert tasks.outbound_emails_prune.apply().get() == 1
    assert remaining_ids() == {fresh.pk}
    assert long_ago.pk not in remaining_ids()


def test_beat_runs_the_prune_daily():
    entry = collect_beat_schedule()["portal-outbound-emails-prune"]
    app.loader.import_default_modules()

    assert entry["task"] == tasks.outbound_emails_prune.name == "portal.tasks.outbound_emails_prune"
    assert entry["task"] in app.tasks
    assert entry["schedule"] == crontab(hour=4, minute=50)
