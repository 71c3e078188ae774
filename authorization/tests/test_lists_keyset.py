"""GRANT-7 / GRANT-8 lists page by keyset (seek), not OFFSET: walking the pages returns every
grant exactly once in list order (nearest end date first, live rooms last, id breaking ties),
filters survive paging, and a tampered cursor is a 400 naming the ``cursor`` parameter."""

import re

import pytest
from django.db import connection
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from authorization import selectors
from authorization.models import LIST_END_NONE, Grant
from authorization.tests.conftest import days
from authorization.tests.factories import GrantFactory, LiveRoomFactory
from authorization.views import PAGE_SIZE
from portal import clock
from portal.pagination import _RowCompare
from portal.tests.factories import CreatorFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/authorization"
NEXT = re.compile(r'rel="next" href="([^"]+)"')
PREV = re.compile(r'rel="prev" href="([^"]+)"')


@pytest.fixture
def today():
    return clock.today()


def _ids(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-grant="(\d+)"', body)]


def _walk_pages(client, url, params=None):
    """Follow the page's "next" links from the first page; returns each page's grant ids."""
    resp = client.get(url, params or {})
    pages = []
    while True:
        assert resp.status_code == 200, resp.status_code
        body = resp.content.decode()
        pages.append(_ids(body))
        link = NEXT.search(body)
        if not link:
            return pages, body
        resp = client.get(url + link.group(1).replace("&amp;", "&"))


def _expected(qs_filter) -> list[int]:
    rows = Grant.objects.filter(qs_filter, is_current=True).values_list("id", "end_date")
    return [i for i, _ in sorted(rows, key=lambda r: (r[1] or LIST_END_NONE, r[0]))]


def _creator_with_grants(today, n):
    """n grants on only a few end dates, so most of the order comes from the id tiebreaker."""
    creator = CreatorFactory()
    for i in range(n):
        GrantFactory(creator=creator, start_date=today - days(20), end_date=today + days(i % 3 - 1))
    return creator


def test_grant_7_creator_page_walks_every_grant_once_in_order(client, today):
    creator = _creator_with_grants(today, 2 * PAGE_SIZE + 7)
    client.force_login(creator.user)
    pages, _ = _walk_pages(client, reverse("authorization:creator-grants"))
    assert [len(p) for p in pages] == [PAGE_SIZE, PAGE_SIZE, 7]
    walked = [i for p in pages for i in p]
    assert walked == _expected(Q(creator=creator, scope="all_data"))
    assert len(set(walked)) == len(walked)


def test_grant_7_creator_page_previous_links_walk_back_to_the_same_pages(client, today):
    creator = _creator_with_grants(today, 2 * PAGE_SIZE + 7)
    client.force_login(creator.user)
    url = reverse("authorization:creator-grants")
    pages, last = _walk_pages(client, url)
    back = []
    body = last
    while link := PREV.search(body):
        body = client.get(url + link.group(1).replace("&amp;", "&")).content.decode()
        back.append(_ids(body))
    assert back == pages[:-1][::-1]


def test_grant_8_org_page_filter_survives_paging(client, shop, shop_main, today):
    for i in range(PAGE_SIZE + 5):  # expired, on two end dates
        GrantFactory(organization=shop, start_date=today - days(30), end_date=today - days(1 + i % 2))
    for _ in range(PAGE_SIZE):  # authorized: must never show up under state=expired
        GrantFactory(organization=shop, start_date=today - days(1), end_date=today + days(3))
    client.force_login(shop_main.user)
    first = client.get(reverse("authorization:org-grants"), {"state": "expired"}).content.decode()
    assert "state=expired&amp;cursor=" in NEXT.search(first).group(1)
    pages, _ = _walk_pages(client, reverse("authorization:org-grants"), {"state": "expired"})
    walked = [i for p in pages for i in p]
    assert len(pages) == 2
    assert walked == _expected(Q(organization=shop, end_date__lt=today))


def test_grant_8_api_walks_all_data_then_live_rooms_once_in_order(shop, shop_main, today):
    for i in range(9):
        GrantFactory(organization=shop, start_date=today - days(5), end_date=today + days(i % 2))
    for _ in range(4):  # no end date: after every all_data grant
        GrantFactory(organization=shop, scope="live_room", live_room=LiveRoomFactory(), end_date=None)
    GrantFactory(start_date=today, end_date=today)  # another organization's
    api = APIClient()
    api.force_login(shop_main.user)
    url, pages = f"{API}/org/grants?page_size=4", []
    while url:
        resp = api.get(url)
        assert resp.status_code == 200, resp.content
        pages.append([g["id"] for g in resp.json()["results"]])
        url = resp.json()["next"]
    walked = [i for p in pages for i in p]
    assert [len(p) for p in pages] == [4, 4, 4, 1]
    assert walked == _expected(Q(organization=shop))
    assert [g.scope for g in Grant.objects.filter(pk__in=pages[-1])] == ["live_room"]
    # ...and back again with the "previous" links.
    url, back = resp.json()["previous"], []
    while url:
        resp = api.get(url)
        back.append([g["id"] for g in resp.json()["results"]])
        url = resp.json()["previous"]
    assert back == pages[:-1][::-1]


def test_grant_8_api_filter_survives_paging(shop, shop_main, today):
    for i in range(5):
        GrantFactory(
            organization=shop, start_date=today - days(9), end_date=today + days(i), revoked_at=timezone.now()
        )
        GrantFactory(organization=shop, start_date=today - days(9), end_date=today + days(i))
    api = APIClient()
    api.force_login(shop_main.user)
    url, states = f"{API}/org/grants?state=revoked&page_size=2", []
    while url:
        assert "state=revoked" in url
        body = api.get(url).json()
        states += [g["state"] for g in body["results"]]
        url = body["next"]
    assert states == ["revoked"] * 5


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "W1siMjAyNi0wMS0wMSIsIjEiXSwibiJd", "W1siMjAyNi0wMS0wMSIsIjEiXSwibiJd:1abc:bad", "\x00"],
    ids=["garbage", "unsigned", "bad-signature", "nul"],
)
def test_grant_7_8_tampered_cursor_is_a_400_not_a_500(client, creator, shop_main, today, cursor):
    GrantFactory(creator=creator, start_date=today, end_date=today + days(3))
    api = APIClient()
    api.force_login(creator.user)
    resp = api.get(f"{API}/creator/grants", {"cursor": cursor})
    assert resp.status_code == 400
    assert resp.json()["field"] == "cursor" and "cursor" in resp.json()["message"]
    client.force_login(creator.user)
    page = client.get(reverse("authorization:creator-grants"), {"cursor": cursor})
    assert page.status_code == 400 and "cursor" in page.content.decode()
    client.force_login(shop_main.user)
    assert client.get(reverse("authorization:org-grants"), {"cursor": cursor}).status_code == 400


