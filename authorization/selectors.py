"""Reads shared by pages, API and admin: always scoped by the acting party.

State (GRANT-10) is derived here from dates, ``revoked_at`` and today in Asia/Shanghai; the
access check (GRANT-11) caches the pair's grant windows, never a decision, so an expiry needs
no invalidation and a revocation is seen on the next call (services bump the pair's version
after commit).
"""

import dataclasses
import datetime as dt
import time

from django.core.cache import cache
from django.db.models import Case, CharField, F, Q, QuerySet, Value, When
from django.shortcuts import get_object_or_404

from authorization.models import (
    LIST_END,
    CreatorDailySales,
    Grant,
    GrantEvent,
    GrantState,
    LiveRoom,
    LiveRoomRequest,
    LiveRoomSales,
    Scope,
)
from portal import clock, hotcache
from portal.errors import NotFound
from portal.models import Creator, Membership

CACHE_TTL = 60 * 60


# --- state (GRANT-10) ----------------------------------------------------------------------------


def grant_state(*, start_date, end_date, revoked: bool, today: dt.date) -> str:
    """A grant with end date D is valid through the end of D (Asia/Shanghai)."""
    if revoked:
        return GrantState.REVOKED
    if start_date > today:
        return GrantState.SCHEDULED
    if end_date is not None and end_date < today:
        return GrantState.EXPIRED
    return GrantState.AUTHORIZED


def state_of(grant: Grant, today: dt.date | None = None) -> str:
    return grant_state(
        start_date=grant.start_date,
        end_date=grant.end_date,
        revoked=grant.revoked_at is not None,
        today=today or clock.today(),
    )


def state_condition(state: str, today: dt.date) -> Q:
    """The same derivation as a WHERE clause, so lists filter by state on the end_date index."""
    live = Q(revoked_at__isnull=True)
    return {
        GrantState.REVOKED: Q(revoked_at__isnull=False),
        GrantState.SCHEDULED: live & Q(start_date__gt=today),
        GrantState.EXPIRED: live & Q(start_date__lte=today, end_date__lt=today),
        GrantState.AUTHORIZED: live
        & Q(start_date__lte=today)
        & (Q(end_date__gte=today) | Q(end_date__isnull=True)),
    }[state]


def _with_state(qs: QuerySet, today: dt.date) -> QuerySet:
    return qs.annotate(
        state=Case(
            *(When(state_condition(s, today), then=Value(s.value)) for s in GrantState),
            output_field=CharField(),
        )
    )


# --- lists (GRANT-7, GRANT-8) --------------------------------------------------------------------


# Both lists sort by (list_end, id): the end date (live_room grants, which have none, last)
# and the id as the unique tiebreaker. Pages and API read them a keyset page at a time
# (portal.pagination.keyset_page with LIST_KEYS), a seek on the matching index whatever the
# depth, never an OFFSET.
LIST_KEYS = ("list_end", "id")


def _list_state_condition(state: str, today: dt.date) -> Q:
    """``state_condition`` on the list's sort key: for these rows ``list_end`` is the end date
    or a far date for "no end", so expired / authorized become ranges of the list index."""
    live = Q(revoked_at__isnull=True)
    return {
        GrantState.REVOKED: Q(revoked_at__isnull=False),
        GrantState.SCHEDULED: live & Q(start_date__gt=today),
        GrantState.EXPIRED: live & Q(start_date__lte=today, list_end__lt=today),
        GrantState.AUTHORIZED: live & Q(start_date__lte=today, list_end__gte=today),
    }[state]


def grant_list_for_creator(*, creator: Creator, today: dt.date | None = None, state: str | None = None):
    """GRANT-7: organizations holding all_data grants from this creator, nearest end first.

    all_data grants always have an end date, so ``list_end`` is ``end_date`` itself and the
    creator's list index (creator, end_date, id) serves sort, seek and state ranges."""
    today = today or clock.today()
    qs = Grant.objects.filter(creator=creator, is_current=True, scope=Scope.ALL_DATA).annotate(
        list_end=F("end_date")
    )
    if state:
        qs = qs.filter(_list_state_condition(state, today))
    return _with_state(qs, today).select_related("organization").order_by(*LIST_KEYS)


def live_room_grant_list_for_creator(*, creator: Creator, today: dt.date | None = None):
    today = today or clock.today()
    qs = Grant.objects.filter(
        creator=creator, is_current=True, scope=Scope.LIVE_ROOM, revoked_at__isnull=True
    )
    return _with_state(qs, today).select_related("organization", "live_room").order_by("-created_at", "-id")


def visible_scopes(membership: Membership) -> list[str]:
    """GRANT-9: all_data grants are for the main account only; live_room for main and sub."""
    return [Scope.ALL_DATA, Scope.LIVE_ROOM] if membership.is_main else [Scope.LIVE_ROOM]


