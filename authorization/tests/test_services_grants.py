"""Grant operations (GRANT-1..6): each refusal names its rule and field; events are written."""

import datetime as dt

import pytest
from django.db import transaction

from authorization import services
from authorization.errors import GrantRuleError
from authorization.models import Grant, GrantEvent, GrantState, Scope
from authorization.selectors import state_of
from authorization.tests.conftest import days
from authorization.tests.factories import TODAY, GrantFactory, LiveRoomFactory
from portal.models import Notification, Organization
from portal.tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def authorize(creator, orgs, start=TODAY, end=TODAY + days(30), today=TODAY):
    return services.grant_authorize_all_data(
        creator=creator, organizations=orgs, start_date=start, end_date=end, actor=creator.user, today=today
    )


def refused(code, field, fn, *args, **kwargs) -> GrantRuleError:
    with pytest.raises(GrantRuleError) as exc:
        fn(*args, **kwargs)
    assert exc.value.code == code and exc.value.field == field, exc.value.as_body()
    return exc.value


# --- GRANT-1 / GRANT-2 authorize ---------------------------------------------------------------


def test_grant_2_authorize_several_organizations_at_once(creator, shop, agency, shop_main):
    grants = authorize(creator, [agency, shop])
    assert {g.organization_id for g in grants} == {shop.pk, agency.pk}
    for g in grants:
        g.refresh_from_db()
        assert (g.scope, g.start_date, g.end_date, g.is_current) == (
            "all_data",
            TODAY,
            TODAY + days(30),
            True,
        )
        ev = g.events.get()
        assert (ev.operation, ev.actor, ev.new_start_date, ev.new_end_date) == (
            "authorize",
            creator.user,
            TODAY,
            TODAY + days(30),
        )
    # GRANT-9: the shop's notice goes to its main account only.
    assert Notification.objects.filter(user=shop_main.user, kind="grant.authorized").count() == 1
    assert not Notification.objects.filter(organization=shop).exists()


def test_grant_1_only_shops_and_agencies_can_be_authorized(creator):
    provider = OrganizationFactory(kind=Organization.Kind.SERVICE_PROVIDER)
    refused("GRANT-1", "organizations", authorize, creator, [provider])
    assert not Grant.objects.exists()


def test_grant_2_needs_an_organization(creator):
    refused("GRANT-2", "organizations", authorize, creator, [])


def test_grant_2_start_not_before_today(creator, shop):
    refused("GRANT-2", "start_date", authorize, creator, [shop], start=TODAY - days(1))


def test_grant_2_end_not_before_start(creator, shop):
    refused("GRANT-2", "end_date", authorize, creator, [shop], start=TODAY + days(2), end=TODAY + days(1))


def test_grant_2_one_day_grant_ending_today_is_allowed(creator, shop):
    (g,) = authorize(creator, [shop], start=TODAY, end=TODAY)
    assert state_of(g, TODAY) == GrantState.AUTHORIZED


def test_grant_2_already_authorized_pair_is_refused_whole(creator, shop, agency):
    authorize(creator, [shop])
    err = refused(
        "GRANT-2",
        "organizations",
        authorize,
        creator,
        [agency, shop],
        start=TODAY + days(40),
        end=TODAY + days(50),
    )
    assert err.status == 409
    assert Grant.objects.count() == 1  # nothing written for the agency either: one transaction


def test_grant_2_authorize_again_after_revoke_makes_a_new_current_row(creator, shop):
    (old,) = authorize(creator, [shop])
    services.grant_revoke(grant=old, actor=creator.user, today=TODAY)
    (new,) = authorize(creator, [shop], start=TODAY + days(1), end=TODAY + days(5))
    old.refresh_from_db()
    assert old.is_current is False and new.is_current is True and old.revoked_at is not None


# --- GRANT-4 revoke -----------------------------------------------------------------------------


def test_grant_4_revoke_records_who_and_when(
    creator, shop, webhook_calls, django_capture_on_commit_callbacks
):
    (g,) = authorize(creator, [shop])
    with django_capture_on_commit_callbacks(execute=True):
        services.grant_revoke(grant=g, actor=creator.user, reason="合作结束", today=TODAY + days(3))
    g.refresh_from_db()
    assert g.revoked_by == creator.user and g.revoke_reason == "合作结束"
    assert state_of(g, TODAY + days(3)) == GrantState.REVOKED
    ev = g.events.get(operation="revoke")
    assert (ev.old_end_date, ev.reason) == (TODAY + days(30), "合作结束")


