"""Beat entries of the gifts app (synced into django-celery-beat's tables)."""

from celery.schedules import crontab

SCHEDULE = {
    "gifts-licences-daily": {
        "task": "gifts.tasks.licences_daily",
        # 00:20 Asia/Shanghai: after the day turns, so a licence valid through yesterday
        # suspends its gifts before the shop's business day starts.
        "schedule": crontab(hour=0, minute=20),
    },
    "gifts-document-requests-expire": {
        "task": "gifts.tasks.document_requests_expire",
        # Every 15 minutes: deadlines are instants, a removal should follow within minutes.
        "schedule": crontab(minute="*/15"),
    },
    "gifts-shipments-overdue": {
        "task": "gifts.tasks.shipments_overdue",
        # Hourly at :05: promised ship times are instants; an hour's lag is within the rule.
        "schedule": crontab(minute=5),
    },
}
