"""Celery tasks of the portal package: each a thin call into a service."""

import logging
from smtplib import SMTPException

from celery import shared_task

from portal import services

log = logging.getLogger(__name__)


@shared_task(time_limit=10 * 60, soft_time_limit=8 * 60)
def outbound_emails_send_due() -> dict:
    """Send the outbox emails that are due: never sent after their commit (a crash), or
    failed and past their back-off (row locks: concurrent runs send each email once)."""
    result = services.outbound_emails_send_due()
    if any(result.values()):
        log.info("outbox emails: %(sent)s sent, %(retry)s to retry, %(failed)s given up", result)
    return result


@shared_task(time_limit=30 * 60, soft_time_limit=25 * 60)
def outbound_emails_prune() -> int:
    """Delete sent outbox emails past the retention period (batched; rerun-safe)."""
    deleted = services.outbound_emails_prune()
    log.info("pruned %s sent outbox emails", deleted)
    return deleted


@shared_task(
    name="portal.send_email",
    acks_late=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=60,
    retry_backoff_max=60 * 60,
    max_retries=12,
)
def send_email_task(subject: str, text: str, recipients: list[str]) -> int:
    """Deprecated: nothing queues this any more (emails go through the outbox,
    ``OutboundEmail``). Kept registered for one release so the retries a broker still holds
    from before the outbox are sent, not dropped as unknown tasks; they end within about half
    a day of the upgrade. Remove in the next release."""
    return services.email_send(subject=subject, text=text, recipients=recipients)
