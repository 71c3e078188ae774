"""Beat entries of Billing I (crontabs are in CELERY_TIMEZONE = Asia/Shanghai)."""

from celery.schedules import crontab

SCHEDULE: dict = {
    # Top-up orders expire 30 minutes after creation; every 5 minutes keeps the result page
    # honest (an order shows "expired" at most 5 minutes late).
    "billing-expire-top-ups": {
        "task": "billing.expire_top_ups",
        "schedule": crontab(minute="*/5"),
    },
    # FEE-6.3: daily at 03:30, after the 5th's 02:00 settlement has had time to finish, cover
    # arrears older than one month from the deposit. Idempotent per organization and day.
    "billing-deposit-transfer-arrears": {
        "task": "billing.deposit_transfer_arrears",
        "schedule": crontab(minute=30, hour=3),
    },
}
