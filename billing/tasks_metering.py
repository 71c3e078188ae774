"""Celery tasks for Billing II: each takes ids, calls one service and is safe to run twice."""

import datetime as dt

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import InterfaceError, OperationalError

from billing.services import metering, settlement, usage
from portal import clock


@shared_task(
    bind=True,
    name="billing.settle_chunk",
    acks_late=True,
    time_limit=30 * 60,
    soft_time_limit=25 * 60,
)
def settle_chunk_task(self, chunk_id: int) -> int:
    """One chunk of organizations of a month (idempotent: a done or failed chunk is skipped).

    A database restart or a dropped connection: the chunk rolled back, try again shortly (back-off
    from 30 s to 15 min). Anything else is left to the daily beat, which re-sends every unfinished
    chunk. Each run of the task (retry, redelivery after a lost worker, beat) is one of the chunk's
    attempts, and BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS is the only limit: the retries allowed are
    read from it at each retry, one more than the attempts, so the run after the last attempt finds
    the chunk failed and ends the chain (a fixed ``max_retries`` below the setting ended it first,
    leaving the chunk open for the next day's beat). Only a run that could not reach the database
    to count its attempt can make the chain end with the chunk still open; the beat sends it again.
    """
    try:
        return settlement.settlement_settle_chunk(chunk_id=chunk_id)
    except (OperationalError, InterfaceError) as exc:
        countdown = get_exponential_backoff_interval(
            factor=30, retries=self.request.retries, maximum=15 * 60, full_jitter=True
        )
        raise self.retry(
            exc=exc, countdown=countdown, max_retries=settlement.settlement_chunk_max_attempts()
        ) from exc


@shared_task(name="billing.settle_month", time_limit=30 * 60, soft_time_limit=25 * 60)
def settle_month_task(year: int, month: int, actor_id: int | None = None) -> int | None:
    """Plan a month and fan its chunks out as ``settle_chunk_task`` (staff 'run month')."""
    actor = None
    if actor_id is not None:
        from portal.models import User

        actor = User.objects.filter(pk=actor_id).first()
    run = settlement.settlement_run_month(year=year, month=month, actor=actor, fan_out=True)
    return run.pk if run else None


@shared_task(name="billing.settle_due_months", time_limit=60 * 60, soft_time_limit=55 * 60)
def settle_due_months_task(today: str | None = None) -> list[str]:
    """FEE-4.2 beat job: the previous month, and any missed or unfinished month since 2023-03
    (an unfinished month's pending chunks are sent again).

    ``today`` (ISO date) is for tests and staff replays; beat passes nothing (today's date)."""
    day = dt.date.fromisoformat(today) if today else clock.today()
    done = []
    for year, month in settlement.settlement_due_months(today=day):
        if settlement.settlement_run_month(year=year, month=month, fan_out=True) is not None:
            done.append(f"{year}-{month:02d}")
    return done


@shared_task(name="billing.recheck_month", time_limit=30 * 60, soft_time_limit=25 * 60)
def recheck_month_task(year: int, month: int, actor_id: int | None = None) -> bool:
    actor = None
    if actor_id is not None:
        from portal.models import User

        actor = User.objects.filter(pk=actor_id).first()
    return settlement.settlement_recheck_month(year=year, month=month, actor=actor)["ok"]


@shared_task(name="billing.usage_partitions", time_limit=10 * 60)
def usage_partitions_task() -> list[str]:
    """Create this month's usage partition and the next three ahead."""
    return usage.usage_partitions_ensure_ahead(today=clock.today(), months_ahead=3)


@shared_task(name="billing.api_tiers_apply_due", time_limit=10 * 60, soft_time_limit=9 * 60)
def api_tiers_apply_due_task(today: str | None = None) -> list[str]:
    """FEE-2.1 beat job at 00:00: the gate's tier becomes the tier in force today (idempotent).

    ``today`` (ISO date) is for tests and staff replays; beat passes nothing (today's date)."""
    return metering.api_tiers_apply_due(today=dt.date.fromisoformat(today) if today else None)
