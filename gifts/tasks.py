"""Celery tasks of the gifts app: each calls one service, is safe to run twice (state
transitions and unique keys), and has a time limit."""

from celery import shared_task

from gifts import services


@shared_task(time_limit=30 * 60, soft_time_limit=25 * 60)
def licences_daily() -> dict:
    """GIFT-2.3: notice 30 days before a licence expires; suspend gifts whose licence lapsed."""
    return services.qualification_expiry_run()


@shared_task(time_limit=15 * 60, soft_time_limit=12 * 60)
def document_requests_expire() -> int:
    """GIFT-3(3): documents demanded and not provided by the deadline → the gift is removed."""
    return services.document_request_expire_run()


@shared_task(time_limit=15 * 60, soft_time_limit=12 * 60)
def shipments_overdue() -> int:
    """GIFT-2.6/4.2: gifts not shipped by their due time are judged once (违背承诺)."""
    return services.gift_shipment_overdue_run()
