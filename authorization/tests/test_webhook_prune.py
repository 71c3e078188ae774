"""The daily prune of finished webhook deliveries: old finished rows go, in primary-key batches;
recent ones and those still pending or being retried stay; reruns change nothing."""

import datetime as dt

import pytest
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from authorization import tasks
from authorization.models import WebhookDelivery
from authorization.services_webhooks import webhook_deliveries_prune
from authorization.tests.conftest import days
from authorization.tests.factories import WebhookDeliveryFactory
from portal.celery import app, collect_beat_schedule

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 4, 40, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def retention(settings):
    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 30


def finished(age: dt.timedelta, **kwargs) -> WebhookDelivery:
    return WebhookDeliveryFactory(created_at=NOW - age, finished_at=NOW - age, **kwargs)


def remaining_ids() -> set[int]:
    return set(WebhookDelivery.objects.values_list("pk", flat=True))


def test_old_finished_deliveries_go_recent_and_unfinished_ones_stay():
    # given
    old_delivered = finished(days(31))
    old_failed = finished(days(40), status=WebhookDelivery.Status.FAILED, response_status=500)
    recent = finished(days(29))
    pending = WebhookDeliveryFactory(
        created_at=NOW - days(90), finished_at=None, status=WebhookDelivery.Status.PENDING, attempts=0
    )
    # created long ago, last attempt failed an hour ago: the task may still retry it
    retrying = WebhookDeliveryFactory(
        created_at=NOW - days(60),
        finished_at=NOW - dt.timedelta(hours=1),
        status=WebhookDelivery.Status.FAILED,
    )

    # when
    deleted = webhook_deliveries_prune(now=NOW)

    # then
    assert deleted == 2
    assert remaining_ids() == {recent.pk, pending.pk, retrying.pk}
    assert not WebhookDelivery.objects.filter(pk__in=[old_delivered.pk, old_failed.pk]).exists()


def test_retention_comes_from_the_setting(settings):
    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 7
    eight_days = finished(days(8))
    six_days = finished(days(6))

    assert webhook_deliveries_prune(now=NOW) == 1
    assert remaining_ids() == {six_days.pk}
    assert not WebhookDelivery.objects.filter(pk=eight_days.pk).exists()


def test_a_retention_under_one_day_is_refused(settings):
    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 0
    finished(days(2))

    with pytest.raises(ImproperlyConfigured):
        webhook_deliveries_prune(now=NOW)
    assert WebhookDelivery.objects.count() == 1


def test_batches_delete_by_primary_key_until_none_is_left():
    # given seven old rows and one recent one
    old = [finished(days(31 + i)) for i in range(7)]
    recent = finished(days(1))

    # when pruning three at a time
    with CaptureQueriesContext(connection) as queries:
        deleted = webhook_deliveries_prune(now=NOW, batch_size=3)

    # then three batches (3 + 3 + 1) ran, each a DELETE of listed primary keys, and the loop ended
    assert deleted == len(old) == 7
    assert remaining_ids() == {recent.pk}
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3
    assert all('"authorization_webhookdelivery"."id" IN (' in sql for sql in deletes)


def test_running_twice_is_harmless():
    finished(days(45))
    keep = finished(days(3))

    assert webhook_deliveries_prune(now=NOW, batch_size=2) == 1
    assert webhook_deliveries_prune(now=NOW, batch_size=2) == 0
    assert remaining_ids() == {keep.pk}


def test_the_batch_query_reads_the_partial_index():
    finished(days(31))
    with CaptureQueriesContext(connection) as queries:
        webhook_deliveries_prune(now=NOW)
    select = next(q["sql"] for q in queries if q["sql"].startswith("SELECT"))

    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned otherwise
        cur.execute(f"EXPLAIN {select}")
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "authz_delivery_finished" in plan


def test_task_prunes_with_the_real_clock():
    # the task passes no ``now``: rows are aged against the real time
    finished_long_ago = WebhookDeliveryFactory(
        created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), finished_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )
    fresh = WebhookDeliveryFactory()

    assert tasks.webhook_deliveries_prune.apply().get() == 1
    assert tasks.webhook_deliveries_prune.apply().get() == 0
    assert remaining_ids() == {fresh.pk}
    assert finished_long_ago.pk not in remaining_ids()


def test_beat_runs_the_prune_daily():
    entry = collect_beat_schedule()["authorization-webhook-deliveries-prune"]
    app.loader.import_default_modules()

    assert entry["task"] == "authorization.tasks.webhook_deliveries_prune"
    assert entry["task"] in app.tasks
    assert entry["schedule"] == crontab(hour=4, minute=40)
