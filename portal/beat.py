"""Beat entries of the portal package (synced into django-celery-beat's tables)."""

from celery.schedules import crontab

SCHEDULE = {
    "portal-outbound-emails-send-due": {
        "task": "portal.tasks.outbound_emails_send_due",
        # Every minute: an email whose after-commit send died with its process goes out about
        # two minutes after its notice (EMAIL_SWEEP_GRACE), and back-off waits start at one
        # minute; a sweep with nothing due is one read of a small partial index.
        "schedule": crontab(),
    },
}
