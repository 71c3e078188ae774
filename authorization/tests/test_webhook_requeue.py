"""GRANT-11, nothing lost on a crash: a delivery the broker lost (still pending long after it was
queued) is re-queued by the sweeper once per stale period, a fresh or finished one never; two
sweeps (sequential or concurrent) queue it once; after REQUEUE_LIMIT re-queues it is failed;
a late original task after a re-queue neither sends again nor undoes a delivered row."""

import datetime as dt
import threading

import pytest
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from authorization import locks, tasks, webhooks
from authorization.models import OrganizationWebhook, WebhookDelivery
from authorization.services_webhooks import (
    REQUEUE_LIMIT,
    webhook_deliveries_requeue_stale,
    webhook_delivery_send,
    webhook_retry_schedule,
)
from authorization.tests.factories import WebhookDeliveryFactory
from portal.celery import app, collect_beat_schedule

NOW = dt.datetime(2026, 3, 10, 4, 40, tzinfo=dt.UTC)
STALE = dt.timedelta(minutes=30)


@pytest.fixture(autouse=True)
def stale_minutes(settings):
    settings.WEBHOOK_DELIVERY_STALE_MINUTES = 30


def pending(age: dt.timedelta, **kwargs) -> WebhookDelivery:
    return WebhookDeliveryFactory(
        created_at=NOW - age,
        finished_at=None,
        status=WebhookDelivery.Status.PENDING,
        attempts=0,
        response_status=None,
        **kwargs,
    )


def send(delivery: WebhookDelivery) -> int | None:
    """One run of the delivery task for this row (the original or a re-queue)."""
    return webhook_delivery_send(
        organization_id=delivery.organization_id, payload=delivery.payload, delivery_id=delivery.pk
    )


def queued_ids(webhook_calls) -> list[int]:
    return [kwargs["delivery_id"] for _args, kwargs in webhook_calls]


# --- what is re-queued ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_grant_11_a_stale_pending_delivery_is_requeued_once(
    webhook_calls, django_capture_on_commit_callbacks
):
    # given a delivery queued an hour ago that no task ever picked up
    lost = pending(dt.timedelta(hours=1))

    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = webhook_deliveries_requeue_stale(now=NOW)

    # then it is queued again, after commit, with its own payload, and the row says so
    assert result == {"requeued": 1, "failed": 0}
    assert len(callbacks) == 1
    assert webhook_calls == [((lost.organization_id, lost.payload), {"delivery_id": lost.pk})]
    lost.refresh_from_db()
    assert (lost.status, lost.requeues, lost.requeued_at) == (WebhookDelivery.Status.PENDING, 1, NOW)
    assert lost.finished_at is None and lost.error == ""


@pytest.mark.django_db
def test_grant_11_a_fresh_pending_delivery_is_left_to_its_task(
    webhook_calls, django_capture_on_commit_callbacks
):
    # given deliveries queued within the stale period (the task may still be retrying them)
    fresh = pending(STALE - dt.timedelta(seconds=1))
    just_requeued = pending(dt.timedelta(hours=5), requeues=1, requeued_at=NOW - dt.timedelta(minutes=10))

    with django_capture_on_commit_callbacks(execute=True):
        result = webhook_deliveries_requeue_stale(now=NOW)

    assert result == {"requeued": 0, "failed": 0}
    assert webhook_calls == []
    fresh.refresh_from_db()
    just_requeued.refresh_from_db()
    assert (fresh.requeues, fresh.requeued_at) == (0, None)
    assert (just_requeued.requeues, just_requeued.requeued_at) == (1, NOW - dt.timedelta(minutes=10))


@pytest.mark.django_db
def test_grant_11_delivered_and_failed_deliveries_are_never_requeued(
    webhook_calls, django_capture_on_commit_callbacks
):
    delivered = WebhookDeliveryFactory(created_at=NOW - dt.timedelta(days=2))
    failed = WebhookDeliveryFactory(
        created_at=NOW - dt.timedelta(days=2), status=WebhookDelivery.Status.FAILED, error="refused"
    )

    with django_capture_on_commit_callbacks(execute=True):
        result = webhook_deliveries_requeue_stale(now=NOW, max_requeues=0)

    assert result == {"requeued": 0, "failed": 0}
    assert webhook_calls == []
    for row, status, error in ((delivered, "delivered", ""), (failed, "failed", "refused")):
        row.refresh_from_db()
        assert (row.status, row.error, row.requeues, row.requeued_at) == (status, error, 0, None)


