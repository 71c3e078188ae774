"""Beat entries of Billing II (crontabs are in CELERY_TIMEZONE = Asia/Shanghai)."""

from celery.schedules import crontab

SCHEDULE: dict = {
    # FEE-4.2: at 02:00 on the 5th, settle the previous natural month and catch up any
    # missed month since 2023-03.
    "billing-settle-due-months": {
        "task": "billing.settle_due_months",
        "schedule": crontab(minute=0, hour=2, day_of_month=5),
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
