"""API under /api/v1/authorization/: each endpoint for the allowed party, the forbidden one and
another tenant (404); refusals carry the rule code and field; lists have constant query counts."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from authorization import services
from authorization.models import Grant, LiveRoomRequest
from authorization.tests.conftest import days
from authorization.tests.factories import GrantFactory, LiveRoomFactory
from portal import clock
from portal.models import Membership
from portal.services import api_key_create
from portal.tests.factories import CreatorFactory, MembershipFactory, OrganizationFactory, main_member

pytestmark = pytest.mark.django_db
API = "/api/v1/authorization"


@pytest.fixture
def today():
    return clock.today()


def as_user(user):
    api = APIClient()
    api.force_login(user)
    return api


def body_of(resp, status):
    assert resp.status_code == status, (resp.status_code, resp.content)
    return resp.json()


# --- creator endpoints ---------------------------------------------------------------------------


def test_grant_2_authorize_via_api_and_list(creator, shop, agency, today):
    api = as_user(creator.user)
    out = body_of(
        api.post(
            f"{API}/creator/grants",
            {"organizations": [shop.pk, agency.pk], "start_date": today, "end_date": today + days(9)},
            format="json",
        ),
        201,
    )
    assert {g["organization"] for g in out} == {shop.pk, agency.pk} and out[0]["state"] == "authorized"
    page = body_of(api.get(f"{API}/creator/grants"), 200)
    assert len(page["results"]) == 2 and page["next"] is None
    assert body_of(api.get(f"{API}/creator/grants", {"state": "expired"}), 200)["results"] == []
    assert body_of(api.get(f"{API}/creator/grants", {"state": "nope"}), 400)["field"] == "state"


def test_grant_2_refusals_carry_rule_and_field(creator, shop, today):
    api = as_user(creator.user)
    err = body_of(
        api.post(
            f"{API}/creator/grants",
            {"organizations": [shop.pk], "start_date": today - days(1), "end_date": today},
            format="json",
        ),
        400,
    )
    assert err == {"code": "GRANT-2", "message": "开始日期不能早于今天。", "field": "start_date"}
    err = body_of(
        api.post(
            f"{API}/creator/grants",
            {"organizations": [987654], "start_date": today, "end_date": today},
            format="json",
        ),
        400,
    )
    assert err["field"] == "organizations"
    err = body_of(
        api.post(
            f"{API}/creator/grants",
            {"organizations": [shop.pk], "start_date": "x", "end_date": today},
            format="json",
        ),
        400,
    )
    assert err["field"] == "start_date"


def test_non_creator_gets_404_on_creator_endpoints(shop_main):
    api = as_user(shop_main.user)
    assert api.get(f"{API}/creator/grants").status_code == 404
    assert api.get(f"{API}/creator/live-room-requests").status_code == 404
    assert api.get(f"{API}/creator/live-room-grants").status_code == 404


def test_anonymous_gets_401_or_403():
    assert APIClient().get(f"{API}/creator/grants").status_code in (401, 403)
    assert APIClient().get(f"{API}/access", {"creator": 1, "scope": "all_data"}).status_code in (401, 403)


def test_grant_5_6_4_actions_via_api(creator, shop, today):
    g = GrantFactory(creator=creator, organization=shop, start_date=today, end_date=today + days(5))
    api = as_user(creator.user)
    err = body_of(api.post(f"{API}/creator/grants/{g.pk}/early-renew", {"end_date": today + days(5)}), 400)
    assert (err["code"], err["field"]) == ("GRANT-5", "end_date")
    out = body_of(api.post(f"{API}/creator/grants/{g.pk}/early-renew", {"end_date": today + days(20)}), 200)
    assert out["end_date"] == (today + days(20)).isoformat()
    err = body_of(
        api.post(f"{API}/creator/grants/{g.pk}/renew", {"start_date": today, "end_date": today}), 409
    )
    assert (err["code"], err["field"]) == ("GRANT-6", "grant")
    out = body_of(api.post(f"{API}/creator/grants/{g.pk}/revoke", {"reason": "到期不续"}), 200)
    assert out["state"] == "revoked"
    events = body_of(api.get(f"{API}/grants/{g.pk}/events"), 200)["results"]
    assert [e["operation"] for e in events] == ["early_renew", "revoke"]


def test_creator_actions_on_another_creators_grant_are_404(creator, today):
    other = GrantFactory(start_date=today, end_date=today + days(5))
    api = as_user(creator.user)
    for path, data in [
        ("revoke", {}),
        ("early-renew", {"end_date": today + days(9)}),
        ("renew", {"start_date": today, "end_date": today}),
    ]:
        assert body_of(api.post(f"{API}/creator/grants/{other.pk}/{path}", data), 404)["code"] == "not_found"
    assert api.get(f"{API}/grants/{other.pk}/events").status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None


def test_grant_3_requests_via_api(creator, shop, shop_sub, today):
    room = LiveRoomFactory(creator=creator)
    org_api = as_user(shop_sub.user)
    req = body_of(org_api.post(f"{API}/org/live-room-requests", {"live_room": room.pk}), 201)
    assert req["status"] == "pending"
    assert body_of(org_api.get(f"{API}/org/live-room-requests"), 200)["count"] == 1
    assert org_api.post(f"{API}/org/live-room-requests", {"live_room": 999999}).status_code == 404
    api = as_user(creator.user)
    assert body_of(api.get(f"{API}/creator/live-room-requests"), 200)["count"] == 1
    out = body_of(api.post(f"{API}/creator/live-room-requests/{req['id']}/authorize"), 200)
    assert out["status"] == "authorized" and out["grant"]
    assert body_of(api.post(f"{API}/creator/live-room-requests/{req['id']}/reject"), 409)["code"] == "GRANT-3"
    stranger = as_user(CreatorFactory().user)
    assert stranger.post(f"{API}/creator/live-room-requests/{req['id']}/reject").status_code == 404
    # The creator lists the live-room grants in force and can revoke one from there.
    room_grants = body_of(api.get(f"{API}/creator/live-room-grants"), 200)
    assert [(g["id"], g["live_room"], g["state"]) for g in room_grants["results"]] == [
        (out["grant"], room.pk, "authorized")
    ]
    assert body_of(stranger.get(f"{API}/creator/live-room-grants"), 200)["count"] == 0
    body_of(api.post(f"{API}/creator/grants/{out['grant']}/revoke", {"reason": "合作结束"}), 200)
    assert body_of(api.get(f"{API}/creator/live-room-grants"), 200)["count"] == 0
    # GRANT-9: the sub-account sees the live_room grant and its history.
    grants = body_of(org_api.get(f"{API}/org/grants"), 200)["results"]
    assert [g["scope"] for g in grants] == ["live_room"]
    assert org_api.get(f"{API}/grants/{out['grant']}/events").status_code == 200


def test_grant_3_reject_via_api(creator, shop_main):
    req = services.live_room_request_create(
        membership=shop_main, live_room=LiveRoomFactory(creator=creator), actor=shop_main.user
    )
    out = body_of(as_user(creator.user).post(f"{API}/creator/live-room-requests/{req.pk}/reject"), 200)
    assert out["status"] == "rejected"


def test_creator_lists_have_constant_query_counts(creator, today, django_assert_max_num_queries):
    api = as_user(creator.user)
    for _ in range(2):
        GrantFactory(creator=creator, start_date=today, end_date=today + days(3))
    with django_assert_max_num_queries(8) as few:
        api.get(f"{API}/creator/grants")
    for _ in range(25):
        GrantFactory(creator=creator, start_date=today, end_date=today + days(3))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(api.get(f"{API}/creator/grants").json()["results"]) == 27
    room = LiveRoomFactory(creator=creator)
    m = main_member(OrganizationFactory())
    services.live_room_request_create(membership=m, live_room=room, actor=m.user)
    with django_assert_max_num_queries(8) as few:  # this list still counts its rows (page numbers)
        api.get(f"{API}/creator/live-room-requests")
    for _ in range(9):
        m = main_member(OrganizationFactory())
        services.live_room_request_create(membership=m, live_room=room, actor=m.user)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert api.get(f"{API}/creator/live-room-requests").json()["count"] == 10


# --- organization endpoints ----------------------------------------------------------------------


def test_grant_8_9_org_grants_main_sees_all_sub_sees_live_room(
    shop, shop_main, shop_sub, today, django_assert_max_num_queries
):
    GrantFactory(organization=shop, start_date=today, end_date=today + days(3))
    GrantFactory(organization=shop, start_date=today - days(9), end_date=today - days(2))
    GrantFactory(organization=shop, start_date=today, end_date=today + days(30), revoked_at=timezone.now())
    GrantFactory(organization=shop, scope="live_room", live_room=LiveRoomFactory(), end_date=None)
    GrantFactory(start_date=today, end_date=today + days(3))  # another organization's
    main = as_user(shop_main.user)
    with django_assert_max_num_queries(8):
        page = body_of(main.get(f"{API}/org/grants"), 200)
    assert len(page["results"]) == 4
    assert [g["state"] for g in page["results"]][:2] == ["expired", "authorized"]  # nearest end date first
    assert len(body_of(main.get(f"{API}/org/grants", {"state": "revoked"}), 200)["results"]) == 1
    assert len(body_of(main.get(f"{API}/org/grants", {"scope": "live_room"}), 200)["results"]) == 1
    sub = body_of(as_user(shop_sub.user).get(f"{API}/org/grants"), 200)
    assert len(sub["results"]) == 1 and sub["results"][0]["scope"] == "live_room"
    assert as_user(CreatorFactory().user).get(f"{API}/org/grants").status_code == 404


def test_grant_9_events_of_all_data_grant_hidden_from_sub_account(shop, shop_main, shop_sub, today):
    g = GrantFactory(organization=shop, start_date=today, end_date=today + days(3))
    assert as_user(shop_main.user).get(f"{API}/grants/{g.pk}/events").status_code == 200
    assert as_user(shop_sub.user).get(f"{API}/grants/{g.pk}/events").status_code == 404


def test_grant_9_sales_api_main_only_and_while_allowed(
    shop, shop_main, shop_sub, today, django_capture_on_commit_callbacks
):
    from authorization.models import CreatorDailySales

    creator = CreatorFactory()
    CreatorDailySales.objects.create(creator=creator, date=today, gmv_fen=100, orders=1, viewers=5)
    url = f"{API}/org/creators/{creator.pk}/sales"
    assert as_user(shop_main.user).get(url).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        (g,) = services.grant_authorize_all_data(
            creator=creator, organizations=[shop], start_date=today, end_date=today, actor=creator.user
        )
    assert body_of(as_user(shop_main.user).get(url), 200) == [
        {"date": today.isoformat(), "gmv_fen": 100, "orders": 1, "viewers": 5}
    ]
    assert as_user(shop_sub.user).get(url).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        services.grant_revoke(grant=g, actor=creator.user)
    assert as_user(shop_main.user).get(url).status_code == 404


# --- access check ---------------------------------------------------------------------------------


def test_grant_11_access_api_with_an_api_key(
    shop, shop_main, shop_sub, today, django_capture_on_commit_callbacks
):
    creator = CreatorFactory()
    with django_capture_on_commit_callbacks(execute=True):
        (g,) = services.grant_authorize_all_data(
            creator=creator,
            organizations=[shop],
            start_date=today,
            end_date=today + days(2),
            actor=creator.user,
        )
    _, raw = api_key_create(membership=shop_main, name="svc", actor=shop_main.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    params = {"organization": shop.pk, "creator": creator.pk, "scope": "all_data"}
    assert body_of(api.get(f"{API}/access", params), 200) == {
        "allowed": True,
        "state": "authorized",
        "valid_until": (today + days(2)).isoformat(),
        "code": "GRANT-10",
    }
    with django_capture_on_commit_callbacks(execute=True):
        services.grant_revoke(grant=g, actor=creator.user)
    assert body_of(api.get(f"{API}/access", params), 200)["state"] == "revoked"  # the very next call
    # GRANT-9 for the sub-account; another organization's id is 404; bad input is 400.
    sub = body_of(as_user(shop_sub.user).get(f"{API}/access", params), 200)
    assert (sub["allowed"], sub["code"]) == (False, "GRANT-9")
    assert api.get(f"{API}/access", {**params, "organization": OrganizationFactory().pk}).status_code == 404
    assert body_of(api.get(f"{API}/access", {**params, "scope": "everything"}), 400)["field"] == "scope"
    assert body_of(api.get(f"{API}/access", {"scope": "all_data"}), 400)["field"] == "creator"


def test_grant_11_a_key_answers_for_its_own_organization_only_even_when_its_owner_belongs_to_another(
    shop, shop_main, today, django_capture_on_commit_callbacks
):
    other = OrganizationFactory()
    MembershipFactory(user=shop_main.user, organization=other, role=Membership.Role.MAIN)
    creator = CreatorFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.grant_authorize_all_data(
            creator=creator,
            organizations=[other],
            start_date=today,
            end_date=today + days(5),
            actor=creator.user,
        )
    _, raw = api_key_create(membership=shop_main, name="svc", actor=shop_main.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    params = {"organization": other.pk, "creator": creator.pk, "scope": "all_data"}
    assert api.get(f"{API}/access", params).status_code == 404
    # The owner signed in to the browser may ask for the other organization they belong to.
    assert body_of(as_user(shop_main.user).get(f"{API}/access", params), 200)["allowed"] is True


def test_grant_11_access_api_live_room(shop, shop_sub, today):
    creator = CreatorFactory()
    room = LiveRoomFactory(creator=creator)
    GrantFactory(creator=creator, organization=shop, scope="live_room", live_room=room, end_date=None)
    api = as_user(shop_sub.user)
    out = body_of(
        api.get(f"{API}/access", {"creator": creator.pk, "scope": "live_room", "room": room.pk}), 200
    )
    assert out == {"allowed": True, "state": "authorized", "valid_until": None, "code": "GRANT-10"}
    out = body_of(api.get(f"{API}/access", {"creator": creator.pk, "scope": "live_room"}), 200)
    assert out["allowed"] is False


def test_grant_11_access_api_is_cheap_when_cached(shop, shop_main, today, django_assert_max_num_queries):
    creator = CreatorFactory()
    GrantFactory(creator=creator, organization=shop, start_date=today, end_date=today)
    api = as_user(shop_main.user)
    params = {"creator": creator.pk, "scope": "all_data"}
    api.get(f"{API}/access", params)
    with django_assert_max_num_queries(3) as queries:  # session, user, membership: windows are cached
        assert api.get(f"{API}/access", params).json()["allowed"] is True
    assert not any("authorization_grant" in q["sql"] for q in queries.captured_queries)
    assert Grant.objects.count() == 1 and not LiveRoomRequest.objects.exists()
