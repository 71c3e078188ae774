"""Beat entries of the authorization app (synced into django-celery-beat's tables)."""

from celery.schedules import crontab

SCHEDULE = {
    "authorization-grants-daily": {
        "task": "authorization.tasks.grants_daily",
        # 00:10 Asia/Shanghai (CELERY_TIMEZONE): just after the business day turns, so
        # yesterday's end dates are recorded and 7-day reminders go out in the morning inbox.
        "schedule": crontab(hour=0, minute=10),
    },
}
