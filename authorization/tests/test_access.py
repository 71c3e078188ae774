"""GRANT-11 access check: decisions, cache and its invalidation, visibility (GRANT-9), and a
property test against a plain reference function of the operation history."""

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authorization import services
from authorization.errors import GrantRuleError
from authorization.models import GrantEvent
from authorization.selectors import access_check
from authorization.tests.conftest import days
from authorization.tests.factories import TODAY, GrantFactory, LiveRoomFactory
from portal.models import Organization
from portal.tests.factories import CreatorFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def check(org, creator, scope="all_data", today=TODAY, **kw):
    return access_check(organization_id=org.pk, creator_id=creator.pk, scope=scope, today=today, **kw)


def test_grant_11_authorized_answer(creator, shop):
    GrantFactory(creator=creator, organization=shop, start_date=TODAY, end_date=TODAY + days(5))
    d = check(shop, creator)
    assert d.as_dict() == {
        "allowed": True,
        "state": "authorized",
        "valid_until": "2026-03-15",
        "code": "GRANT-10",
    }


def test_grant_11_no_grant(creator, shop):
    assert check(shop, creator).as_dict() == {
        "allowed": False,
        "state": "none",
        "valid_until": None,
        "code": "GRANT-1",
    }


def test_grant_10_expiry_needs_no_invalidation(creator, shop, django_assert_num_queries):
    GrantFactory(creator=creator, organization=shop, start_date=TODAY, end_date=TODAY + days(5))
    assert check(shop, creator, today=TODAY + days(5)).allowed
    with django_assert_num_queries(0):  # cached windows; the date decision is made now
        d = check(shop, creator, today=TODAY + days(6))
    assert (d.allowed, d.state) == (False, "expired")
    assert check(shop, creator, today=TODAY - days(1)).state == "scheduled"


def test_grant_11_revocation_is_seen_on_the_next_call(creator, shop, django_capture_on_commit_callbacks):
    (g,) = services.grant_authorize_all_data(
        creator=creator,
        organizations=[shop],
        start_date=TODAY,
        end_date=TODAY + days(5),
        actor=creator.user,
        today=TODAY,
    )
    assert check(shop, creator).allowed  # now cached
    with django_capture_on_commit_callbacks(execute=True):
        services.grant_revoke(grant=g, actor=creator.user, today=TODAY)
    d = check(shop, creator)
    assert (d.allowed, d.state, d.code) == (False, "revoked", "GRANT-4")


def test_grant_11_every_change_invalidates(creator, shop, django_capture_on_commit_callbacks):
    (g,) = services.grant_authorize_all_data(
        creator=creator,
        organizations=[shop],
        start_date=TODAY,
        end_date=TODAY + days(5),
        actor=creator.user,
        today=TODAY,
    )
    assert not check(shop, creator, today=TODAY + days(6)).allowed
    with django_capture_on_commit_callbacks(execute=True):
        services.grant_early_renew(grant=g, end_date=TODAY + days(9), actor=creator.user, today=TODAY)
    assert check(shop, creator, today=TODAY + days(6)).valid_until == TODAY + days(9)


def test_grant_11_a_stale_reader_cannot_resurrect_old_windows(creator, shop):
    """A reader that loaded windows before a commit stored them under the old version."""
    from django.core.cache import cache

    from authorization.selectors import _pair_windows, _version_key, _windows_key, access_cache_invalidate

    g = GrantFactory(creator=creator, organization=shop)
    _pair_windows(shop.pk, creator.pk)
    old = cache.get(_windows_key(shop.pk, creator.pk))
    access_cache_invalidate(organization_id=shop.pk, creator_id=creator.pk)  # the revoking commit
    cache.set(_windows_key(shop.pk, creator.pk), old)  # the slow reader writes late
    g.revoked_at = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    g.save()
    assert cache.get(_version_key(shop.pk, creator.pk)) != old[0]
    assert check(shop, creator).state == "revoked"


def test_grant_9_sub_account_never_gets_all_data(creator, shop, shop_main, shop_sub):
    GrantFactory(creator=creator, organization=shop)
    assert check(shop, creator, membership=shop_main).allowed
    d = check(shop, creator, membership=shop_sub)
    assert (d.allowed, d.code) == (False, "GRANT-9")
    assert not check(shop, creator, user=shop_sub.user).allowed
    assert check(shop, creator, user=shop_main.user).allowed


def test_grant_9_live_room_grant_for_main_and_sub(creator, shop, shop_main, shop_sub):
    room = LiveRoomFactory(creator=creator)
    other_room = LiveRoomFactory(creator=creator)
    req = services.live_room_request_create(membership=shop_sub, live_room=room, actor=shop_sub.user)
    services.live_room_request_authorize(request=req, actor=creator.user, today=TODAY)
    for m in (shop_main, shop_sub):
        d = check(shop, creator, scope="live_room", live_room_id=room.pk, membership=m)
        assert (d.allowed, d.valid_until) == (True, None)
        assert not check(shop, creator, scope="live_room", live_room_id=other_room.pk, membership=m).allowed
    assert not check(shop, creator, membership=shop_sub).allowed  # the room grant is not all_data


