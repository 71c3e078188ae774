"""Notification emails are not lost on a crash (the outbox, ``OutboundEmail``): written in the
notice's transaction, sent at once after commit, and otherwise by the beat sweeper, which
retries a mail server that is down with back-off and gives up after EMAIL_OUTBOX_MAX_ATTEMPTS;
staff see the outbox in admin and resend a failed email (audited, P-4). Two senders at the same
moment send an email once."""

import datetime as dt
import threading
import time
from smtplib import SMTPServerDisconnected

import pytest
from celery.schedules import crontab
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import IntegrityError, OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_noop
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from portal import locks, services, tasks
from portal.celery import app, collect_beat_schedule
from portal.errors import Conflict
from portal.models import AuditEntry, Notification, OutboundEmail
from portal.services import outbound_email_resend, outbound_emails_send, outbound_emails_send_due
from portal.tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    OutboundEmailFactory,
    UserFactory,
)

NOTICE = gettext_noop("你对 %(org)s 的数据授权将于 %(end)s 到期")
PARAMS = {"org": "Global Goods", "end": "2026-12-01"}
ZH = "你对 Global Goods 的数据授权将于 2026-12-01 到期"
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _locmem(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.EMAIL_OUTBOX_MAX_ATTEMPTS = 4


@pytest.fixture
def mail_server(monkeypatch):
    """The mail server: ``down()`` makes every send raise as a closed SMTP connection does,
    ``up()`` lets them through again; ``calls`` counts every attempt."""

    class Server:
        calls = 0
        is_down = False

        def down(self):
            self.is_down = True

        def up(self):
            self.is_down = False

    server, real = Server(), services.send_mail

    def send_mail(*args, **kwargs):
        server.calls += 1
        if server.is_down:
            raise SMTPServerDisconnected("Connection unexpectedly closed")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "send_mail", send_mail)
    return server


def notify(user, **kwargs) -> Notification:
    return services.notification_send(kind="t", title=NOTICE, params=PARAMS, user=user, email=True, **kwargs)


def sent_to() -> list[tuple[str, ...]]:
    return [tuple(m.to) for m in mail.outbox]


# --- written with the notice, sent at once ---------------------------------------------------------


@pytest.mark.django_db
def test_an_email_is_written_with_its_notice_and_sent_at_once_after_commit(
    django_capture_on_commit_callbacks,
):
    user = UserFactory(email="a@example.com")
    # when a notice is sent with its email and the transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        note = notify(user)
    # then the outbox row belongs to the notice and went out at once, on the first attempt
    email = OutboundEmail.objects.get()
    assert (email.notification, email.recipients, email.subject) == (note, ["a@example.com"], ZH)
    assert (email.state, email.attempts, email.last_error) == ("sent", 1, "")
    assert email.sent_at is not None
    assert sent_to() == [("a@example.com",)]
    # and a sweep afterwards sends nothing again
    assert outbound_emails_send_due(now=timezone.now() + dt.timedelta(days=1))["sent"] == 0
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_an_organizations_notice_writes_one_email_per_language(django_capture_on_commit_callbacks):
    org = OrganizationFactory(contact_email="office@example.com")
    MembershipFactory(organization=org, user=UserFactory(language="en", email="main@example.com"))
    with django_capture_on_commit_callbacks(execute=False):
        services.notification_send(kind="t", title=NOTICE, params=PARAMS, organization=org, email=True)
    rows = OutboundEmail.objects.order_by("language").values_list("language", "recipients", "state")
    assert list(rows) == [
        ("en", ["main@example.com"], "pending"),
        ("zh-hans", ["office@example.com"], "pending"),
    ]