@pytest.mark.django_db
def test_grant_11_two_sweeps_queue_a_lost_delivery_once(webhook_calls, django_capture_on_commit_callbacks):
    lost = pending(dt.timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        first = webhook_deliveries_requeue_stale(now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        second = webhook_deliveries_requeue_stale(now=NOW + dt.timedelta(minutes=5))

    assert (first["requeued"], second["requeued"]) == (1, 0)
    assert queued_ids(webhook_calls) == [lost.pk]
    lost.refresh_from_db()
    assert (lost.requeues, lost.requeued_at) == (1, NOW)


@pytest.mark.django_db
def test_grant_11_still_lost_after_another_stale_period_it_is_requeued_again(
    webhook_calls, django_capture_on_commit_callbacks
):
    lost = pending(dt.timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliveries_requeue_stale(now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliveries_requeue_stale(now=NOW + STALE + dt.timedelta(seconds=1))

    assert queued_ids(webhook_calls) == [lost.pk, lost.pk]
    lost.refresh_from_db()
    assert (lost.requeues, lost.requeued_at) == (2, NOW + STALE + dt.timedelta(seconds=1))


@pytest.mark.django_db
def test_grant_11_after_the_last_requeue_the_delivery_is_failed_with_a_translatable_error(
    webhook_calls, django_capture_on_commit_callbacks
):
    # given a delivery lost every time it was queued
    lost = pending(dt.timedelta(hours=1))
    now = NOW
    for _ in range(REQUEUE_LIMIT):
        with django_capture_on_commit_callbacks(execute=True):
            assert webhook_deliveries_requeue_stale(now=now) == {"requeued": 1, "failed": 0}
        now += STALE + dt.timedelta(minutes=1)

    # when the sweep finds it stale once more
    with django_capture_on_commit_callbacks(execute=True), translation.override("en"):
        result = webhook_deliveries_requeue_stale(now=now)

    # then it is given up, not queued a fourth time, and later sweeps leave it alone
    assert result == {"requeued": 0, "failed": 1}
    assert queued_ids(webhook_calls) == [lost.pk] * REQUEUE_LIMIT
    lost.refresh_from_db()
    assert (lost.status, lost.requeues, lost.finished_at) == ("failed", REQUEUE_LIMIT, now)
    gave_up = f"The delivery task was lost and re-queued {REQUEUE_LIMIT} times without being sent. Gave up."
    assert lost.error == gave_up
    assert webhook_deliveries_requeue_stale(now=now + dt.timedelta(days=1)) == {"requeued": 0, "failed": 0}


@pytest.mark.django_db
def test_grant_11_batches_requeue_every_stale_row_once(webhook_calls, django_capture_on_commit_callbacks):
    lost = [pending(dt.timedelta(hours=1, minutes=i)) for i in range(5)]

    with django_capture_on_commit_callbacks(execute=True):
        result = webhook_deliveries_requeue_stale(now=NOW, batch_size=2)

    assert result == {"requeued": 5, "failed": 0}
    assert sorted(queued_ids(webhook_calls)) == sorted(d.pk for d in lost)
    assert set(WebhookDelivery.objects.values_list("requeues", flat=True)) == {1}


@pytest.mark.django_db
def test_grant_11_stale_period_must_exceed_the_tasks_retry_schedule(settings, webhook_calls):
    # 8 retries, backoff up to 2**7 s, 60 s a attempt: 255 s of waits + 9 attempts
    assert webhook_retry_schedule() == dt.timedelta(seconds=255 + 9 * 60)
    settings.WEBHOOK_DELIVERY_STALE_MINUTES = 10
    pending(dt.timedelta(hours=1))

    with pytest.raises(ImproperlyConfigured):
        webhook_deliveries_requeue_stale(now=NOW)
    assert WebhookDelivery.objects.get().requeues == 0 and webhook_calls == []


@pytest.mark.django_db
def test_grant_11_the_sweep_reads_the_partial_pending_index():
    pending(dt.timedelta(hours=1))
    with CaptureQueriesContext(connection) as queries:
        locks.lock_stale_deliveries(queued_before=NOW - STALE, limit=10)
    (select,) = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]

    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned otherwise
        cur.execute(f"EXPLAIN {select}")
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "authz_delivery_pending_queued" in plan
    assert "SKIP LOCKED" in select


# --- a late original and a re-queue ---------------------------------------------------------------


@pytest.fixture
def hooked(shop):
    return OrganizationWebhook.objects.create(
        organization=shop, url="https://hooks.example.com/g", secret="x"
    )


@pytest.mark.django_db
def test_grant_11_a_late_original_after_the_requeue_delivered_sends_nothing(shop, hooked, monkeypatch):
    # given the re-queued task delivered the event
    sent = []
    monkeypatch.setattr(webhooks, "post", lambda **kwargs: sent.append(kwargs["payload"]) or 204)
    delivery = pending(dt.timedelta(hours=1), organization=shop)
    assert send(delivery) == 204

    # when the original task turns up late, even after the webhook was disabled
    again = send(delivery)
    OrganizationWebhook.objects.filter(pk=hooked.pk).update(is_active=False)
    disabled = send(delivery)

    # then the receiver heard once and the row still says delivered, with one attempt
    assert (again, disabled) == (None, None)
    assert sent == [delivery.payload]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 204)
    assert delivery.error == ""


@pytest.mark.django_db
def test_grant_11_a_failure_of_a_duplicate_does_not_undo_a_delivery(shop, hooked, monkeypatch):
    # given two runs of one delivery in flight: one delivers while the other's POST fails
    delivery = pending(dt.timedelta(hours=1), organization=shop)

    def refuse_after_the_other_delivered(**kwargs):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.DELIVERED, response_status=204, finished_at=NOW
        )
        raise ConnectionRefusedError("down")

    monkeypatch.setattr(webhooks, "post", refuse_after_the_other_delivered)

    # when the failing one records its outcome, it finds the row delivered
    with pytest.raises(OSError):
        send(delivery)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_status, delivery.error) == ("delivered", 204, "")