def test_grant_4_revoke_twice_is_refused(creator, shop):
    (g,) = authorize(creator, [shop])
    services.grant_revoke(grant=g, actor=creator.user, today=TODAY)
    assert (
        refused("GRANT-4", "grant", services.grant_revoke, grant=g, actor=creator.user, today=TODAY).status
        == 409
    )


def test_grant_4_revoke_of_an_expired_grant_is_refused(creator, shop):
    (g,) = authorize(creator, [shop], end=TODAY + days(1))
    refused("GRANT-4", "grant", services.grant_revoke, grant=g, actor=creator.user, today=TODAY + days(2))


def test_grant_4_revoke_on_the_end_date_itself_is_allowed(creator, shop):
    (g,) = authorize(creator, [shop], end=TODAY + days(1))
    services.grant_revoke(grant=g, actor=creator.user, today=TODAY + days(1))
    assert GrantEvent.objects.filter(grant=g, operation="revoke").exists()


def test_grant_4_live_room_grants_have_no_renewals(creator, shop, shop_main):
    room = LiveRoomFactory(creator=creator)
    req = services.live_room_request_create(membership=shop_main, live_room=room, actor=shop_main.user)
    grant = services.live_room_request_authorize(request=req, actor=creator.user, today=TODAY)
    refused(
        "GRANT-5",
        "grant",
        services.grant_early_renew,
        grant=grant,
        end_date=TODAY + days(9),
        actor=creator.user,
        today=TODAY,
    )
    refused(
        "GRANT-6",
        "grant",
        services.grant_renew,
        grant=grant,
        start_date=TODAY,
        end_date=TODAY,
        actor=creator.user,
        today=TODAY,
    )


# --- GRANT-5 early renew ---------------------------------------------------------------------------


def test_grant_5_start_is_tomorrow_and_end_moves(creator, shop):
    (g,) = authorize(creator, [shop], start=TODAY, end=TODAY + days(10))
    op_day = TODAY + days(4)
    services.grant_early_renew(grant=g, end_date=TODAY + days(40), actor=creator.user, today=op_day)
    g.refresh_from_db()
    assert (g.start_date, g.end_date) == (TODAY, TODAY + days(40))
    ev = g.events.get(operation="early_renew")
    assert (ev.old_start_date, ev.old_end_date, ev.new_end_date) == (
        TODAY,
        TODAY + days(10),
        TODAY + days(40),
    )
    assert ev.reason == f"renewal from {(op_day + days(1)).isoformat()}"


def test_grant_5_end_must_be_strictly_later_than_current_end(creator, shop):
    (g,) = authorize(creator, [shop], end=TODAY + days(10))
    refused(
        "GRANT-5",
        "end_date",
        services.grant_early_renew,
        grant=g,
        end_date=TODAY + days(10),
        actor=creator.user,
        today=TODAY,
    )
    refused(
        "GRANT-5",
        "end_date",
        services.grant_early_renew,
        grant=g,
        end_date=TODAY + days(9),
        actor=creator.user,
        today=TODAY,
    )
    services.grant_early_renew(grant=g, end_date=TODAY + days(11), actor=creator.user, today=TODAY)


def test_grant_5_allowed_on_the_end_date_itself(creator, shop):
    (g,) = authorize(creator, [shop], end=TODAY + days(5))
    services.grant_early_renew(grant=g, end_date=TODAY + days(9), actor=creator.user, today=TODAY + days(5))
    g.refresh_from_db()
    assert g.end_date == TODAY + days(9)
    assert state_of(g, TODAY + days(6)) == GrantState.AUTHORIZED  # no gap on the day after


def test_grant_5_refused_once_expired(creator, shop):
    (g,) = authorize(creator, [shop], end=TODAY + days(5))
    err = refused(
        "GRANT-5",
        "grant",
        services.grant_early_renew,
        grant=g,
        end_date=TODAY + days(20),
        actor=creator.user,
        today=TODAY + days(6),
    )
    assert err.status == 409


def test_grant_5_refused_once_revoked(creator, shop):
    (g,) = authorize(creator, [shop])
    services.grant_revoke(grant=g, actor=creator.user, today=TODAY)
    refused(
        "GRANT-5",
        "grant",
        services.grant_early_renew,
        grant=g,
        end_date=TODAY + days(90),
        actor=creator.user,
        today=TODAY,
    )


def test_grant_5_on_a_scheduled_grant_starts_tomorrow(creator, shop):
    (g,) = authorize(creator, [shop], start=TODAY + days(10), end=TODAY + days(20))
    services.grant_early_renew(grant=g, end_date=TODAY + days(30), actor=creator.user, today=TODAY)
    g.refresh_from_db()
    assert (g.start_date, g.end_date) == (TODAY + days(1), TODAY + days(30))
    assert state_of(g, TODAY) == GrantState.SCHEDULED
    assert state_of(g, TODAY + days(1)) == GrantState.AUTHORIZED


