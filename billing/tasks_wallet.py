"""Celery tasks for Billing I: each calls one service and is safe to run twice."""

from celery import shared_task

from billing.services import deposit, topup


@shared_task(name="billing.expire_top_ups", time_limit=5 * 60, soft_time_limit=4 * 60)
def expire_top_ups_task() -> int:
    """Pending top-up orders older than 30 minutes → expired (conditional update)."""
    return topup.top_up_expire_due()


@shared_task(name="billing.deposit_transfer_arrears", time_limit=30 * 60, soft_time_limit=25 * 60)
def deposit_transfer_arrears_task() -> dict:
    """FEE-6.3 daily: cover arrears older than one month from the deposit (one per org/day).
    Returns {"transferred", "failed", "failed_organization_ids"}; failures are also logged."""
    return deposit.deposit_transfer_all_due().as_dict()
