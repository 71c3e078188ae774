"""Every database constraint of the app refuses a bad row by itself (IntegrityError)."""

import datetime as dt

import pytest
from django.db import IntegrityError, ProgrammingError, transaction
from django.utils import timezone

from authorization.models import CreatorDailySales, Grant, GrantEvent, LiveRoomRequest, LiveRoomSales
from authorization.tests.conftest import days
from authorization.tests.factories import TODAY, GrantFactory, LiveRoomFactory, LiveRoomRequestFactory

pytestmark = pytest.mark.django_db


def rejects(fn, exc=IntegrityError):
    with pytest.raises(exc), transaction.atomic():
        fn()


def test_grant_exclusion_one_live_all_data_grant_per_pair_at_a_time(creator, shop):
    GrantFactory(creator=creator, organization=shop, start_date=TODAY, end_date=TODAY + days(10))
    # Overlapping on the last day only: '[]' ranges make the end date inclusive (GRANT-10).
    rejects(
        lambda: GrantFactory(
            creator=creator,
            organization=shop,
            start_date=TODAY + days(10),
            end_date=TODAY + days(20),
            is_current=False,
        )
    )
    GrantFactory(
        creator=creator,
        organization=shop,
        start_date=TODAY + days(11),
        end_date=TODAY + days(20),
        is_current=False,
    )


def test_grant_exclusion_ignores_revoked_grants(creator, shop):
    GrantFactory(creator=creator, organization=shop, revoked_at=timezone.now(), is_current=False)
    GrantFactory(creator=creator, organization=shop)


def test_grant_scope_valid(creator, shop):
    rejects(lambda: GrantFactory(creator=creator, organization=shop, scope="everything"))


def test_grant_scope_room_all_data_has_no_room(creator, shop):
    rejects(
        lambda: GrantFactory(creator=creator, organization=shop, live_room=LiveRoomFactory(creator=creator))
    )


def test_grant_scope_room_live_room_needs_a_room(creator, shop):
    rejects(lambda: GrantFactory(creator=creator, organization=shop, scope="live_room"))


def test_grant_scope_room_all_data_needs_an_end(creator, shop):
    rejects(lambda: GrantFactory(creator=creator, organization=shop, end_date=None))


def test_grant_end_after_start(creator, shop):
    rejects(
        lambda: GrantFactory(creator=creator, organization=shop, start_date=TODAY, end_date=TODAY - days(1))
    )


def test_grant_revoked_by_needs_revoked_at(creator, shop):
    rejects(lambda: GrantFactory(creator=creator, organization=shop, revoked_by=creator.user))


def test_grant_one_live_room_grant_per_room_and_org(creator, shop):
    room = LiveRoomFactory(creator=creator)
    GrantFactory(creator=creator, organization=shop, scope="live_room", live_room=room, end_date=None)
    rejects(
        lambda: GrantFactory(
            creator=creator,
            organization=shop,
            scope="live_room",
            live_room=room,
            end_date=None,
            is_current=False,
        )
    )


def test_grant_one_current_row_per_pair(creator, shop):
    GrantFactory(creator=creator, organization=shop, revoked_at=timezone.now())
    rejects(lambda: GrantFactory(creator=creator, organization=shop))


def test_grant_one_current_row_per_room(creator, shop):
    room = LiveRoomFactory(creator=creator)
    GrantFactory(
        creator=creator,
        organization=shop,
        scope="live_room",
        live_room=room,
        end_date=None,
        revoked_at=timezone.now(),
    )
    rejects(
        lambda: GrantFactory(
            creator=creator, organization=shop, scope="live_room", live_room=room, end_date=None
        )
    )


def test_event_history_is_append_only(creator, shop):
    g = GrantFactory(creator=creator, organization=shop)
    ev = GrantEvent.objects.create(grant=g, operation="authorize")
    rejects(lambda: GrantEvent.objects.filter(pk=ev.pk).update(reason="edited"), ProgrammingError)
    rejects(lambda: GrantEvent.objects.filter(pk=ev.pk).delete(), ProgrammingError)


def test_event_operation_valid(creator, shop):
    g = GrantFactory(creator=creator, organization=shop)
    rejects(lambda: GrantEvent.objects.create(grant=g, operation="edit"))


def test_event_expire_once_per_end_date(creator, shop):
    g = GrantFactory(creator=creator, organization=shop)
    GrantEvent.objects.create(grant=g, operation="expire", old_end_date=TODAY)
    rejects(lambda: GrantEvent.objects.create(grant=g, operation="expire", old_end_date=TODAY))
    GrantEvent.objects.create(grant=g, operation="expire", old_end_date=TODAY + days(30))


def test_request_one_pending_per_org_and_room(shop):
    req = LiveRoomRequestFactory(organization=shop)
    rejects(lambda: LiveRoomRequestFactory(organization=shop, live_room=req.live_room))


def test_request_status_valid(shop):
    rejects(lambda: LiveRoomRequestFactory(organization=shop, status="maybe"))


def test_request_authorized_has_grant(shop):
    rejects(lambda: LiveRoomRequestFactory(organization=shop, status=LiveRoomRequest.Status.AUTHORIZED))


def test_request_expires_after_created(shop):
    now = timezone.now()
    rejects(lambda: LiveRoomRequestFactory(organization=shop, created_at=now, expires_at=now))


def test_daily_sales_one_per_day_and_non_negative(creator):
    CreatorDailySales.objects.create(creator=creator, date=TODAY, gmv_fen=1, orders=1, viewers=1)
    rejects(
        lambda: CreatorDailySales.objects.create(creator=creator, date=TODAY, gmv_fen=1, orders=1, viewers=1)
    )
    rejects(
        lambda: CreatorDailySales.objects.create(
            creator=creator, date=TODAY + days(1), gmv_fen=-1, orders=1, viewers=1
        )
    )


def test_room_sales_one_per_hour_and_non_negative(creator):
    room = LiveRoomFactory(creator=creator)
    at = dt.datetime(2026, 3, 10, 20, tzinfo=dt.UTC)
    LiveRoomSales.objects.create(live_room=room, hour_at=at, gmv_fen=1, orders=1, viewers=1)
    rejects(lambda: LiveRoomSales.objects.create(live_room=room, hour_at=at, gmv_fen=1, orders=1, viewers=1))
    rejects(
        lambda: LiveRoomSales.objects.create(
            live_room=room, hour_at=at + dt.timedelta(hours=1), gmv_fen=1, orders=-1, viewers=1
        )
    )


def test_grants_are_protected_from_deletion_while_events_refer_to_them(creator, shop):
    from django.db.models import ProtectedError

    g = GrantFactory(creator=creator, organization=shop)
    GrantEvent.objects.create(grant=g, operation="authorize")
    with pytest.raises(ProtectedError):
        Grant.objects.filter(pk=g.pk).delete()