def test_grant_5_early_renew_at_2359_shanghai_starts_the_next_shanghai_day(creator, shop):
    from zoneinfo import ZoneInfo

    from portal import clock

    at = dt.datetime(2026, 3, 10, 23, 59, tzinfo=ZoneInfo("Asia/Shanghai"))  # = 15:59 UTC, same day
    op_day = clock.today(at)
    assert op_day == dt.date(2026, 3, 10)
    (g,) = authorize(
        creator, [shop], start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 10), today=dt.date(2026, 3, 1)
    )
    services.grant_early_renew(grant=g, end_date=dt.date(2026, 4, 10), actor=creator.user, today=op_day)
    assert g.events.get(operation="early_renew").reason == "renewal from 2026-03-11"


# --- GRANT-6 renew ------------------------------------------------------------------------------


def test_grant_6_renew_an_expired_grant_starting_today(creator, shop):
    (g,) = authorize(creator, [shop], end=TODAY + days(3))
    later = TODAY + days(10)
    services.grant_renew(grant=g, start_date=later, end_date=later, actor=creator.user, today=later)
    g.refresh_from_db()
    assert (g.start_date, g.end_date) == (later, later)
    assert state_of(g, later) == GrantState.AUTHORIZED
    ev = g.events.get(operation="renew")
    assert (ev.old_start_date, ev.old_end_date, ev.new_start_date) == (TODAY, TODAY + days(3), later)


def test_grant_6_renewal_starting_later_is_scheduled(creator, shop):
    (g,) = authorize(creator, [shop], end=TODAY + days(3))
    later = TODAY + days(10)
    g = services.grant_renew(
        grant=g, start_date=later + days(5), end_date=later + days(9), actor=creator.user, today=later
    )
    assert state_of(g, later) == GrantState.SCHEDULED


def test_grant_6_only_expired_grants(creator, shop):
    (g,) = authorize(creator, [shop], end=TODAY + days(3))
    err = refused(
        "GRANT-6",
        "grant",
        services.grant_renew,
        grant=g,
        start_date=TODAY + days(3),
        end_date=TODAY + days(9),
        actor=creator.user,
        today=TODAY + days(3),
    )  # end date: not expired
    assert err.status == 409


def test_grant_6_start_today_or_later(creator, shop):
    (g,) = authorize(creator, [shop], end=TODAY + days(3))
    later = TODAY + days(10)
    refused(
        "GRANT-6",
        "start_date",
        services.grant_renew,
        grant=g,
        start_date=later - days(1),
        end_date=later + days(9),
        actor=creator.user,
        today=later,
    )


def test_grant_6_end_on_or_after_start(creator, shop):
    (g,) = authorize(creator, [shop], end=TODAY + days(3))
    later = TODAY + days(10)
    refused(
        "GRANT-6",
        "end_date",
        services.grant_renew,
        grant=g,
        start_date=later + days(2),
        end_date=later + days(1),
        actor=creator.user,
        today=later,
    )


def test_grant_6_revoked_grant_cannot_be_renewed(creator, shop):
    (g,) = authorize(creator, [shop])
    services.grant_revoke(grant=g, actor=creator.user, today=TODAY)
    refused(
        "GRANT-6",
        "grant",
        services.grant_renew,
        grant=g,
        start_date=TODAY + days(40),
        end_date=TODAY + days(50),
        actor=creator.user,
        today=TODAY + days(40),
    )


# --- GRANT-10 dates -------------------------------------------------------------------------------


def test_grant_10_valid_through_the_end_date_then_expired(creator, shop):
    g = GrantFactory(creator=creator, organization=shop, start_date=TODAY, end_date=TODAY + days(2))
    assert state_of(g, TODAY - days(1)) == GrantState.SCHEDULED
    assert state_of(g, TODAY + days(2)) == GrantState.AUTHORIZED
    assert state_of(g, TODAY + days(3)) == GrantState.EXPIRED


def test_grant_10_shanghai_day_turns_while_utc_is_still_the_day_before(creator, shop):
    from portal import clock

    g = GrantFactory(creator=creator, organization=shop, start_date=TODAY - days(5), end_date=TODAY)
    utc_evening = dt.datetime(
        TODAY.year, TODAY.month, TODAY.day, 16, 30, tzinfo=dt.UTC
    )  # 00:30 +08:00 next day
    assert utc_evening.date() == TODAY
    assert clock.today(utc_evening) == TODAY + days(1)
    assert state_of(g, clock.today(utc_evening)) == GrantState.EXPIRED
    assert state_of(g, clock.today(utc_evening - dt.timedelta(hours=1))) == GrantState.AUTHORIZED