@pytest.mark.django_db
def test_grant_11_a_failed_delivery_is_still_retried(shop, hooked, monkeypatch):
    # the guard is on delivered rows only: the task's own retry of a failed attempt still sends
    delivery = WebhookDeliveryFactory(
        organization=shop, status=WebhookDelivery.Status.FAILED, response_status=503, error="busy"
    )
    monkeypatch.setattr(webhooks, "post", lambda **kwargs: 204)

    assert send(delivery) == 204
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == ("delivered", 2, "")


# --- concurrency (real threads, PostgreSQL) -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_grant_11_concurrent_sweeps_queue_a_lost_delivery_once(monkeypatch):
    # given a lost delivery, and a first sweep paused while it holds the row lock
    lost = pending(dt.timedelta(hours=1))
    queued = []
    monkeypatch.setattr(tasks.webhook_deliver, "delay", lambda *a, **k: queued.append(k["delivery_id"]))
    locked, release = threading.Event(), threading.Event()
    real_lock = locks.lock_stale_deliveries

    def lock_then_pause(**kwargs):
        rows = real_lock(**kwargs)
        if threading.current_thread().name == "first":
            locked.set()
            release.wait(timeout=10)
        return rows

    monkeypatch.setattr(locks, "lock_stale_deliveries", lock_then_pause)
    results = {}

    def first_sweep():
        try:
            results["first"] = webhook_deliveries_requeue_stale(now=NOW)
        finally:
            connection.close()

    first = threading.Thread(target=first_sweep, name="first")
    first.start()
    assert locked.wait(timeout=10)

    # when a second sweep runs meanwhile, then after the first commits, a third
    results["second"] = webhook_deliveries_requeue_stale(now=NOW)
    release.set()
    first.join(timeout=30)
    results["third"] = webhook_deliveries_requeue_stale(now=NOW + dt.timedelta(minutes=5))

    # then only the first queued it: the second skipped the locked row, the third found it fresh
    assert results == {
        "first": {"requeued": 1, "failed": 0},
        "second": {"requeued": 0, "failed": 0},
        "third": {"requeued": 0, "failed": 0},
    }
    assert queued == [lost.pk]
    lost.refresh_from_db()
    assert (lost.requeues, lost.requeued_at) == (1, NOW)


