"""Celery tasks of the portal package: each a thin call into a service."""

from smtplib import SMTPException

from celery import shared_task

from portal import services


@shared_task(
    name="portal.send_email",
    acks_late=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=60,
    retry_backoff_max=60 * 60,
    max_retries=12,  # about half a day of a mail server that is down
)
def send_email_task(subject: str, text: str, recipients: list[str]) -> int:
    """An email the mail server refused or could not take when the notice was sent."""
    return services.email_send(subject=subject, text=text, recipients=recipients)