def test_grant_7_8_a_cursor_of_one_list_is_refused_by_the_other(shop, shop_main, today):
    creator = CreatorFactory()
    GrantFactory(creator=creator, organization=shop, start_date=today, end_date=today + days(3))
    for _ in range(2):
        GrantFactory(creator=creator, start_date=today, end_date=today + days(3))
    own = APIClient()
    own.force_login(creator.user)
    nxt = own.get(f"{API}/creator/grants?page_size=1").json()["next"]
    cursor = re.search(r"cursor=([^&]+)", nxt).group(1)
    org = APIClient()
    org.force_login(shop_main.user)
    assert org.get(f"{API}/org/grants?cursor={cursor}").status_code == 400


def test_grant_8_keyset_and_state_filter_use_the_list_index_without_sorting(shop_main, today):
    """The page query must be one range of authz_grant_org_keyset in index order: the sort key
    and the state filter are the index's own expression (no Sort node, no OFFSET)."""
    GrantFactory(organization=shop_main.organization, start_date=today - days(9), end_date=today - days(1))
    qs = selectors.grant_list_for_organization(membership=shop_main, state="expired", today=today)
    qs = qs.filter(_RowCompare(">", [F("list_end"), F("id")], [today, 0]))  # as a "next" page seeks
    sql, params = qs[:26].query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "authz_grant_org_keyset" in plan, plan
    assert "Sort" not in plan and "OFFSET" not in sql.upper(), plan
    index_cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "COALESCE" in index_cond and "ROW(" in index_cond, plan


def test_grant_9_sub_account_list_uses_the_live_room_index(shop_sub, today):
    GrantFactory(
        organization=shop_sub.organization, scope="live_room", live_room=LiveRoomFactory(), end_date=None
    )
    sql, params = selectors.grant_list_for_organization(membership=shop_sub)[:26].query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "authz_grant_org_rooms" in plan and "Sort" not in plan, plan