# --- GRANT-3 live room requests ------------------------------------------------------------------


def test_grant_3_request_then_authorize(creator, shop, shop_sub):
    room = LiveRoomFactory(creator=creator)
    req = services.live_room_request_create(membership=shop_sub, live_room=room, actor=shop_sub.user)
    assert req.status == "pending" and req.creator == creator
    again = services.live_room_request_create(membership=shop_sub, live_room=room, actor=shop_sub.user)
    assert again.pk == req.pk  # asking twice does not duplicate
    assert Notification.objects.filter(user=creator.user, kind="grant.live_room_requested").count() == 1
    grant = services.live_room_request_authorize(request=req, actor=creator.user, today=TODAY)
    req.refresh_from_db()
    assert req.status == "authorized" and req.grant == grant
    assert (grant.scope, grant.live_room, grant.end_date) == (Scope.LIVE_ROOM, room, None)
    refused(
        "GRANT-3",
        "live_room",
        services.live_room_request_create,
        membership=shop_sub,
        live_room=room,
        actor=shop_sub.user,
    )
    refused("GRANT-3", "request", services.live_room_request_authorize, request=req, actor=creator.user)


def test_grant_3_reject(creator, shop, shop_main):
    room = LiveRoomFactory(creator=creator)
    req = services.live_room_request_create(membership=shop_main, live_room=room, actor=shop_main.user)
    services.live_room_request_reject(request=req, actor=creator.user)
    req.refresh_from_db()
    assert req.status == "rejected" and not Grant.objects.exists()


def test_grant_3_request_expires_after_7_days(creator, shop, shop_main):
    from portal import clock

    room = LiveRoomFactory(creator=creator)
    t0 = clock.now()
    req = services.live_room_request_create(
        membership=shop_main, live_room=room, actor=shop_main.user, now=t0
    )
    late = t0 + dt.timedelta(days=7, seconds=1)
    err = refused(
        "GRANT-3", "request", services.live_room_request_authorize, request=req, actor=creator.user, now=late
    )
    assert "7" in str(err.message)
    req.refresh_from_db()
    assert req.status == "expired"  # recorded even though the call was refused
    fresh = services.live_room_request_create(
        membership=shop_main, live_room=room, actor=shop_main.user, now=late
    )
    assert fresh.pk != req.pk and fresh.status == "pending"


def test_grant_3_live_room_revoke(creator, shop, shop_main):
    room = LiveRoomFactory(creator=creator)
    req = services.live_room_request_create(membership=shop_main, live_room=room, actor=shop_main.user)
    grant = services.live_room_request_authorize(request=req, actor=creator.user, today=TODAY)
    services.grant_revoke(grant=grant, actor=creator.user, today=TODAY + days(100))
    grant.refresh_from_db()
    assert state_of(grant, TODAY + days(100)) == GrantState.REVOKED


def test_grant_1_service_providers_cannot_request_live_rooms(creator):
    from portal.tests.factories import main_member

    m = main_member(kind=Organization.Kind.SERVICE_PROVIDER)
    refused(
        "GRANT-1",
        "organization",
        services.live_room_request_create,
        membership=m,
        live_room=LiveRoomFactory(creator=creator),
        actor=m.user,
    )


def test_staff_revoke_needs_a_reason_and_is_audited(creator, shop, django_user_model):
    from portal.models import AuditEntry

    staff = django_user_model.objects.create_user("ops", is_staff=True)
    (g,) = authorize(creator, [shop])
    refused("GRANT-4", "reason", services.grant_revoke_by_staff, grant=g, actor=staff, reason=" ")
    services.grant_revoke_by_staff(grant=g, actor=staff, reason="投诉核实", today=TODAY)
    entry = AuditEntry.objects.get(action="grant.revoke")
    assert entry.actor == staff and entry.details == {"reason": "投诉核实"} and entry.object_id == str(g.pk)


def test_every_operation_is_one_transaction(creator, shop, monkeypatch):
    """A failure after the row is written leaves nothing behind (no grant without its event)."""

    def boom(*a, **k):
        raise RuntimeError("notification down")

    monkeypatch.setattr(services, "_notify_org", boom)
    with pytest.raises(RuntimeError), transaction.atomic():
        authorize(creator, [shop])
    assert not Grant.objects.exists() and not GrantEvent.objects.exists()
