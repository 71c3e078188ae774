"""The only place in the app that takes row locks; several rows are always locked in pk order.

Every grant operation of a creator first locks the creator's row: two concurrent authorizes
of the same (creator, organization) would otherwise both see "no live grant" and both insert
(the exclusion constraint would then fail one of them with an IntegrityError instead of a
rule code). A live-room request locks its room for the same reason (one pending per pair).

The sweeper of lost webhook deliveries locks the stale pending rows it re-queues, skipping rows
another sweep holds: two concurrent sweeps never queue the same row twice.
"""

import datetime as dt

from django.db.models.functions import Coalesce

from authorization.models import Grant, LiveRoom, LiveRoomRequest, WebhookDelivery
from portal.models import Creator


def lock_creator(creator_id: int) -> Creator:
    return Creator.objects.select_for_update().get(pk=creator_id)


def lock_grants(grant_ids) -> list[Grant]:
    return list(Grant.objects.select_for_update().filter(pk__in=grant_ids).order_by("pk"))


def lock_grant(grant_id: int) -> Grant:
    return Grant.objects.select_for_update().select_related("organization", "creator").get(pk=grant_id)


def lock_live_room(live_room_id: int) -> LiveRoom:
    return LiveRoom.objects.select_for_update().get(pk=live_room_id)


def lock_request(request_id: int) -> LiveRoomRequest:
    return LiveRoomRequest.objects.select_for_update().get(pk=request_id)


def lock_stale_deliveries(*, queued_before: dt.datetime, limit: int) -> list[WebhookDelivery]:
    """Pending deliveries last (re-)queued before ``queued_before``, at most ``limit``, in pk
    order. SKIP LOCKED: a row a concurrent sweep holds is its to handle; once that sweep
    commits, its new ``requeued_at`` (or failed status) keeps the row out of this filter."""
    return list(
        WebhookDelivery.objects.select_for_update(skip_locked=True)
        .alias(queued_at=Coalesce("requeued_at", "created_at"))
        .filter(status=WebhookDelivery.Status.PENDING, queued_at__lt=queued_before)
        .order_by("pk")[:limit]
    )
