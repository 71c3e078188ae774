"""Beat entries of Billing II (crontabs are in CELERY_TIMEZONE = Asia/Shanghai)."""

from celery.schedules import crontab

SCHEDULE: dict = {
    # FEE-4.2: daily at 02:00. On the 5th it settles the previous natural month; every day it
    # catches up any month since 2023-03 that is not done: missed (beat was down on the 5th) or
    # unfinished (a chunk failed: its pending chunks are sent again). Nothing is due on days 1-4.
    "billing-settle-due-months": {
        "task": "billing.settle_due_months",
        "schedule": crontab(minute=0, hour=2),
    },
    # Usage partitions exist three months ahead; daily at 01:10 so a failure is retried
    # long before a month starts.
    "billing-usage-partitions": {
        "task": "billing.usage_partitions",
        "schedule": crontab(minute=10, hour=1),
    },
    # FEE-2.1: a tier change takes effect from the next day; at 00:00 each day the gate's
    # Api.tier is set to the tier in force that day (settlement already bills by the history).
    "billing-api-tiers-apply-due": {
        "task": "billing.api_tiers_apply_due",
        "schedule": crontab(minute=0, hour=0),
    },
}
