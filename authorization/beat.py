"""Beat entries of the authorization app (synced into django-celery-beat's tables)."""

from celery.schedules import crontab

SCHEDULE = {
    "authorization-grants-daily": {
        "task": "authorization.tasks.grants_daily",
        # 00:10 Asia/Shanghai (CELERY_TIMEZONE): just after the business day turns, so
        # yesterday's end dates are recorded and 7-day reminders go out in the morning inbox.
        "schedule": crontab(hour=0, minute=10),
    },
    "authorization-webhook-deliveries-prune": {
        "task": "authorization.tasks.webhook_deliveries_prune",
        # 04:40 Asia/Shanghai: the quietest hour, clear of the night's settlement (02:00 on the
        # 5th) and arrears (03:30) jobs; retention is in days, so once a day is enough.
        "schedule": crontab(hour=4, minute=40),
    },
    "authorization-webhook-deliveries-requeue-stale": {
        "task": "authorization.tasks.webhook_deliveries_requeue_stale",
        # Every 5 minutes: a delivery the broker lost is re-queued within 5 minutes of turning
        # stale (WEBHOOK_DELIVERY_STALE_MINUTES); a sweep with nothing stale is one index read.
        "schedule": crontab(minute="*/5"),
    },
}
