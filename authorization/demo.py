"""Demo data for ``seed_demo`` (idempotent): live rooms and ~60 days of sales for the demo
creators, grants in each state, and a pending live-room request.

- creator → shop: all_data, authorized (已授权)
- creator → shop2: all_data, expired (已到期)
- creator2 → agency: all_data, revoked (已被解除授权)
- creator2 → shop: all_data, scheduled (待生效)
- shop2 asks for creator's room 「小鹿带货·618 预热专场」: pending
- agency has nothing from creator: the browser journey unlocks 「小鹿带货·春季上新专场」.
"""

import datetime as dt
import random

from django.db import transaction

from authorization.models import (
    CreatorDailySales,
    Grant,
    GrantEvent,
    LiveRoom,
    LiveRoomRequest,
    LiveRoomSales,
    Scope,
)
from portal import clock
from portal import demo as portal_demo

ROOMS = {
    "creator": [
        "小鹿带货·春季上新专场",
        "小鹿带货·618 预热专场",
        "小鹿带货·美妆护肤夜",
        "小鹿带货·家居好物节",
    ],
    "creator2": ["阿杰好物·数码开箱", "阿杰好物·零食囤货日", "阿杰好物·户外装备专场"],
}
DAYS = 60


def _rooms(creator, titles, today):
    rooms = []
    for i, title in enumerate(titles):
        start = clock.start_of_day(today - dt.timedelta(days=3 + 7 * i)) + dt.timedelta(hours=19, minutes=30)
        room, _ = LiveRoom.objects.get_or_create(
            creator=creator,
            title=title,
            defaults={"started_at": start, "ended_at": start + dt.timedelta(hours=4)},
        )
        rooms.append(room)
    return rooms


def _sales(creator, rooms, today):
    rng = random.Random(creator.douyin_id)
    base = rng.randint(80_000_00, 200_000_00)
    rows = []
    for d in range(DAYS):
        day = today - dt.timedelta(days=DAYS - 1 - d)
        weekend = 1.35 if day.weekday() >= 5 else 1.0
        gmv = int(base * weekend * rng.uniform(0.6, 1.4))
        orders = max(1, gmv // rng.randint(60_00, 150_00))
        rows.append(
            CreatorDailySales(
                creator=creator, date=day, gmv_fen=gmv, orders=orders, viewers=orders * rng.randint(20, 60)
            )
        )
    CreatorDailySales.objects.bulk_create(rows, ignore_conflicts=True)
    hourly = []
    for room in rooms:
        for h in range(5):
            gmv = int(rng.uniform(5_000_00, 40_000_00) * (1.6 if h in (1, 2) else 1))
            orders = max(1, gmv // rng.randint(80_00, 200_00))
            hourly.append(
                LiveRoomSales(
                    live_room=room,
                    hour_at=room.started_at + dt.timedelta(hours=h),
                    gmv_fen=gmv,
                    orders=orders,
                    viewers=orders * rng.randint(30, 90),
                )
            )
    LiveRoomSales.objects.bulk_create(hourly, ignore_conflicts=True)


def _grant(creator, org, *, start, end, actor, revoked_at=None):
    if Grant.objects.filter(creator=creator, organization=org, scope=Scope.ALL_DATA).exists():
        return
    grant = Grant.objects.create(
        creator=creator,
        organization=org,
        scope=Scope.ALL_DATA,
        start_date=start,
        end_date=end,
        created_by=actor,
        revoked_at=revoked_at,
        revoked_by=actor if revoked_at else None,
    )
    GrantEvent.objects.create(
        grant=grant,
        operation="authorize",
        actor=actor,
        new_start_date=start,
        new_end_date=end,
        at=clock.start_of_day(start),
    )
    if revoked_at:
        GrantEvent.objects.create(
            grant=grant,
            operation="revoke",
            actor=actor,
            old_start_date=start,
            old_end_date=end,
            new_start_date=start,
            new_end_date=end,
            at=revoked_at,
        )


@transaction.atomic
def seed():
    today = clock.today()
    creator = portal_demo.user("creator").creator
    creator2 = portal_demo.user("creator2").creator
    rooms = {c: _rooms(c, ROOMS[key], today) for key, c in (("creator", creator), ("creator2", creator2))}
    for c, rs in rooms.items():
        _sales(c, rs, today)
    d = dt.timedelta
    _grant(
        creator, portal_demo.organization("shop"), start=today - d(30), end=today + d(30), actor=creator.user
    )
    _grant(
        creator, portal_demo.organization("shop2"), start=today - d(60), end=today - d(5), actor=creator.user
    )
    _grant(
        creator2,
        portal_demo.organization("agency"),
        start=today - d(20),
        end=today + d(40),
        actor=creator2.user,
        revoked_at=clock.start_of_day(today - d(2)) + d(hours=10),
    )
    _grant(
        creator2, portal_demo.organization("shop"), start=today + d(3), end=today + d(45), actor=creator2.user
    )
    shop2 = portal_demo.organization("shop2")
    room = rooms[creator][1]
    if not LiveRoomRequest.objects.filter(organization=shop2, live_room=room).exists():
        now = clock.now()
        LiveRoomRequest.objects.create(
            organization=shop2,
            live_room=room,
            creator=creator,
            requested_by=portal_demo.user("shop2"),
            created_at=now,
            expires_at=now + d(days=7),
        )