@pytest.mark.django_db
def test_a_notice_without_email_writes_no_outbox_row(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.notification_send(kind="t", title=NOTICE, params=PARAMS, user=UserFactory())
    assert not OutboundEmail.objects.exists() and mail.outbox == []


@pytest.mark.django_db
def test_a_rolled_back_transaction_writes_and_sends_nothing(django_capture_on_commit_callbacks):
    user = UserFactory()
    # when the job that sends the notice fails after it and its transaction rolls back
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        notify(user, dedupe_key="job-1")
        raise RuntimeError("the job failed later")
    # then neither the notice nor its email exists, and no sweep ever sends it
    assert callbacks == []
    assert not Notification.objects.exists() and not OutboundEmail.objects.exists()
    assert outbound_emails_send_due(now=timezone.now() + dt.timedelta(days=1)) == {
        "sent": 0,
        "retry": 0,
        "failed": 0,
    }
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_notice_sent_twice_by_dedupe_key_writes_its_email_once(django_capture_on_commit_callbacks):
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        assert notify(user, dedupe_key="once") is not None
        assert notify(user, dedupe_key="once") is None
    assert OutboundEmail.objects.count() == 1 and len(mail.outbox) == 1


# --- a crash between the commit and the send -------------------------------------------------------


@pytest.mark.django_db
def test_an_email_whose_after_commit_send_died_is_sent_by_the_sweeper_exactly_once(
    django_capture_on_commit_callbacks,
):
    user = UserFactory(email="a@example.com")
    # given a notice committed, whose process died before its after-commit send ran
    with django_capture_on_commit_callbacks(execute=False) as dropped:
        notify(user)
    assert len(dropped) == 1 and mail.outbox == []
    email = OutboundEmail.objects.get()
    assert (email.state, email.attempts) == ("pending", 0)
    # when the sweeper runs within the grace, it leaves the row to the after-commit send
    assert outbound_emails_send_due(now=email.created_at + MINUTE)["sent"] == 0
    # when it runs after the grace, it sends the email; the next sweep sends nothing
    assert outbound_emails_send_due(now=email.created_at + 3 * MINUTE)["sent"] == 1
    assert outbound_emails_send_due(now=email.created_at + 10 * MINUTE)["sent"] == 0
    # and a late after-commit send (the process was only slow) sends nothing either
    assert outbound_emails_send(email_ids=[email.pk]) == 0
    assert sent_to() == [("a@example.com",)] and mail.outbox[0].subject == ZH
    email.refresh_from_db()
    assert (email.state, email.attempts, email.sent_at) == ("sent", 1, email.created_at + 3 * MINUTE)


@pytest.mark.django_db
def test_an_after_commit_send_that_breaks_leaves_the_email_to_the_sweeper(
    monkeypatch, django_capture_on_commit_callbacks
):
    # given the database connection failing right after the notice committed
    def connection_lost(email_id):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(locks, "lock_outbound_email_first_attempt", connection_lost)
    # when the notice is sent, then its caller does not see the after-commit failure
    with django_capture_on_commit_callbacks(execute=True):
        note = notify(UserFactory(email="a@example.com"))
    monkeypatch.undo()
    email = OutboundEmail.objects.get(notification=note)
    assert (email.state, email.attempts) == ("pending", 0) and mail.outbox == []
    # and the sweeper sends it after the grace
    assert outbound_emails_send_due(now=email.next_attempt_at)["sent"] == 1
    assert sent_to() == [("a@example.com",)]


# --- the mail server is down -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_mail_server_that_is_down_is_retried_with_back_off_and_the_email_sent_when_it_is_back(
    mail_server, django_capture_on_commit_callbacks
):
    user = UserFactory(email="a@example.com")
    mail_server.down()
    # when the notice's after-commit send finds the mail server down
    with django_capture_on_commit_callbacks(execute=True):
        notify(user)
    email = OutboundEmail.objects.get()
    first_try = email.next_attempt_at - MINUTE
    assert (email.state, email.attempts, mail_server.calls) == ("pending", 1, 1)
    assert "SMTPServerDisconnected" in email.last_error
    # then the sweeper retries it after a minute, not before
    assert outbound_emails_send_due(now=first_try + 30 * dt.timedelta(seconds=1))["retry"] == 0
    assert outbound_emails_send_due(now=first_try + MINUTE)["retry"] == 1
    email.refresh_from_db()
    # and, down again, waits twice as long before the next attempt
    assert (email.attempts, email.next_attempt_at) == (2, first_try + MINUTE + 2 * MINUTE)
    assert outbound_emails_send_due(now=first_try + 2 * MINUTE)["retry"] == 0
    assert mail_server.calls == 2 and mail.outbox == []
    # when the mail server is back, the next due sweep sends it, once
    mail_server.up()
    assert outbound_emails_send_due(now=first_try + 3 * MINUTE)["sent"] == 1
    assert outbound_emails_send_due(now=first_try + 60 * MINUTE)["sent"] == 0
    email.refresh_from_db()
    assert (email.state, email.attempts, email.last_error) == ("sent", 3, "")
    assert sent_to() == [("a@example.com",)]


