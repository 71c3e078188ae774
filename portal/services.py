"""Writes shared by every app: audit entries, notifications, API keys, active membership."""

import datetime as dt
import logging
import time
from smtplib import SMTPException

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from portal import locks
from portal.api_auth import key_cache_mark_revoked
from portal.errors import Conflict, DomainError, NotFound
from portal.models import (
    ApiKey,
    AuditEntry,
    Membership,
    Notification,
    Organization,
    OutboundEmail,
    notification_text_render,
)

log = logging.getLogger(__name__)

# The after-commit send normally runs within a second of the commit; the sweeper leaves a new
# row alone this long, so it sends only what that send never did (its process died).
EMAIL_SWEEP_GRACE = dt.timedelta(minutes=2)
EMAIL_BACKOFF_FIRST = dt.timedelta(minutes=1)
EMAIL_BACKOFF_MAX = dt.timedelta(hours=1)
# One sweep sends at most this many rows and starts none after this many seconds (each send may
# block up to EMAIL_TIMEOUT), well within its task's time limit; the next sweep goes on.
EMAIL_SWEEP_BATCH = 200
EMAIL_SWEEP_SECONDS = 4 * 60
EMAIL_PRUNE_BATCH = 1000


REQUEST_KEY_MAX_LENGTH = 100  # the request_key columns of gifts and authorization


def request_key_clean(value) -> str | None:
    """A form's one-time token or an API's Idempotency-Key as stored; None when the request
    carries none (then every request runs). A longer key is refused, not cut: two keys sharing
    their first 100 characters would answer one request with the other's outcome."""
    key = (value or "").strip()
    if len(key) > REQUEST_KEY_MAX_LENGTH:
        raise DomainError(
            "invalid",
            gettext("Idempotency-Key 最多 %(max)d 个字符。") % {"max": REQUEST_KEY_MAX_LENGTH},
            field="Idempotency-Key",
        )
    return key or None


def audit_record(*, actor, action: str, obj, details: dict | None = None) -> AuditEntry:
    """Record a staff or system action on ``obj`` (any model instance)."""
    return AuditEntry.objects.create(
        actor=actor if (actor is not None and actor.is_authenticated) else None,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        details=details or {},
    )


def notification_send(
    *,
    kind: str,
    title: str,
    body: str = "",
    params: dict | None = None,
    url: str = "",
    user=None,
    organization: Organization | None = None,
    dedupe_key: str | None = None,
    email: bool = False,
) -> Notification | None:
    """Put a notice in the portal inbox (and optionally email it) exactly once per dedupe_key.

    ``title`` and ``body`` are untranslated source msgids (mark them with ``gettext_noop``)
    whose ``%(name)s`` placeholders are filled from ``params``; the inbox translates them
    into the reader's language when shown. Text nobody can translate (a reviewer's reason)
    goes in ``params`` behind a placeholder-only msgid such as ``"%(reason)s"``.

    Returns None when the same dedupe_key was already sent (a job that runs twice).
    The emails are written to the outbox (``OutboundEmail``) in the notice's transaction and
    sent after commit, so a rolled-back job sends nothing and a crash after the commit loses
    nothing: the beat sweeper sends what the after-commit send did not.
    """
    params = {
        name: value if isinstance(value, int | str) else str(value) for name, value in (params or {}).items()
    }
    # The stored text (admin, email, fallback) is in the portal's default language, whoever's
    # request happened to send the notice: a shop's staff reviewer may be browsing in English.
    with translation.override(settings.LANGUAGE_CODE):
        title_text = notification_text_render(title, params)
        body_text = notification_text_render(body, params)
    try:
        with transaction.atomic():
            note = Notification.objects.create(
                user=user,
                organization=organization,
                kind=kind,
                title=title_text[: Notification._meta.get_field("title").max_length],
                body=body_text,
                title_msgid=title,
                body_msgid=body,
                params=params,
                url=url,
                dedupe_key=dedupe_key,
            )
            emails = (
                _outbound_emails_record(
                    note, user=user, organization=organization, title=title, body=body, params=params, url=url
                )
                if email
                else []
            )
    except IntegrityError:
        if dedupe_key and Notification.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        raise
    if emails:
        # robust: the rows are committed, so a failure of this send (the database gone a moment)
        # is the sweeper's to make good, not an error for the caller whose work is done.
        transaction.on_commit(
            lambda ids=[e.pk for e in emails]: outbound_emails_send(email_ids=ids), robust=True
        )
    return note