def test_grant_11_all_data_covers_every_room_for_the_main_account(creator, shop, shop_main, shop_sub):
    room = LiveRoomFactory(creator=creator)
    GrantFactory(creator=creator, organization=shop)
    assert check(shop, creator, scope="live_room", live_room_id=room.pk, membership=shop_main).allowed
    d = check(shop, creator, scope="live_room", live_room_id=room.pk, membership=shop_sub)
    assert not d.allowed


def test_grant_11_room_of_another_creator_is_never_allowed(creator, shop):
    GrantFactory(creator=creator, organization=shop)
    stranger_room = LiveRoomFactory()
    assert not check(shop, creator, scope="live_room", live_room_id=stranger_room.pk).allowed
    assert not check(shop, creator, scope="live_room", live_room_id=None).allowed
    assert not check(shop, creator, scope="bogus").allowed


def test_grant_9_non_member_user_is_denied(creator, shop):
    from portal.tests.factories import UserFactory

    GrantFactory(creator=creator, organization=shop)
    assert not check(shop, creator, user=UserFactory()).allowed


# --- property test -------------------------------------------------------------------------------


def reference(history, day):
    """A plain model of the rules over the applied operations: (allowed, state)."""
    intervals, revoked, exists = [], False, False
    for op, t, a, b in history:
        if op == "authorize":
            intervals, revoked, exists = [(a, b)], False, True
        elif op == "revoke":
            revoked = True
        elif op == "early_renew":
            intervals.append((t + days(1), a))
        elif op == "renew":
            intervals.append((a, b))
    if not exists:
        return False, "none"
    if revoked:
        return False, "revoked"
    if any(s <= day <= e for s, e in intervals):
        return True, "authorized"
    if any(s > day for s, e in intervals):
        return False, "scheduled"
    return False, "expired"


def accepted(history, op, t, a, b):
    """What the rules accept, from the same history."""
    live = [h for h in history if h[0] == "authorize"]
    revoked = bool(live) and any(h[0] == "revoke" for h in history[history.index(live[-1]) :])
    has = bool(live) and not revoked
    end = None
    if has:  # only windows since the last authorize count
        since = history[history.index(live[-1]) :]
        end = max(
            [h[3] for h in since if h[0] in ("authorize", "renew")]
            + [h[2] for h in since if h[0] == "early_renew"]
        )
    if op == "authorize":
        return not has and a >= t and b >= a
    if op == "revoke":
        return has and end >= t
    if op == "early_renew":
        return has and end >= t and a > end
    return has and end < t and a >= t and b >= a  # renew


operation = st.tuples(
    st.sampled_from(["authorize", "revoke", "early_renew", "renew"]),
    st.integers(0, 6),  # days since the previous operation
    st.integers(-2, 12),  # a: start offset (end for early renew) from the operation day
    st.integers(-1, 12),  # b: length
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=8), check_after=st.integers(0, 15))
def test_grant_11_property_access_check_equals_reference(
    ops, check_after, django_capture_on_commit_callbacks
):
    with transaction.atomic():
        creator = CreatorFactory()
        shop = OrganizationFactory(kind=Organization.Kind.SHOP)
        history, t, grant = [], TODAY, None
        for op, gap, a_off, length in ops:
            t = t + days(gap)
            a, b = t + days(a_off), t + days(a_off + length)
            expect = accepted(history, op, t, a, b)
            try:
                with django_capture_on_commit_callbacks(execute=True):
                    if op == "authorize":
                        (grant,) = services.grant_authorize_all_data(
                            creator=creator,
                            organizations=[shop],
                            start_date=a,
                            end_date=b,
                            actor=creator.user,
                            today=t,
                        )
                    elif grant is None:
                        raise GrantRuleError("none", "no grant yet")
                    elif op == "revoke":
                        services.grant_revoke(grant=grant, actor=creator.user, today=t)
                    elif op == "early_renew":
                        services.grant_early_renew(grant=grant, end_date=a, actor=creator.user, today=t)
                    else:
                        services.grant_renew(
                            grant=grant, start_date=a, end_date=b, actor=creator.user, today=t
                        )
            except GrantRuleError:
                assert not expect, (op, t, a, b, history)
            else:
                assert expect, (op, t, a, b, history)
                history.append((op, t, a, b))
            d = check(shop, creator, today=t)  # through the cache, after every step
            assert (d.allowed, d.state) == reference(history, t)
        day = t + days(check_after)
        d = check(shop, creator, today=day)
        assert (d.allowed, d.state) == reference(history, day)
        ops_logged = list(
            GrantEvent.objects.filter(grant__creator=creator)
            .order_by("id")
            .values_list("operation", flat=True)
        )
        assert ops_logged == [h[0] for h in history]
        transaction.set_rollback(True)