def test_the_back_off_doubles_from_a_minute_to_at_most_an_hour():
    waits = [services.email_backoff(n) for n in range(1, 10)]
    assert waits[:4] == [MINUTE, 2 * MINUTE, 4 * MINUTE, 8 * MINUTE]
    assert waits[-1] == 60 * MINUTE and max(waits) == 60 * MINUTE
    assert services.email_backoff(500) == 60 * MINUTE  # EMAIL_OUTBOX_MAX_ATTEMPTS set high


@pytest.fixture
def given_up(mail_server, settings, django_capture_on_commit_callbacks) -> OutboundEmail:
    """An email whose every attempt (EMAIL_OUTBOX_MAX_ATTEMPTS of them) found the server down."""
    mail_server.down()
    with django_capture_on_commit_callbacks(execute=True):
        notify(UserFactory(email="Gone@Example.com"))
    email = OutboundEmail.objects.get()
    now = email.created_at
    for _ in range(settings.EMAIL_OUTBOX_MAX_ATTEMPTS + 2):
        now += 2 * dt.timedelta(hours=1)
        outbound_emails_send_due(now=now)
    email.refresh_from_db()
    return email


@pytest.mark.django_db
def test_after_the_last_attempt_the_email_is_failed_with_its_error_and_not_tried_again(
    given_up, mail_server, settings
):
    assert (given_up.state, given_up.attempts) == ("failed", settings.EMAIL_OUTBOX_MAX_ATTEMPTS)
    assert given_up.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"
    assert mail_server.calls == settings.EMAIL_OUTBOX_MAX_ATTEMPTS
    mail_server.up()
    assert outbound_emails_send_due(now=timezone.now() + dt.timedelta(days=30))["sent"] == 0
    assert mail.outbox == []


@pytest.mark.django_db
def test_an_email_that_raises_anything_is_retried_and_does_not_block_the_rows_behind_it(monkeypatch):
    # given a due email whose send raises a non-SMTP error, and a good one behind it
    bad = OutboundEmailFactory(subject="bad\nheader")
    good = OutboundEmailFactory(next_attempt_at=bad.next_attempt_at + dt.timedelta(seconds=1))
    # when the sweeper runs, then the bad one counts a failed attempt and the good one goes out
    assert outbound_emails_send_due(now=timezone.now()) == {"sent": 1, "retry": 1, "failed": 0}
    bad.refresh_from_db()
    assert (bad.state, bad.attempts) == ("pending", 1) and "ValueError" in bad.last_error
    assert sent_to() == [tuple(good.recipients)]


# --- admin: the outbox list and the resend action --------------------------------------------------


