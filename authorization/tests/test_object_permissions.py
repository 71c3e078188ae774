"""Object permissions of the authorization URLs that name a grant, request, creator or room:
another creator or organization gets 404 and no side effect; a sub-account never sees all_data
grants or data (GRANT-9). Cases already proven in test_pages/test_api (another creator's grant
actions, grant detail of another organization, the sub-account's list, sales API and export)
are not repeated here."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from authorization.models import Grant, LiveRoomRequest, Scope
from authorization.tests.conftest import days
from authorization.tests.factories import GrantFactory, LiveRoomFactory, LiveRoomRequestFactory
from portal import clock
from portal.tests.factories import CreatorFactory, OrganizationFactory, main_member, sub_member

pytestmark = pytest.mark.django_db
API = "/api/v1/authorization"


@pytest.fixture
def world():
    today = clock.today()
    creator = CreatorFactory()
    a = main_member(OrganizationFactory(kind="shop"))
    room = LiveRoomFactory(creator=creator)
    return {
        "today": today,
        "creator": creator,
        "other_creator": CreatorFactory(),
        "a": a,
        "sub": sub_member(a.organization),
        "b": main_member(OrganizationFactory(kind="shop")),
        "room": room,
        "all_data": GrantFactory(
            creator=creator, organization=a.organization, start_date=today, end_date=today + days(30)
        ),
        "room_grant": GrantFactory(
            creator=creator,
            organization=a.organization,
            scope=Scope.LIVE_ROOM,
            live_room=room,
            start_date=today,
            end_date=None,
        ),
        "request": LiveRoomRequestFactory(
            live_room=LiveRoomFactory(creator=creator), organization=a.organization, requested_by=a.user
        ),
    }


def session(user) -> APIClient:
    api = APIClient()
    api.force_login(user)
    return api


# --- creator side: another creator's live-room request ---------------------------------------------


@pytest.mark.parametrize("decision", ["request-authorize", "request-reject"])
def test_grant_3_another_creators_request_cannot_be_decided_on_the_page(client, world, decision):
    client.force_login(world["other_creator"].user)
    resp = client.post(reverse(f"authorization:{decision}", args=[world["request"].pk]))
    assert resp.status_code == 404
    assert LiveRoomRequest.objects.get(pk=world["request"].pk).status == LiveRoomRequest.Status.PENDING
    assert not Grant.objects.filter(live_room=world["request"].live_room).exists()


@pytest.mark.parametrize("decision", ["authorize", "reject"])
def test_grant_3_another_creators_request_cannot_be_decided_over_the_api(world, decision):
    api = session(world["other_creator"].user)
    resp = api.post(f"{API}/creator/live-room-requests/{world['request'].pk}/{decision}")
    assert resp.status_code == 404
    assert LiveRoomRequest.objects.get(pk=world["request"].pk).status == LiveRoomRequest.Status.PENDING
    assert not Grant.objects.filter(live_room=world["request"].live_room).exists()


def test_grant_7_creator_lists_show_only_the_own_grants_whatever_the_query(world):
    api = session(world["other_creator"].user)
    params = {"creator": world["creator"].pk, "organization": world["a"].organization_id}
    for path in ("creator/grants", "creator/live-room-grants", "creator/live-room-requests"):
        assert api.get(f"{API}/{path}", params).json()["results"] == [], path


# --- organization side: another organization's grants and data -------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        lambda w: reverse("authorization:grant-detail", args=[w["room_grant"].pk]),
        lambda w: reverse("authorization:creator-data-export", args=[w["creator"].pk]),
        lambda w: f"{API}/grants/{w['all_data'].pk}/events",
        lambda w: f"{API}/grants/{w['room_grant'].pk}/events",
        lambda w: f"{API}/org/creators/{w['creator'].pk}/sales",
    ],
)
def test_another_organization_gets_404_for_this_organizations_grants_and_data(world, url):
    assert session(world["b"].user).get(url(world)).status_code == 404


def test_grant_11_another_organization_sees_no_figures_on_the_data_pages(client, world):
    client.force_login(world["b"].user)
    data = client.get(reverse("authorization:creator-data", args=[world["creator"].pk]))
    room = client.get(reverse("authorization:live-room", args=[world["room"].pk]))
    assert data.status_code == room.status_code == 200
    assert data.context["decision"].allowed is False and "rows" not in data.context
    assert room.context["decision"].allowed is False and "rows" not in room.context


def test_grant_9_sub_account_gets_404_for_the_all_data_grants_page(client, world):
    client.force_login(world["sub"].user)
    assert client.get(reverse("authorization:grant-detail", args=[world["all_data"].pk])).status_code == 404
    assert client.get(reverse("authorization:grant-detail", args=[world["room_grant"].pk])).status_code == 200


def test_grant_9_sub_account_cannot_ask_for_all_data_by_scope(world):
    rows = session(world["sub"].user).get(f"{API}/org/grants", {"scope": "all_data"}).json()["results"]
    assert rows == []


@pytest.mark.parametrize("path", ["org/grants", "org/live-room-requests"])
def test_grant_8_org_lists_ignore_an_organization_query_parameter(world, path):
    api = session(world["b"].user)
    params = {"organization": world["a"].organization_id, "organization_id": world["a"].organization_id}
    assert api.get(f"{API}/{path}", params).json()["results"] == []


def test_grant_11_access_check_for_another_organization_is_404(world):
    """B's main account asks about A's grant by naming A: not its organization, 404 on both paths."""
    api = session(world["b"].user)
    query = {"organization": world["a"].organization_id, "creator": world["creator"].pk, "scope": "all_data"}
    assert api.get(f"{API}/access", query).status_code == 404
    # The DRF path too (a malformed room makes the fast path hand over).
    assert api.get(f"{API}/access", {**query, "room": "x"}).status_code in (400, 404)


def test_grant_9_sub_account_access_check_for_all_data_is_refused(world):
    api = session(world["sub"].user)
    body = api.get(f"{API}/access", {"creator": world["creator"].pk, "scope": "all_data"}).json()
    assert body["allowed"] is False and body["code"] == "GRANT-9"


def test_grant_3_a_room_request_names_the_callers_organization_only(world):
    """B asks for a room while naming A in the body: the request is B's, never A's."""
    api = session(world["b"].user)
    room = LiveRoomFactory(creator=world["creator"])
    resp = api.post(
        f"{API}/org/live-room-requests",
        {"live_room": room.pk, "organization": world["a"].organization_id},
        format="json",
    )
    assert resp.status_code == 201
    assert LiveRoomRequest.objects.get(pk=resp.json()["id"]).organization_id == world["b"].organization_id