def grant_list_for_organization(
    *,
    membership: Membership,
    today: dt.date | None = None,
    state: str | None = None,
    scope: str | None = None,
):
    """GRANT-8: every creator that ever granted this organization, with state, nearest end first."""
    today = today or clock.today()
    scopes = visible_scopes(membership)
    if scope:
        scopes = [s for s in scopes if s == scope]
    qs = Grant.objects.filter(organization_id=membership.organization_id, is_current=True)
    # One scope as an equality, so a sub-account's list uses the live_room partial index.
    qs = qs.filter(scope=scopes[0]) if len(scopes) == 1 else qs.filter(scope__in=scopes)
    qs = qs.annotate(list_end=LIST_END)  # the expression of the organization's list index
    if state:
        qs = qs.filter(_list_state_condition(state, today))
    return _with_state(qs, today).select_related("creator", "live_room").order_by(*LIST_KEYS)


def webhook_delivery_list(*, membership: Membership, limit: int = 20) -> list:
    """The organization's most recent webhook deliveries (GRANT-9: main account only)."""
    from authorization.models import WebhookDelivery

    if not membership.is_main:
        return []
    return list(
        WebhookDelivery.objects.filter(organization_id=membership.organization_id).order_by(
            "-created_at", "-id"
        )[:limit]
    )


def live_room_request_pending_for_creator(*, creator: Creator, now: dt.datetime | None = None):
    """GRANT-7: pending live-room requests; a request older than 7 days is expired already."""
    now = now or clock.now()
    return (
        LiveRoomRequest.objects.filter(
            creator=creator, status=LiveRoomRequest.Status.PENDING, expires_at__gt=now
        )
        .select_related("organization", "live_room", "requested_by")
        .order_by("expires_at", "id")
    )


def live_room_request_list_for_organization(*, membership: Membership):
    return (
        LiveRoomRequest.objects.filter(organization_id=membership.organization_id)
        .select_related("live_room", "creator")
        .order_by("-created_at", "-id")
    )


def request_status(req: LiveRoomRequest, now: dt.datetime | None = None) -> str:
    if req.status == LiveRoomRequest.Status.PENDING and req.expires_at <= (now or clock.now()):
        return LiveRoomRequest.Status.EXPIRED
    return req.status


# --- objects for one party (another party's ids answer 404) ----------------------------------------


def grant_get_for_creator(*, creator: Creator, grant_id) -> Grant:
    return get_object_or_404(
        Grant.objects.select_related("organization", "live_room"), pk=grant_id, creator=creator
    )


def grant_get_for_membership(*, membership: Membership, grant_id) -> Grant:
    return get_object_or_404(
        Grant.objects.select_related("creator", "live_room"),
        pk=grant_id,
        organization_id=membership.organization_id,
        scope__in=visible_scopes(membership),
    )


def grant_get_for_user(*, user, membership: Membership | None, grant_id) -> Grant:
    """A grant either party may see (the creator, or the organization within GRANT-9)."""
    creator = getattr(user, "creator", None)
    cond = Q(pk=-1)
    if creator is not None:
        cond |= Q(creator=creator)
    if membership is not None:
        cond |= Q(organization_id=membership.organization_id, scope__in=visible_scopes(membership))
    grant = (
        Grant.objects.select_related("creator", "organization", "live_room").filter(cond, pk=grant_id).first()
    )
    if grant is None:
        raise NotFound()
    return grant


def grant_event_list(*, grant: Grant) -> QuerySet[GrantEvent]:
    return grant.events.select_related("actor").order_by("at", "id")


def live_room_request_get_for_creator(*, creator: Creator, request_id) -> LiveRoomRequest:
    return get_object_or_404(
        LiveRoomRequest.objects.select_related("organization", "live_room"), pk=request_id, creator=creator
    )


def live_room_get(*, live_room_id) -> LiveRoom:
    """Live rooms are public listings (title, time); their figures are what grants protect."""
    return get_object_or_404(LiveRoom.objects.select_related("creator"), pk=live_room_id)


def live_room_list(*, query: str = "", creator_id=None) -> QuerySet[LiveRoom]:
    qs = LiveRoom.objects.select_related("creator")
    if creator_id is not None:
        qs = qs.filter(creator_id=creator_id)
    if query:
        qs = qs.filter(Q(title__icontains=query) | Q(creator__nickname__icontains=query))
    return qs.order_by("-started_at", "-id")


def creator_daily_sales(*, creator_id: int, days: int = 60, today: dt.date | None = None):
    today = today or clock.today()
    return CreatorDailySales.objects.filter(
        creator_id=creator_id, date__gt=today - dt.timedelta(days=days), date__lte=today
    ).order_by("date")


def live_room_sales(*, live_room_id: int):
    return LiveRoomSales.objects.filter(live_room_id=live_room_id).order_by("hour_at")


def chart_config(*, labels: list[str], gmv_fen: list[int], label: str) -> dict:
    """A Chart.js config drawn by static/portal/app.js (canvas[data-chart] + json_script)."""
    return {
        "type": "line",
        "data": {
            "labels": labels,
            "datasets": [{"label": label, "data": [round(v / 100, 2) for v in gmv_fen], "tension": 0.2}],
        },
        "options": {
            "animation": False,
            "maintainAspectRatio": False,
            "plugins": {"legend": {"display": True}},
            # From zero: an axis starting near the smallest day made a 5% dip look like a crash.
            "scales": {"y": {"beginAtZero": True}},
        },
    }