@pytest.fixture
def outbox_staff(client):
    """Staff who may view and change outbox emails (the change permission resends)."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="portal", codename__in=["view_outboundemail", "change_outboundemail"]
        )
    )
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_a_failed_email_shows_in_admin_with_its_error_and_is_found_by_recipient(
    client, outbox_staff, given_up
):
    sent = OutboundEmailFactory(recipients=["other@example.com"], state="sent", sent_at=timezone.now())
    url = reverse("admin:portal_outboundemail_changelist")
    listing = client.get(url + "?state__exact=failed").content.decode()
    assert "Gone@Example.com" in listing and "SMTPServerDisconnected" in listing
    assert "other@example.com" not in listing
    # search by a recipient's whole address: as stored, or typed in capitals for a lower-case one
    found = client.get(url, {"q": "Gone@Example.com"}).content.decode()
    assert "Gone@Example.com" in found and "other@example.com" not in found
    found = client.get(url, {"q": " Other@Example.com "}).content.decode()
    assert "other@example.com" in found and "Gone@Example.com" not in found
    assert "Gone@Example.com" not in client.get(url, {"q": "Gone@"}).content.decode()
    # the list is read-only: no add, and each row's page shows no save button
    page = client.get(reverse("admin:portal_outboundemail_change", args=[given_up.pk])).content.decode()
    assert "SMTPServerDisconnected" in page and 'name="_save"' not in page
    assert client.get(reverse("admin:portal_outboundemail_add")).status_code == 403
    assert OutboundEmail.objects.get(pk=sent.pk).state == "sent"


@pytest.mark.django_db
def test_p_4_staff_resend_a_failed_email_and_it_is_sent_and_audited(
    client, outbox_staff, given_up, mail_server, django_capture_on_commit_callbacks
):
    # when the mail server is back and staff resend the failed email from admin
    mail_server.up()
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(
            reverse("admin:portal_outboundemail_changelist"),
            {"action": "resend", "_selected_action": [given_up.pk]},
        )
    assert resp.status_code == 302
    # then it went out at once, on the first of its new attempts
    email = OutboundEmail.objects.get(pk=given_up.pk)
    assert (email.state, email.attempts, email.last_error) == ("sent", 1, "")
    assert sent_to() == [("Gone@Example.com",)]
    # and the audit trail names the staff member and what was resent
    entry = AuditEntry.objects.get(action="portal.outbound_email_resend")
    assert (entry.actor, entry.object_type, entry.object_id) == (
        outbox_staff,
        "portal.outboundemail",
        str(email.pk),
    )
    assert entry.details == {
        "recipients": ["Gone@Example.com"],
        "attempts": 4,
        "last_error": "SMTPServerDisconnected: Connection unexpectedly closed",
    }


@pytest.mark.django_db
def test_p_4_staff_who_may_only_view_the_outbox_cannot_resend(client, given_up, mail_server):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_outboundemail"))
    client.force_login(viewer)
    url = reverse("admin:portal_outboundemail_changelist")
    listing = client.get(url)
    assert listing.status_code == 200 and 'value="resend"' not in listing.content.decode()
    client.post(url, {"action": "resend", "_selected_action": [given_up.pk]})
    assert OutboundEmail.objects.get(pk=given_up.pk).state == "failed"
    assert not AuditEntry.objects.filter(action="portal.outbound_email_resend").exists()


@pytest.mark.django_db
def test_only_a_failed_email_can_be_resent(client, outbox_staff):
    # given an email that was sent
    email = OutboundEmailFactory(state="sent", sent_at=timezone.now(), attempts=1)
    # when staff try to resend it, then the service refuses, naming the state, and nothing is audited
    with pytest.raises(Conflict) as exc:
        outbound_email_resend(email_id=email.pk, actor=outbox_staff)
    assert exc.value.field == "state"
    resp = client.post(
        reverse("admin:portal_outboundemail_changelist"),
        {"action": "resend", "_selected_action": [email.pk]},
        follow=True,
    )
    assert "只有发送失败的邮件可以重新发送" in resp.content.decode()
    assert OutboundEmail.objects.get(pk=email.pk).attempts == 1 and mail.outbox == []
    assert not AuditEntry.objects.exists()


# --- constraints -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_database_refuses_a_sent_email_without_its_sent_time():
    email = OutboundEmailFactory()
    with pytest.raises(IntegrityError, match="portal_outboundemail_sent_at_iff_sent"), transaction.atomic():
        OutboundEmail.objects.filter(pk=email.pk).update(state="sent")


@pytest.mark.django_db
def test_the_database_refuses_an_email_without_recipients():
    with pytest.raises(IntegrityError, match="portal_outboundemail_has_recipients"), transaction.atomic():
        OutboundEmailFactory(recipients=[])


# --- task and beat ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_beat_task_sends_what_is_due_with_the_real_clock():
    due = OutboundEmailFactory()
    OutboundEmailFactory(created_at=timezone.now(), next_attempt_at=timezone.now() + 2 * MINUTE)
    assert tasks.outbound_emails_send_due.apply().get() == {"sent": 1, "retry": 0, "failed": 0}
    assert sent_to() == [tuple(due.recipients)]


@pytest.mark.django_db
def test_beat_runs_the_sweeper_every_minute_and_syncs_it_to_the_database():
    entry = collect_beat_schedule()["portal-outbound-emails-send-due"]
    app.loader.import_default_modules()
    assert entry["task"] == tasks.outbound_emails_send_due.name == "portal.tasks.outbound_emails_send_due"
    assert entry["task"] in app.tasks and entry["schedule"] == crontab()
    # as django-celery-beat's DatabaseScheduler stores it at start-up
    DatabaseScheduler.Entry.from_entry("portal-outbound-emails-send-due", app=app, **entry)
    task = PeriodicTask.objects.get(name="portal-outbound-emails-send-due")
    assert (task.task, task.enabled, task.crontab.minute, task.crontab.hour) == (
        entry["task"],
        True,
        "*",
        "*",
    )


def test_the_old_send_task_stays_registered_for_retries_queued_before_the_outbox():
    app.loader.import_default_modules()
    assert "portal.send_email" in app.tasks


# --- two senders at the same moment (real threads, PostgreSQL) -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_running_concurrently_send_each_email_once(monkeypatch):
    # given ten emails whose after-commit sends died, and a mail server slow enough that two
    # sweeps overlap
    emails = [OutboundEmailFactory() for _ in range(10)]
    real = services.send_mail

    def slow_send_mail(*args, **kwargs):
        time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "send_mail", slow_send_mail)
    start, results = threading.Barrier(2), {}

    def sweep(name):
        try:
            start.wait(timeout=10)
            results[name] = outbound_emails_send_due()
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then each email went out once, and the two sweeps shared the work
    assert sorted(m.to[0] for m in mail.outbox) == sorted(e.recipients[0] for e in emails)
    assert results["a"]["sent"] + results["b"]["sent"] == 10
    assert results["a"]["sent"] > 0 and results["b"]["sent"] > 0
    assert set(OutboundEmail.objects.values_list("state", "attempts")) == {("sent", 1)}


@pytest.mark.django_db(transaction=True)
def test_an_after_commit_send_skips_an_email_the_sweeper_is_sending(monkeypatch):
    # given a sweep in the middle of sending an email (its row locked)
    email = OutboundEmailFactory()
    sending, answer = threading.Event(), threading.Event()
    real = services.send_mail

    def slow_send_mail(*args, **kwargs):
        sending.set()
        answer.wait(timeout=10)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "send_mail", slow_send_mail)
    result = {}

    def sweep():
        try:
            result["sweep"] = outbound_emails_send_due()
        finally:
            connection.close()

    thread = threading.Thread(target=sweep)
    thread.start()
    assert sending.wait(timeout=10)
    # when the (late) after-commit send of the same email runs meanwhile, it sends nothing
    assert outbound_emails_send(email_ids=[email.pk]) == 0
    with transaction.atomic():  # and another sweep skips it too
        assert locks.lock_outbound_email_due(now=timezone.now()) is None
    answer.set()
    thread.join(timeout=10)
    # then the email went out once, by the sweep
    assert result["sweep"]["sent"] == 1 and len(mail.outbox) == 1
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("sent", 1)


@pytest.mark.django_db
def test_the_admin_search_by_recipient_and_the_sweep_read_their_indexes(client):
    """On an empty test table any plan is fast; with sequential scans priced out, each query must
    still have its index (a table of every email ever sent is large)."""
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with CaptureQueriesContext(connection) as ctx:
        client.get(reverse("admin:portal_outboundemail_changelist"), {"q": "a@example.com"})
        with transaction.atomic():
            locks.lock_outbound_email_due(now=timezone.now())
    searched = [q["sql"] for q in ctx.captured_queries if "&&" in q["sql"] and "ORDER BY" in q["sql"]]
    swept = [q["sql"] for q in ctx.captured_queries if "SKIP LOCKED" in q["sql"]]
    for sql, index in ((searched[0], "portal_outbound_email_to"), (swept[0], "portal_outbound_email_due")):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert index in plan, plan