def _outbound_emails_record(
    note: Notification, *, user, organization, title: str, body: str, params: dict, url: str
) -> list[OutboundEmail]:
    """The notice's emails as outbox rows, one per language of its recipients, in the caller's
    transaction (the notice and its emails commit together)."""
    now = timezone.now()
    rows = []
    for language, recipients in _emails_by_language(user=user, organization=organization).items():
        with translation.override(language):
            subject = notification_text_render(title, params)
            text = notification_text_render(body, params)
        rows.append(
            OutboundEmail(
                notification=note,
                language=language,
                recipients=recipients,
                subject=subject,
                text=f"{text}\n\n{settings.PORTAL_BASE_URL}{url}",
                created_at=now,
                next_attempt_at=now + EMAIL_SWEEP_GRACE,
            )
        )
    return OutboundEmail.objects.bulk_create(rows)


def email_send(*, subject: str, text: str, recipients: list[str]) -> int:
    """Send one email now; raises when the mail server refuses it or cannot be reached."""
    return send_mail(subject, text, None, recipients, fail_silently=False)


def email_backoff(attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failed attempt: 1 minute, doubling, at most an hour."""
    return min(EMAIL_BACKOFF_MAX, EMAIL_BACKOFF_FIRST * 2 ** min(attempts - 1, 20))  # 2**20 min > 1 h


def outbound_emails_send(*, email_ids: list[int], now: dt.datetime | None = None) -> int:
    """The after-commit send of a notice's emails: each row still pending and never tried is
    sent now; return how many the mail server took. A row another sender holds, or already
    tried, is left to it and to the sweeper."""
    sent = 0
    for email_id in email_ids:
        with transaction.atomic():
            email = locks.lock_outbound_email_first_attempt(email_id)
            if email is not None:
                sent += _outbound_email_attempt(email, now=now or timezone.now()) == OutboundEmail.State.SENT
    return sent


def outbound_emails_send_due(
    *,
    now: dt.datetime | None = None,
    limit: int = EMAIL_SWEEP_BATCH,
    budget_seconds: float = EMAIL_SWEEP_SECONDS,
) -> dict[str, int]:
    """The beat sweeper: send the pending rows due at ``now`` (default: the clock), the oldest
    due first; return how many were sent, left for a later retry, and given up.

    Due are rows whose after-commit send never happened (``EMAIL_SWEEP_GRACE`` after they were
    written) and rows whose last attempt failed, once their back-off has passed. One short
    transaction per row holds its lock through the SMTP call (``portal.locks``), so concurrent
    sweeps and a late after-commit send skip it; a sweep that dies mid-send rolls back, and the
    row, still pending and uncounted, is sent by the next sweep.
    """
    now = now or timezone.now()
    outcomes = dict.fromkeys(OutboundEmail.State.values, 0)
    started = time.monotonic()
    for _ in range(limit):
        if time.monotonic() - started > budget_seconds:
            break
        with transaction.atomic():
            email = locks.lock_outbound_email_due(now=now)
            if email is None:
                break
            outcomes[_outbound_email_attempt(email, now=now)] += 1
    return {
        "sent": outcomes[OutboundEmail.State.SENT],
        "retry": outcomes[OutboundEmail.State.PENDING],
        "failed": outcomes[OutboundEmail.State.FAILED],
    }


def _outbound_email_attempt(email: OutboundEmail, *, now: dt.datetime) -> str:
    """Send a row the caller holds locked and record the outcome; return the new state.

    Any exception of the send is a failed attempt (a mail server down, a refused address, a
    malformed header alike): recorded and retried with back-off, failed after
    ``EMAIL_OUTBOX_MAX_ATTEMPTS``, so one bad row never blocks the rows behind it."""
    attempts = email.attempts + 1
    row = OutboundEmail.objects.filter(pk=email.pk)
    try:
        email_send(subject=email.subject, text=email.text, recipients=email.recipients)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[: OutboundEmail._meta.get_field("last_error").max_length]
        log_failure = log.warning if isinstance(exc, SMTPException | OSError) else log.exception
        if attempts >= settings.EMAIL_OUTBOX_MAX_ATTEMPTS:
            row.update(state=OutboundEmail.State.FAILED, attempts=attempts, last_error=error)
            log_failure("email #%s failed %d times, given up: %s", email.pk, attempts, error)
            return OutboundEmail.State.FAILED
        row.update(attempts=attempts, last_error=error, next_attempt_at=now + email_backoff(attempts))
        log_failure("email #%s attempt %d failed, retried later: %s", email.pk, attempts, error)
        return OutboundEmail.State.PENDING
    row.update(state=OutboundEmail.State.SENT, attempts=attempts, sent_at=now, last_error="")
    return OutboundEmail.State.SENT


def outbound_email_resend(*, email_id: int, actor, now: dt.datetime | None = None) -> OutboundEmail:
    """Staff give a failed email a new set of attempts (admin; audited, P-4): it is pending
    again, tried once after commit and then by the sweeper, as a new email would be."""
    now = now or timezone.now()
    with transaction.atomic():
        try:
            email = locks.lock_outbound_email(email_id)
        except OutboundEmail.DoesNotExist:
            raise NotFound() from None
        if email.state != OutboundEmail.State.FAILED:
            raise Conflict(
                "conflict",
                gettext("只有发送失败的邮件可以重新发送 (#%(id)s)。") % {"id": email.pk},
                field="state",
            )
        OutboundEmail.objects.filter(pk=email.pk).update(
            state=OutboundEmail.State.PENDING, attempts=0, next_attempt_at=now + EMAIL_SWEEP_GRACE
        )
        audit_record(
            actor=actor,
            action="portal.outbound_email_resend",
            obj=email,
            details={
                "recipients": email.recipients,
                "attempts": email.attempts,
                "last_error": email.last_error,
            },
        )
        transaction.on_commit(lambda: outbound_emails_send(email_ids=[email.pk]), robust=True)
    email.refresh_from_db()
    return email


def outbound_emails_prune(
    *, now: dt.datetime | None = None, retention_days: int | None = None, batch_size: int = EMAIL_PRUNE_BATCH
) -> int:
    """Delete outbox emails sent more than ``retention_days`` (default
    ``settings.EMAIL_OUTBOX_RETENTION_DAYS``) ago; return how many went. Pending and failed rows
    stay (still to send, or for staff to see and resend); the notice itself stays in the inbox.

    One short transaction per batch of at most ``batch_size`` primary keys, found through the
    partial index ``portal_outbound_email_sent``, as ``webhook_deliveries_prune`` does: no long
    lock and no giant DELETE. A sent row is never changed again, so rerunning, or two runs at
    once, deletes nothing twice."""
    retention_days = settings.EMAIL_OUTBOX_RETENTION_DAYS if retention_days is None else retention_days
    if retention_days < 1:
        raise ImproperlyConfigured("EMAIL_OUTBOX_RETENTION_DAYS must be at least 1.")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    cutoff = (now or timezone.now()) - dt.timedelta(days=retention_days)
    old = OutboundEmail.objects.filter(state=OutboundEmail.State.SENT, sent_at__lt=cutoff)
    deleted = 0
    while True:
        pks = list(old.order_by("sent_at").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return deleted
        count, _ = old.filter(pk__in=pks).delete()
        deleted += count
        if len(pks) < batch_size:
            return deleted


def _emails_by_language(*, user, organization) -> dict[str, list[str]]:
    """Recipients grouped by the language their email is written in: a user's stored language,
    else the portal's default (also for the organization's contact address)."""
    default = settings.LANGUAGE_CODE
    if user is not None:
        pairs = [(user.email, user.language)]
    else:
        pairs = list(
            Membership.objects.filter(organization=organization)
            .exclude(user__email="")
            .values_list("user__email", "user__language")
        )
        pairs.append((organization.contact_email, ""))
    by_language: dict[str, set[str]] = {}
    taken = set()
    for address, language in sorted(pairs, key=lambda pair: pair[1] == ""):  # a stated language first
        if address and address not in taken:
            taken.add(address)
            by_language.setdefault(language or default, set()).add(address)
    return {language: sorted(addresses) for language, addresses in sorted(by_language.items())}


def user_language_set(*, user, language: str) -> None:
    """Store the language a signed-in user picked with the switch (pages and emails follow it)."""
    if language not in dict(settings.LANGUAGES):
        raise DomainError("LANGUAGE", "Unknown language.", field="language")
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])


def notification_mark_read(*, user, notification_id: int) -> None:
    updated = Notification.objects.filter(pk=notification_id, user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    if not updated and not Notification.objects.filter(pk=notification_id, user=user).exists():
        raise NotFound()


def api_key_create(*, membership: Membership, name: str, actor) -> tuple[ApiKey, str]:
    """Create a key for the membership's organization; the raw key is returned once."""
    # The page form checks the same; this keeps admin, shell and API callers from a 500.
    if not name or len(name) > ApiKey._meta.get_field("name").max_length or "\x00" in name:
        raise DomainError("API-KEY-NAME", "The key name must be 1-100 characters.", field="name")
    prefix, raw = ApiKey.generate()
    key = ApiKey.objects.create(
        organization=membership.organization,
        name=name,
        prefix=prefix,
        key_hash=ApiKey.hash(raw),
        created_by=actor,
    )
    return key, raw


def api_key_revoke(*, membership: Membership, key_id: int, actor) -> ApiKey:
    """Revoke one of the organization's keys; another organization's key is not found."""
    key = ApiKey.objects.filter(pk=key_id, organization_id=membership.organization_id).first()
    if key is None:
        raise NotFound()
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    audit_record(actor=actor, action="api_key.revoke", obj=key)
    # The authentication caches keys by prefix: refuse this one on the very next call.
    transaction.on_commit(lambda prefix=key.prefix: key_cache_mark_revoked(prefix))
    key.refresh_from_db()
    return key
