"""Writes shared by every app: audit entries, notifications, API keys, active membership."""

import logging
from smtplib import SMTPException

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from portal.api_auth import key_cache_mark_revoked
from portal.errors import DomainError, NotFound
from portal.models import (
    ApiKey,
    AuditEntry,
    Membership,
    Notification,
    Organization,
    notification_text_render,
)

log = logging.getLogger(__name__)


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
    The email goes out after commit so a rolled-back job sends nothing.
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
    except IntegrityError:
        if dedupe_key and Notification.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        raise
    if email:
        for language, recipients in _emails_by_language(user=user, organization=organization).items():
            with translation.override(language):
                subject = notification_text_render(title, params)
                text = notification_text_render(body, params)
            text = f"{text}\n\n{settings.PORTAL_BASE_URL}{url}"
            transaction.on_commit(
                lambda subject=subject, text=text, recipients=recipients: _email_or_queue(
                    subject=subject, text=text, recipients=recipients
                )
            )
    return note


def email_send(*, subject: str, text: str, recipients: list[str]) -> int:
    """Send one email now; raises when the mail server refuses it or cannot be reached."""
    return send_mail(subject, text, None, recipients, fail_silently=False)


def _email_or_queue(*, subject: str, text: str, recipients: list[str]) -> None:
    """Send at once (after the commit); if the mail server is down, a Celery task retries with
    back-off, so the email of a notice stored once (dedupe key) is not lost with the outage."""
    try:
        email_send(subject=subject, text=text, recipients=recipients)
    except (SMTPException, OSError) as exc:
        from portal.tasks import send_email_task

        log.warning(
            "email %r to %d recipient(s) failed (%s): queued for retry", subject, len(recipients), exc
        )
        send_email_task.apply_async(args=[subject, text, recipients], countdown=60)


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
