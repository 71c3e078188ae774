"""Daily job (GRANT-10): expiries recorded once as events, reminders 7 days ahead to both
parties, lapsed requests; the event hook (signal + HMAC-signed webhook with retries)."""

import datetime as dt
import http.server
import json
import threading

import pytest
from django.core import mail
from django.utils import timezone

from authorization import services, tasks, webhooks
from authorization.models import Grant, GrantEvent, LiveRoomRequest, OrganizationWebhook, WebhookDelivery
from authorization.selectors import access_check
from authorization.signals import grant_access_revoked
from authorization.tests.conftest import days
from authorization.tests.factories import TODAY, GrantFactory, LiveRoomRequestFactory
from portal.models import Notification

pytestmark = pytest.mark.django_db


def test_grant_10_expiry_recorded_once_as_event(creator, shop, agency, django_capture_on_commit_callbacks):
    ended = GrantFactory(
        creator=creator, organization=shop, start_date=TODAY - days(9), end_date=TODAY - days(1)
    )
    live = GrantFactory(creator=creator, organization=agency, start_date=TODAY, end_date=TODAY)
    GrantFactory(
        start_date=TODAY - days(9),
        end_date=TODAY - days(2),
        revoked_at=dt.datetime(2026, 3, 5, tzinfo=dt.UTC),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.grant_expiry_record(today=TODAY) == 1
        assert services.grant_expiry_record(today=TODAY) == 0  # idempotent
    ev = GrantEvent.objects.get(operation="expire")
    assert (ev.grant, ev.old_end_date, ev.actor) == (ended, TODAY - days(1), None)
    ended.refresh_from_db()
    assert ended.expiry_recorded_for == TODAY - days(1)
    assert not live.events.exists()


def test_grant_10_renewed_grant_expires_again_later(creator, shop):
    g = GrantFactory(creator=creator, organization=shop, start_date=TODAY - days(9), end_date=TODAY - days(1))
    services.grant_expiry_record(today=TODAY)
    services.grant_renew(grant=g, start_date=TODAY, end_date=TODAY + days(2), actor=creator.user, today=TODAY)
    assert services.grant_expiry_record(today=TODAY + days(1)) == 0
    assert services.grant_expiry_record(today=TODAY + days(3)) == 1
    assert list(
        g.events.filter(operation="expire").values_list("old_end_date", flat=True).order_by("id")
    ) == [TODAY - days(1), TODAY + days(2)]


def test_grant_10_access_never_waits_for_the_job(creator, shop):
    GrantFactory(creator=creator, organization=shop, start_date=TODAY - days(9), end_date=TODAY - days(1))
    assert not GrantEvent.objects.exists()  # the job has not run
    d = access_check(organization_id=shop.pk, creator_id=creator.pk, scope="all_data", today=TODAY)
    assert (d.allowed, d.state) == (False, "expired")


def test_grant_10_batches_cover_everything(creator):
    for _ in range(5):
        GrantFactory(creator=creator, start_date=TODAY - days(9), end_date=TODAY - days(1))
    assert services.grant_expiry_record(today=TODAY, batch=2) == 5
    assert GrantEvent.objects.filter(operation="expire").count() == 5


def test_grant_11_expiry_and_revoke_fire_signal_and_webhook(
    creator, shop, agency, webhook_calls, django_capture_on_commit_callbacks
):
    OrganizationWebhook.objects.create(organization=shop, url="http://127.0.0.1:9/hook", secret="k")
    received = []

    def receiver(sender, grants, **kwargs):
        received.extend(grants)

    grant_access_revoked.connect(receiver)
    try:
        ended = GrantFactory(
            creator=creator, organization=shop, start_date=TODAY - days(9), end_date=TODAY - days(1)
        )
        revoked = GrantFactory(
            creator=creator, organization=agency, start_date=TODAY, end_date=TODAY + days(5)
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.grant_expiry_record(today=TODAY)
            services.grant_revoke(grant=revoked, actor=creator.user, today=TODAY)
    finally:
        grant_access_revoked.disconnect(receiver)
    assert {(g["grant_id"], g["reason"]) for g in received} == {
        (ended.pk, "expired"),
        (revoked.pk, "revoked"),
    }
    # Only the shop configured a webhook: one delivery recorded, queued with its id.
    delivery = WebhookDelivery.objects.get()
    assert (delivery.organization_id, delivery.status) == (shop.pk, WebhookDelivery.Status.PENDING)
    assert webhook_calls == [
        (
            (
                shop.pk,
                {
                    "event": "grant.access_revoked",
                    "grants": [
                        {
                            "grant_id": ended.pk,
                            "organization_id": shop.pk,
                            "creator_id": creator.pk,
                            "scope": "all_data",
                            "live_room_id": None,
                            "reason": "expired",
                        }
                    ],
                },
            ),
            {"delivery_id": delivery.pk},
        )
    ]


def test_grant_11_no_webhook_before_commit(creator, shop, webhook_calls):
    OrganizationWebhook.objects.create(organization=shop, url="http://127.0.0.1:9/hook", secret="k")
    g = GrantFactory(creator=creator, organization=shop, start_date=TODAY, end_date=TODAY + days(5))
    services.grant_revoke(grant=g, actor=creator.user, today=TODAY)  # the test transaction never commits
    assert webhook_calls == []


def test_grant_11_the_webhook_of_an_expiry_survives_a_worker_dying_right_after_the_commit(
    creator, shop, webhook_calls, django_capture_on_commit_callbacks
):
    OrganizationWebhook.objects.create(organization=shop, url="http://127.0.0.1:9/hook", secret="k")
    GrantFactory(creator=creator, organization=shop, start_date=TODAY - days(9), end_date=TODAY - days(1))
    # the batch commits, then the worker dies before anything queued after the commit runs
    with django_capture_on_commit_callbacks(execute=False):
        assert services.grant_expiry_record(today=TODAY) == 1
    assert webhook_calls == []
    # the delivery committed with the expiry: the stale sweep sends it later
    delivery = WebhookDelivery.objects.get(organization=shop)
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.payload["grants"][0]["reason"] == "expired"
    # and the task redelivered (acks_late) finds the expiry recorded: no second delivery
    with django_capture_on_commit_callbacks(execute=True):
        assert services.grant_expiry_record(today=TODAY) == 0
    assert WebhookDelivery.objects.filter(organization=shop).count() == 1


class _Hook(http.server.BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.calls.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_grant_11_webhook_is_hmac_signed(shop, settings):
    settings.AUTHORIZATION_WEBHOOK_HTTPS_ONLY = False  # a local receiver (production refuses it)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        OrganizationWebhook.objects.create(
            organization=shop, url=f"http://127.0.0.1:{server.server_port}/h", secret="topsecret"
        )
        payload = {"event": "grant.access_revoked", "grants": [{"grant_id": 1, "reason": "revoked"}]}
        assert tasks.webhook_deliver.apply(args=(shop.pk, payload)).get() == 204
    finally:
        server.shutdown()
    headers, body = _Hook.calls[-1]
    assert json.loads(body) == payload
    ts = int(headers["X-Portal-Timestamp"])
    assert webhooks.verify("topsecret", ts, body, headers["X-Portal-Signature"])
    assert not webhooks.verify("wrong", ts, body, headers["X-Portal-Signature"])
    assert not webhooks.verify("topsecret", ts, body + b" ", headers["X-Portal-Signature"])
    assert not webhooks.verify("topsecret", ts - 3600, body, webhooks.sign("topsecret", ts - 3600, body))


def test_grant_11_webhook_failure_is_retried(shop, monkeypatch, settings):
    settings.AUTHORIZATION_WEBHOOK_HTTPS_ONLY = False  # a local receiver (production refuses it)
    OrganizationWebhook.objects.create(organization=shop, url="http://127.0.0.1:9/h", secret="s")
    attempts = []

    def refuse(**kwargs):
        attempts.append(kwargs["url"])
        raise ConnectionRefusedError("down")

    monkeypatch.setattr(webhooks, "post", refuse)
    result = tasks.webhook_deliver.apply(args=(shop.pk, {"event": "x"}), retries=0)
    assert attempts and result.state in ("RETRY", "FAILURE")
    assert tasks.webhook_deliver.max_retries >= 5


def test_grant_10_reminders_7_days_before_to_both_parties(
    creator, shop, shop_main, shop_sub, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    g = GrantFactory(creator=creator, organization=shop, start_date=TODAY, end_date=TODAY + days(7))
    GrantFactory(creator=creator, start_date=TODAY, end_date=TODAY + days(8))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.grant_reminders_send(today=TODAY) == 1
        assert services.grant_reminders_send(today=TODAY) == 0  # once per grant and end date
    notes = Notification.objects.filter(kind="grant.ending")
    assert {n.user for n in notes} == {creator.user, shop_main.user}  # GRANT-9: not the sub-account
    assert notes.count() == 2 and all(str(g.pk) in n.dedupe_key for n in notes)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([creator.user.email, shop_main.user.email])


def test_grant_10_a_reminder_missed_by_a_days_run_is_sent_the_next_day_once(
    creator, shop, shop_main, django_capture_on_commit_callbacks
):
    due = GrantFactory(creator=creator, organization=shop, start_date=TODAY, end_date=TODAY + days(6))
    short = GrantFactory(creator=creator, start_date=TODAY, end_date=TODAY + days(2))  # authorized late
    GrantFactory(creator=creator, start_date=TODAY, end_date=TODAY)  # its last day: nothing to remind
    GrantFactory(creator=creator, start_date=TODAY, end_date=TODAY + days(5), revoked_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert services.grant_reminders_send(today=TODAY) == 2  # the run of TODAY - 1 never happened
        assert services.grant_reminders_send(today=TODAY + days(1)) == 0
    reminded = {n.dedupe_key.split(":")[1] for n in Notification.objects.filter(kind="grant.ending")}
    assert reminded == {str(due.pk), str(short.pk)}
    # an early renewal gives a new end date, reminded again when it comes near
    Grant.objects.filter(pk=due.pk).update(end_date=TODAY + days(20))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.grant_reminders_send(today=TODAY + days(13)) == 1


def test_grant_3_lapsed_requests_are_recorded_expired(shop):
    from portal import clock

    now = clock.now()
    old = LiveRoomRequestFactory(
        organization=shop, created_at=now - dt.timedelta(days=8), expires_at=now - dt.timedelta(days=1)
    )
    fresh = LiveRoomRequestFactory(organization=shop)
    assert services.live_room_request_expire_due(now=now) == 1
    old.refresh_from_db(), fresh.refresh_from_db()
    assert (old.status, fresh.status) == (LiveRoomRequest.Status.EXPIRED, LiveRoomRequest.Status.PENDING)


def test_daily_task_calls_the_services(creator):
    GrantFactory(creator=creator, start_date=dt.date(2020, 1, 1), end_date=dt.date(2020, 1, 2))
    out = tasks.grants_daily.apply().get()
    assert out["expired"] == 1 and Grant.objects.get().expiry_recorded_for == dt.date(2020, 1, 2)


def test_beat_schedule_declares_the_daily_job():
    from portal.celery import collect_beat_schedule

    entry = collect_beat_schedule()["authorization-grants-daily"]
    assert entry["task"] == "authorization.tasks.grants_daily"
