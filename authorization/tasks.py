"""Celery tasks: each takes ids, calls one service, is safe to run twice, has a time limit."""

import logging

from celery import shared_task

from authorization import services

log = logging.getLogger(__name__)


@shared_task(time_limit=30 * 60, soft_time_limit=25 * 60)
def grants_daily() -> dict:
    """GRANT-10: record yesterday's expiries, lapse old live-room requests, send reminders."""
    return {
        "expired": services.grant_expiry_record(),
        "requests_expired": services.live_room_request_expire_due(),
        "reminders": services.grant_reminders_send(),
    }


@shared_task(
    bind=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
    time_limit=60,
    soft_time_limit=45,
)
def webhook_deliver(self, organization_id: int, payload: dict, delivery_id: int | None = None) -> int | None:
    """POST an 'access changed' event to the organization's webhook, retried with backoff;
    each attempt is recorded on the delivery row (the settings page lists them).

    Receivers must be idempotent on (grant_id, reason): a retry may repeat a delivered call.
    """
    from authorization.services_webhooks import webhook_delivery_send

    status = webhook_delivery_send(organization_id=organization_id, payload=payload, delivery_id=delivery_id)
    log.info("grant webhook to org %s answered %s", organization_id, status)
    return status


@shared_task(time_limit=30 * 60, soft_time_limit=25 * 60)
def webhook_deliveries_prune() -> int:
    """Delete finished webhook deliveries past the retention period (batched; rerun-safe)."""
    from authorization.services_webhooks import webhook_deliveries_prune as prune

    deleted = prune()
    log.info("pruned %s finished webhook deliveries", deleted)
    return deleted


@shared_task(time_limit=10 * 60, soft_time_limit=8 * 60)
def webhook_deliveries_requeue_stale() -> dict:
    """Re-queue webhook deliveries the broker lost (still pending long after they were
    queued); fail them after a few re-queues (row locks; rerun-safe)."""
    from authorization.services_webhooks import webhook_deliveries_requeue_stale as requeue

    result = requeue()
    log.info("re-queued %(requeued)s lost webhook deliveries, gave up on %(failed)s", result)
    return result