# --- access check (GRANT-11) ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    state: str  # authorized / scheduled / expired / revoked / none
    valid_until: dt.date | None
    code: str  # the rule that decided

    def as_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "state": self.state,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "code": self.code,
        }


def _version_key(org_id, creator_id) -> str:
    return f"authz:v:{org_id}:{creator_id}"


def _windows_key(org_id, creator_id) -> str:
    return f"authz:w:{org_id}:{creator_id}"


def access_cache_invalidate(*, organization_id: int, creator_id: int) -> None:
    """Called after commit by every grant change: a new version makes cached windows stale.

    A reader that loaded the windows before the commit stored them under the old version, so
    no interleaving can resurrect them (see ``_pair_windows``).
    """
    hotcache.set(_version_key(organization_id, creator_id), time.time_ns(), CACHE_TTL * 2)


def _pair_windows(org_id: int, creator_id: int) -> list[tuple]:
    """The pair's current grant rows as (scope, room_id, start, end, revoked).

    A hit is one MGET through ``portal.hotcache``: from process memory while neither key changed
    (Redis pushes the change of the version key to every process that read it).
    """
    vkey, wkey = _version_key(org_id, creator_id), _windows_key(org_id, creator_id)
    got = hotcache.get_many([vkey, wkey])
    version = got.get(vkey)
    cached = got.get(wkey)
    if version is not None and cached is not None and cached[0] == version:
        return cached[1]
    if version is None:
        version = time.time_ns()
        if not cache.add(vkey, version, CACHE_TTL * 2):
            version = cache.get(vkey)
    rows = [
        (scope, room_id, start.toordinal(), end.toordinal() if end else None, revoked_at is not None)
        for scope, room_id, start, end, revoked_at in Grant.objects.filter(
            organization_id=org_id, creator_id=creator_id, is_current=True
        ).values_list("scope", "live_room_id", "start_date", "end_date", "revoked_at")
    ]
    if version is not None:
        cache.set(wkey, (version, rows), CACHE_TTL)
    return rows


def _room_creator_id(live_room_id: int) -> int | None:
    key = f"authz:room:{live_room_id}"
    creator_id = hotcache.get(key)
    if creator_id is None:
        creator_id = LiveRoom.objects.filter(pk=live_room_id).values_list("creator_id", flat=True).first()
        if creator_id is not None:
            cache.set(key, creator_id, CACHE_TTL * 24)  # a room never changes creator
    return creator_id


def _decide(row, today_ord: int) -> AccessDecision:
    _scope, _room, start, end, revoked = row
    state = grant_state(
        start_date=start, end_date=end, revoked=revoked, today=today_ord
    )  # ordinals compare like dates
    valid_until = dt.date.fromordinal(end) if end is not None else None
    code = "GRANT-4" if state == GrantState.REVOKED else "GRANT-10"
    return AccessDecision(state == GrantState.AUTHORIZED, str(state), valid_until, code)


NO_GRANT = AccessDecision(False, "none", None, "GRANT-1")


def access_check(
    *,
    organization_id: int,
    creator_id: int,
    scope: str,
    live_room_id: int | None = None,
    membership: Membership | None = None,
    user=None,
    today: dt.date | None = None,
) -> AccessDecision:
    """GRANT-11: may organization O (as membership/user U) see creator C's data, scope S, room R?

    all_data: the pair's all_data window contains today and it is not revoked, and the viewer
    is the main account (GRANT-9). live_room: a live_room grant for that room, or (main account
    only) an authorized all_data grant. Decided from dates at call time (GRANT-10).
    """
    today = today or clock.today()
    if membership is None and user is not None:
        membership = (
            Membership.objects.filter(user=user, organization_id=organization_id).only("role").first()
        )
        if membership is None:
            return AccessDecision(False, "none", None, "GRANT-9")
    is_main = membership is None or membership.is_main  # no viewer given: the organization itself
    if scope == Scope.ALL_DATA and not is_main:
        return AccessDecision(False, "none", None, "GRANT-9")
    if scope == Scope.LIVE_ROOM:
        if live_room_id is None or _room_creator_id(live_room_id) != creator_id:
            return NO_GRANT
    elif scope != Scope.ALL_DATA:
        return NO_GRANT
    rows = _pair_windows(organization_id, creator_id)
    today_ord = today.toordinal()
    all_data = next((_decide(r, today_ord) for r in rows if r[0] == Scope.ALL_DATA), None)
    if scope == Scope.ALL_DATA:
        return all_data or NO_GRANT
    room = next(
        (_decide(r, today_ord) for r in rows if r[0] == Scope.LIVE_ROOM and r[1] == live_room_id), None
    )
    if room is not None and room.allowed:
        return room
    if is_main and all_data is not None and all_data.allowed:
        return all_data
    return room or NO_GRANT