# --- task and beat --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_grant_11_task_sweeps_with_the_real_clock(webhook_calls, django_capture_on_commit_callbacks):
    lost = WebhookDeliveryFactory(
        created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        finished_at=None,
        status=WebhookDelivery.Status.PENDING,
    )
    pending_now = WebhookDeliveryFactory(finished_at=None, status=WebhookDelivery.Status.PENDING)

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.webhook_deliveries_requeue_stale.apply().get() == {"requeued": 1, "failed": 0}
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.webhook_deliveries_requeue_stale.apply().get() == {"requeued": 0, "failed": 0}
    assert queued_ids(webhook_calls) == [lost.pk]
    assert WebhookDelivery.objects.get(pk=pending_now.pk).requeues == 0


def test_grant_11_beat_runs_the_sweep_every_five_minutes():
    entry = collect_beat_schedule()["authorization-webhook-deliveries-requeue-stale"]
    app.loader.import_default_modules()

    assert entry["task"] == "authorization.tasks.webhook_deliveries_requeue_stale"
    assert entry["task"] in app.tasks
    assert entry["schedule"] == crontab(minute="*/5")


# --- two runs at the same moment: the sending lease ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_grant_11_two_runs_at_the_same_moment_send_once(shop, hooked, monkeypatch):
    # given a delivery whose first run is in the middle of its POST
    delivery = pending(dt.timedelta(hours=1), organization=shop)
    sent, posting, answer = [], threading.Event(), threading.Event()

    def slow_post(**kwargs):
        sent.append(kwargs["payload"])
        posting.set()
        answer.wait(timeout=10)
        return 204

    monkeypatch.setattr(webhooks, "post", slow_post)
    first = {}

    def run_first():
        try:
            first["status"] = send(delivery)
        finally:
            connection.close()

    thread = threading.Thread(target=run_first)
    thread.start()
    assert posting.wait(timeout=10)

    # when a second run (a late original, or a re-queue) starts meanwhile
    second = send(delivery)
    answer.set()
    thread.join(timeout=10)

    # then only the first POSTed; the row is delivered after one attempt, its lease released
    assert (first["status"], second) == (204, None)
    assert sent == [delivery.payload]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.sending_until) == ("delivered", 1, None)


@pytest.mark.django_db
def test_grant_11_a_lease_left_by_a_run_that_died_expires(shop, hooked, monkeypatch):
    # given a run that claimed the delivery and died mid-POST, longer ago than the time limit
    from django.utils import timezone

    dead_until = timezone.now() - dt.timedelta(seconds=1)
    delivery = pending(dt.timedelta(hours=1), organization=shop)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=1, sending_until=dead_until)
    monkeypatch.setattr(webhooks, "post", lambda **kwargs: 204)

    # when the task's retry (or the sweeper's re-queue) runs, it sends
    assert send(delivery) == 204
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.sending_until) == ("delivered", 2, None)


@pytest.mark.django_db
def test_grant_11_a_failed_attempt_releases_the_lease_for_the_retry(shop, hooked, monkeypatch):
    delivery = pending(dt.timedelta(hours=1), organization=shop)

    def down(**kwargs):
        raise ConnectionRefusedError("down")

    monkeypatch.setattr(webhooks, "post", down)
    with pytest.raises(OSError):
        send(delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.sending_until) == ("failed", None)

    monkeypatch.setattr(webhooks, "post", lambda **kwargs: 204)
    assert send(delivery) == 204  # the task's retry is not blocked by its own earlier attempt
