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
    "portal-outbound-emails-prune": {
        "task": "portal.tasks.outbound_emails_prune",
        # 04:50 Asia/Shanghai: the quietest hour, after the webhook prune (04:40); retention is
        # in days, so once a day is enough.
        "schedule": crontab(hour=4, minute=50),
    },
}
