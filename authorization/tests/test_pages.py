"""Pages: creator's list (GRANT-7), organization's list (GRANT-8), visibility (GRANT-9), data
pages behind the access check (GRANT-11), other parties' ids answer 404."""

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from authorization import services
from authorization.models import CreatorDailySales, Grant, LiveRoomRequest, LiveRoomSales
from authorization.tests.conftest import days
from authorization.tests.factories import GrantFactory, LiveRoomFactory, LiveRoomRequestFactory
from portal import clock
from portal.models import Organization
from portal.tests.factories import CreatorFactory, OrganizationFactory, main_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def today():
    return clock.today()


def login(client, user):
    client.force_login(user)
    return client


def html(resp):
    assert resp.status_code == 200, resp.status_code
    return resp.content.decode()


# --- creator pages -------------------------------------------------------------------------------


def test_grant_7_the_creator_reaches_every_pending_request_and_room_grant_by_pages(client, creator, today):
    for _ in range(30):
        LiveRoomRequestFactory(live_room=LiveRoomFactory(creator=creator))
        GrantFactory(
            creator=creator, scope="live_room", live_room=LiveRoomFactory(creator=creator), end_date=None
        )
    url = reverse("authorization:creator-grants")
    login(client, creator.user)
    seen_requests, seen_rooms = set(), set()
    for page in (1, 2):
        body = html(client.get(url, {"requests_page": page, "rooms_page": page}))
        seen_requests |= set(re.findall(r'data-request="(\d+)"', body))
        seen_rooms |= set(re.findall(r'data-room-grant="(\d+)"', body))
    assert len(seen_requests) == len(seen_rooms) == 30
    first = html(client.get(url))
    assert "requests_page=2#requests" in first and "rooms_page=2#room-grants" in first


def test_grant_7_creator_list_nearest_end_first_with_actions(client, creator, today):
    orgs = [OrganizationFactory(name=f"店{i}") for i in range(3)]
    GrantFactory(creator=creator, organization=orgs[0], start_date=today, end_date=today + days(30))
    GrantFactory(creator=creator, organization=orgs[1], start_date=today, end_date=today + days(3))
    GrantFactory(creator=creator, organization=orgs[2], start_date=today - days(9), end_date=today - days(1))
    body = html(login(client, creator.user).get(reverse("authorization:creator-grants")))
    assert body.index("店2") < body.index("店1") < body.index("店0")
    assert (
        body.count("提前续约</button>") == 2 and body.count("续约</button>") == 3
    )  # renew only when expired


def test_grant_7_creator_list_query_count_is_constant(client, creator, today, django_assert_max_num_queries):
    login(client, creator.user)
    room = LiveRoomFactory(creator=creator)
    for _ in range(3):
        GrantFactory(creator=creator, start_date=today, end_date=today + days(5))
        main = main_member(OrganizationFactory())
        services.live_room_request_create(membership=main, live_room=room, actor=main.user)
    with django_assert_max_num_queries(16) as few:
        client.get(reverse("authorization:creator-grants"))
    for _ in range(30):
        GrantFactory(creator=creator, start_date=today, end_date=today + days(5))
        main = main_member(OrganizationFactory())
        services.live_room_request_create(membership=main, live_room=room, actor=main.user)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("authorization:creator-grants"))


def test_grant_2_authorize_from_the_page(client, creator, today):
    shop, agency = OrganizationFactory(name="好物店"), OrganizationFactory(name="星光机构", kind="agency")
    login(client, creator.user)
    assert "好物店" in html(client.get(reverse("authorization:org-search"), {"q": "好物"}))
    resp = client.post(
        reverse("authorization:creator-grants"),
        {"organizations": [shop.pk, agency.pk], "start_date": today, "end_date": today + days(10)},
    )
    assert resp.status_code == 302
    assert Grant.objects.filter(creator=creator).count() == 2
    again = html(
        client.post(
            reverse("authorization:creator-grants"),
            {"organizations": [shop.pk], "start_date": today, "end_date": today + days(10)},
        )
    )
    assert "GRANT-2" in again
    bad = html(
        client.post(
            reverse("authorization:creator-grants"),
            {"organizations": [OrganizationFactory().pk], "start_date": today - days(1), "end_date": today},
        )
    )
    assert "GRANT-2" in bad and "开始日期不能早于今天" in bad


def test_grant_2_a_refused_authorize_and_a_new_search_keep_the_ticked_organizations(client, creator, today):
    # Given a creator who ticked a shop and an agency
    shop, agency = OrganizationFactory(name="好物店"), OrganizationFactory(name="星光机构", kind="agency")
    provider = OrganizationFactory(name="好物服务商", kind="service_provider")
    login(client, creator.user)
    ticked = [str(shop.pk), str(agency.pk)]

    def checked(page):
        return sorted(int(v) for v in re.findall(r'value="(\d+)" checked', page))

    # When the authorize is refused (end before start), the page keeps both ticked
    refused = html(
        client.post(
            reverse("authorization:creator-grants"),
            {"organizations": ticked, "start_date": today, "end_date": today - days(1)},
        )
    )
    assert "GRANT-2" in refused and checked(refused) == sorted([shop.pk, agency.pk])
    # And a new search lists the ticked ones, still ticked, beside its own matches; a service
    # provider (never grantable) or a malformed id is not carried along
    found = html(
        client.get(
            reverse("authorization:org-search"),
            {"q": "好物", "organizations": [str(agency.pk), str(provider.pk), "x", "9" * 30]},
        )
    )
    assert checked(found) == [agency.pk]
    assert f'value="{shop.pk}">' in found and f'value="{provider.pk}"' not in found
    assert not Grant.objects.exists()


class _Forms(HTMLParser):
    """A page's forms as a browser without JavaScript sees them: method, action and controls."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.forms, self._form = [], None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {**a, "controls": []}
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "button", "select", "textarea"):
            self._form["controls"].append({"tag": tag, **a})

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def _submit(client, url, page, *, holding, button_class=None, fill=None, tick=()):
    """Submit, as a browser without JavaScript does, the form of ``page`` holding the control named
    ``holding``: with its first submit button (what Enter in one of its fields does) or the one of
    ``button_class``; ``fill`` types into fields, ``tick`` checks boxes by value. The browser
    refuses to send a form whose required field is empty unless the button says formnovalidate."""
    form = next(f for f in _Forms(page).forms if any(c.get("name") == holding for c in f["controls"]))
    buttons = [
        c
        for c in form["controls"]
        if (c["tag"] == "button" and c.get("type", "submit") == "submit")
        or (c["tag"] == "input" and c.get("type") == "submit")
    ]
    button = (
        next(b for b in buttons if button_class in (b.get("class") or "").split())
        if button_class
        else buttons[0]
    )
    data = {}
    for c in form["controls"]:
        name, kind = c.get("name"), c.get("type", "text")
        if not name or c["tag"] == "button" or kind in ("submit", "button"):
            continue
        if kind in ("checkbox", "radio"):
            if "checked" in c or c.get("value") in tick:
                data.setdefault(name, []).append(c.get("value", "on"))
            continue
        value = (fill or {}).get(name, c.get("value", ""))
        if "required" in c and not value and "formnovalidate" not in button and "novalidate" not in form:
            raise AssertionError(f"the browser refuses to submit: {name} is required")
        data.setdefault(name, []).append(value)
    if button.get("name"):
        data[button["name"]] = [button.get("value", "")]
    action = button.get("formaction") or form.get("action") or url.split("?")[0]
    if (button.get("formmethod") or form.get("method") or "get").lower() == "post":
        return action, client.post(action, data)
    return action, client.get(action, data)


def test_grant_2_without_javascript_a_search_keeps_the_ticked_organizations_and_authorize_grants_all(
    client, creator, today
):
    # Given a creator on the authorize page in a browser without JavaScript
    shop, agency = OrganizationFactory(name="好物店"), OrganizationFactory(name="星光机构", kind="agency")
    login(client, creator.user)
    url = reverse("authorization:creator-grants")
    page = html(client.get(url))
    # who searches for a shop by name (Enter in the search box) and ticks it
    url, resp = _submit(client, url, page, holding="q", fill={"q": "好物"})
    page = html(resp)
    assert f'value="{shop.pk}"' in page
    # When they search for an agency
    url, resp = _submit(client, url, page, holding="q", fill={"q": "星光"}, tick=[str(shop.pk)])
    page = html(resp)
    # Then the shop is still ticked beside the agency found, and nothing is authorized yet
    assert f'value="{shop.pk}" checked' in page and f'value="{agency.pk}">' in page
    assert not Grant.objects.exists()
    # When they tick the agency too, pick an end date and authorize
    end = today + days(30)
    url, resp = _submit(
        client,
        url,
        page,
        holding="organizations",
        button_class="primary",
        fill={"end_date": end.isoformat()},
        tick=[str(agency.pk)],
    )
    # Then both are granted (GRANT-2: several organizations at once)
    assert resp.status_code == 302
    granted = Grant.objects.filter(creator=creator, start_date=today, end_date=end)
    assert sorted(granted.values_list("organization_id", flat=True)) == sorted([shop.pk, agency.pk])


def test_grant_5_early_renew_in_place_with_htmx(client, creator, today):
    g = GrantFactory(creator=creator, start_date=today, end_date=today + days(5))
    login(client, creator.user)
    url = reverse("authorization:grant-early-renew", args=[g.pk])
    row = html(client.post(url, {"end_date": today + days(5)}, HTTP_HX_REQUEST="true"))
    assert row.startswith(f'<tr id="grant-{g.pk}"') and "GRANT-5" in row
    row = html(client.post(url, {"end_date": today + days(20)}, HTTP_HX_REQUEST="true"))
    assert "GRANT-5" not in row and (today + days(20)).isoformat() in row
    assert client.post(url, {"end_date": "not-a-date"}, HTTP_HX_REQUEST="true").status_code == 200


@pytest.mark.parametrize(
    ("action", "data", "label"),
    [
        ("grant-early-renew", {"end_date": "not-a-date"}, "新截止日期"),
        ("grant-renew", {"start_date": "", "end_date": ""}, "开始日期"),
    ],
)
def test_a_grant_actions_unreadable_date_is_named_by_its_label_not_its_field_code(
    client, creator, today, action, data, label
):
    # Given a live grant (early renew) and an expired one (renew)
    grant = GrantFactory(
        creator=creator,
        start_date=today - days(9),
        end_date=today + days(5) if action == "grant-early-renew" else today - days(1),
    )
    login(client, creator.user)
    # When the creator sends the action with a date left empty or mistyped
    row = html(client.post(reverse(f"authorization:{action}", args=[grant.pk]), data, HTTP_HX_REQUEST="true"))
    # Then the row names the field as the page labels it, not by the form's field name
    error = re.search(r'<p class="error" role="alert">([^<]*)</p>', row).group(1)
    assert error.startswith(f"{label}：") and "_date" not in error  # noqa: RUF001


def test_grant_6_a_refused_renewal_keeps_the_dates_the_creator_entered(client, creator, today):
    # Given an expired grant and a live one
    expired = GrantFactory(creator=creator, start_date=today - days(9), end_date=today - days(1))
    live = GrantFactory(creator=creator, start_date=today, end_date=today + days(9))
    login(client, creator.user)
    # When the creator renews with an end before the start (GRANT-6)
    start, end = today + days(10), today + days(3)
    row = html(
        client.post(
            reverse("authorization:grant-renew", args=[expired.pk]),
            {"start_date": start, "end_date": end},
            HTTP_HX_REQUEST="true",
        )
    )
    # Then the row names the rule and the form still holds both dates to correct
    assert "GRANT-6" in row
    assert f'name="start_date" min="{today.isoformat()}" value="{start.isoformat()}"' in row
    assert f'value="{end.isoformat()}" required' in row
    # and an early renewal to the current end date (GRANT-5) keeps that date too
    row = html(
        client.post(
            reverse("authorization:grant-early-renew", args=[live.pk]),
            {"end_date": live.end_date},
            HTTP_HX_REQUEST="true",
        )
    )
    assert "GRANT-5" in row and f'value="{live.end_date.isoformat()}"' in row
    # while a successful renewal shows an empty form again
    row = html(
        client.post(
            reverse("authorization:grant-early-renew", args=[live.pk]),
            {"end_date": today + days(30)},
            HTTP_HX_REQUEST="true",
        )
    )
    assert 'name="end_date" required aria-label="新截止日期" value=""' in row


def test_grant_6_renew_and_grant_4_revoke_from_the_page(client, creator, today):
    expired = GrantFactory(creator=creator, start_date=today - days(9), end_date=today - days(1))
    live = GrantFactory(creator=creator, start_date=today, end_date=today + days(9))
    login(client, creator.user)
    resp = client.post(
        reverse("authorization:grant-renew", args=[expired.pk]),
        {"start_date": today, "end_date": today + days(3)},
    )
    assert resp.status_code == 302
    expired.refresh_from_db()
    assert expired.end_date == today + days(3)
    client.post(reverse("authorization:grant-revoke", args=[live.pk]), {"reason": ""})
    live.refresh_from_db()
    assert live.revoked_at is not None


def test_creator_actions_on_another_creators_grant_are_404(client, creator, today):
    other = GrantFactory(start_date=today, end_date=today + days(9))
    login(client, creator.user)
    for name, data in [
        ("grant-revoke", {}),
        ("grant-early-renew", {"end_date": today + days(20)}),
        ("grant-renew", {"start_date": today, "end_date": today}),
        ("room-grant-revoke", {}),
    ]:
        assert client.post(reverse(f"authorization:{name}", args=[other.pk]), data).status_code == 404
    assert client.get(reverse("authorization:grant-detail", args=[other.pk])).status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None and other.end_date == today + days(9)


def test_non_creator_has_no_creator_pages(client, shop_main):
    login(client, shop_main.user)
    assert client.get(reverse("authorization:creator-grants")).status_code == 404
    assert client.get(reverse("authorization:org-grants")).status_code == 200


def test_anonymous_is_sent_to_login(client):
    resp = client.get(reverse("authorization:creator-grants"))
    assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]


def test_grant_3_creator_authorizes_and_rejects_requests(client, creator, shop_main):
    r1, r2 = LiveRoomFactory(creator=creator), LiveRoomFactory(creator=creator)
    q1 = services.live_room_request_create(membership=shop_main, live_room=r1, actor=shop_main.user)
    q2 = services.live_room_request_create(membership=shop_main, live_room=r2, actor=shop_main.user)
    login(client, creator.user)
    body = html(client.get(reverse("authorization:creator-grants")))
    assert r1.title in body and r2.title in body
    client.post(reverse("authorization:request-authorize", args=[q1.pk]))
    client.post(reverse("authorization:request-reject", args=[q2.pk]))
    q1.refresh_from_db(), q2.refresh_from_db()
    assert (q1.status, q2.status) == ("authorized", "rejected")
    # A decided request cannot be decided again: the rule is shown, not a 500.
    resp = client.post(reverse("authorization:request-authorize", args=[q2.pk]))
    assert resp.status_code == 409 and "GRANT-3" in resp.content.decode()
    other = services.live_room_request_create(
        membership=shop_main, live_room=LiveRoomFactory(), actor=shop_main.user
    )
    assert client.post(reverse("authorization:request-authorize", args=[other.pk])).status_code == 404


# --- organization pages --------------------------------------------------------------------------


def _org_setup(shop, today):
    c1, c2 = CreatorFactory(nickname="全部数据达人"), CreatorFactory(nickname="直播间达人")
    all_data = GrantFactory(creator=c1, organization=shop, start_date=today, end_date=today + days(5))
    room = LiveRoomFactory(creator=c2, title="春季上新专场")
    room_grant = GrantFactory(
        creator=c2, organization=shop, scope="live_room", live_room=room, start_date=today, end_date=None
    )
    return all_data, room_grant


def test_grant_8_organization_list_with_state_filter(client, shop, shop_main, today):
    _org_setup(shop, today)
    GrantFactory(
        organization=shop,
        creator=CreatorFactory(nickname="过期达人"),
        start_date=today - days(9),
        end_date=today - days(2),
    )
    GrantFactory(organization=shop, creator=CreatorFactory(nickname="解除达人"), revoked_at=timezone.now())
    login(client, shop_main.user)
    body = html(client.get(reverse("authorization:org-grants")))
    assert body.index("过期达人") < body.index("全部数据达人") < body.index("直播间达人")
    for state, name in [("expired", "过期达人"), ("revoked", "解除达人"), ("authorized", "全部数据达人")]:
        page = html(client.get(reverse("authorization:org-grants"), {"state": state}))
        assert name in page
        assert page.count('data-grant="') == (2 if state == "authorized" else 1)
    assert html(client.get(reverse("authorization:org-grants"), {"state": "bogus"}))


def test_a_grant_with_no_events_says_so_in_its_log(client, shop, shop_main, today):
    # Given a grant with no recorded operations yet
    grant = GrantFactory(organization=shop, start_date=today, end_date=today + days(5))
    login(client, shop_main.user)
    # When the shop opens it, then the empty log says so instead of showing a bare heading row
    body = html(client.get(reverse("authorization:grant-detail", args=[grant.pk])))
    assert "暂无记录" in body[body.index('id="events"') :]


def test_grant_9_sub_account_list_shows_live_room_grants_only(client, shop, shop_sub, today):
    all_data, room_grant = _org_setup(shop, today)
    login(client, shop_sub.user)
    body = html(client.get(reverse("authorization:org-grants")))
    assert "直播间达人" in body and "全部数据达人" not in body
    assert client.get(reverse("authorization:grant-detail", args=[all_data.pk])).status_code == 404
    assert client.get(reverse("authorization:grant-detail", args=[room_grant.pk])).status_code == 200


def test_grant_8_organization_list_query_count_is_constant(
    client, shop, shop_main, today, django_assert_max_num_queries
):
    login(client, shop_main.user)
    for _ in range(3):
        GrantFactory(organization=shop, start_date=today, end_date=today + days(5))
    with django_assert_max_num_queries(14) as few:
        client.get(reverse("authorization:org-grants"))
    for _ in range(30):
        GrantFactory(organization=shop, start_date=today, end_date=today + days(5))
        GrantFactory(organization=shop, scope="live_room", live_room=LiveRoomFactory(), end_date=None)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("authorization:org-grants"))


def test_grant_detail_of_another_organization_is_404(client, shop_main, today):
    foreign = GrantFactory(start_date=today, end_date=today + days(5))
    login(client, shop_main.user)
    assert client.get(reverse("authorization:grant-detail", args=[foreign.pk])).status_code == 404
    assert client.get(reverse("authorization:grant-detail", args=[999999])).status_code == 404


def test_grant_detail_shows_the_history_to_both_parties(client, creator, shop, shop_main, today):
    (g,) = services.grant_authorize_all_data(
        creator=creator, organizations=[shop], start_date=today, end_date=today + days(5), actor=creator.user
    )
    services.grant_early_renew(grant=g, end_date=today + days(9), actor=creator.user)
    for user in (creator.user, shop_main.user):
        client.force_login(user)
        body = html(client.get(reverse("authorization:grant-detail", args=[g.pk])))
        assert 'data-event="authorize"' in body and 'data-event="early_renew"' in body


def _sales(creator, room, today):
    for i in range(5):
        CreatorDailySales.objects.create(
            creator=creator, date=today - days(i), gmv_fen=12345 * (i + 1), orders=i, viewers=100 * i
        )
    for h in range(3):
        LiveRoomSales.objects.create(
            live_room=room,
            hour_at=timezone.now() - dt.timedelta(hours=h),
            gmv_fen=500 * (h + 1),
            orders=h,
            viewers=10,
        )


def test_creator_data_counts_orders_and_viewers_with_thousands_separators(client, shop, shop_main, today):
    # Given a day of 12,345 orders watched by 2,541,786 people, visible to the shop (GRANT-11)
    creator = CreatorFactory()
    CreatorDailySales.objects.create(
        creator=creator, date=today, gmv_fen=1_000_000, orders=12_345, viewers=2_541_786
    )
    services.grant_authorize_all_data(
        creator=creator, organizations=[shop], start_date=today, end_date=today + days(5), actor=creator.user
    )
    login(client, shop_main.user)
    # When the shop's main account opens the creator's data
    body = html(client.get(reverse("authorization:creator-data", args=[creator.pk])))
    # Then the totals and the day's row group the digits like the money beside them
    assert "订单数 12,345 · 观看人数 2,541,786" in body
    assert '<td class="num">12,345</td><td class="num">2,541,786</td>' in body


def test_the_creator_sales_chart_starts_at_zero_and_reads_in_yuan(client, shop, shop_main, today):
    # Given a shop with access to a creator's sales
    creator = CreatorFactory()
    room = LiveRoomFactory(creator=creator)
    _sales(creator, room, today)
    services.grant_authorize_all_data(
        creator=creator, organizations=[shop], start_date=today, end_date=today + days(5), actor=creator.user
    )
    login(client, shop_main.user)
    # When the shop opens the creator's data
    resp = client.get(reverse("authorization:creator-data", args=[creator.pk]))
    # Then the chart's y axis starts at zero (not near the smallest day, which made small
    # swings look steep), and the page's script is told the axis is money
    assert resp.context["chart"]["options"]["scales"]["y"]["beginAtZero"] is True
    assert 'data-chart="gmv-chart" data-money-axis="y"' in html(resp)


def test_grant_11_creator_data_page_only_while_access_allows(
    client, shop, shop_main, shop_sub, today, django_capture_on_commit_callbacks
):
    creator = CreatorFactory()
    room = LiveRoomFactory(creator=creator)
    _sales(creator, room, today)
    url = reverse("authorization:creator-data", args=[creator.pk])
    login(client, shop_main.user)
    assert 'id="sales-data"' not in html(client.get(url))
    with django_capture_on_commit_callbacks(execute=True):
        (g,) = services.grant_authorize_all_data(
            creator=creator,
            organizations=[shop],
            start_date=today,
            end_date=today + days(5),
            actor=creator.user,
        )
    body = html(client.get(url))
    assert 'id="sales-data"' in body and 'data-chart="gmv-chart"' in body and "¥123.45" in body
    assert "chart.umd.min.js" in body
    csv_resp = client.get(reverse("authorization:creator-data-export", args=[creator.pk]))
    assert csv_resp.status_code == 200 and csv_resp.content.decode().startswith("date,gmv_fen")
    # GRANT-9: the sub-account sees no data, no export.
    client.force_login(shop_sub.user)
    assert 'id="sales-data"' not in html(client.get(url))
    assert client.get(reverse("authorization:creator-data-export", args=[creator.pk])).status_code == 404
    # Revocation hides the data on the next request.
    client.force_login(shop_main.user)
    with django_capture_on_commit_callbacks(execute=True):
        services.grant_revoke(grant=g, actor=creator.user)
    assert 'id="sales-data"' not in html(client.get(url))
    assert client.get(reverse("authorization:creator-data-export", args=[creator.pk])).status_code == 404
    assert client.get(reverse("authorization:creator-data", args=[999999])).status_code == 404


def test_grant_3_live_room_page_unlock_request_then_data(
    client, shop, shop_sub, today, django_capture_on_commit_callbacks
):
    creator = CreatorFactory()
    room = LiveRoomFactory(creator=creator, title="春季上新专场")
    _sales(creator, room, today)
    url = reverse("authorization:live-room", args=[room.pk])
    login(client, shop_sub.user)
    body = html(client.get(url))
    assert "解锁更多数据" in body and "data-confirm" in body and 'id="sales-data"' not in body
    refused = client.post(url)  # not confirmed: no request
    assert refused.status_code == 400 and "GRANT-3" in refused.content.decode()
    assert not LiveRoomRequest.objects.exists()
    assert client.post(url, {"confirmed": "1"}).status_code == 302
    req = LiveRoomRequest.objects.get(organization=shop, live_room=room)
    body = html(client.get(url))
    assert 'id="request-pending"' in body and "解锁更多数据" not in body
    with django_capture_on_commit_callbacks(execute=True):
        services.live_room_request_authorize(request=req, actor=creator.user)
    assert 'id="sales-data"' in html(client.get(url))  # GRANT-9: sub sees live_room data
    assert client.get(reverse("authorization:live-room", args=[999999])).status_code == 404


def test_service_provider_and_creators_have_no_organization_pages(client, creator):
    provider = main_member(kind=Organization.Kind.SERVICE_PROVIDER)
    room = LiveRoomFactory(creator=creator)
    for user in (provider.user, creator.user):
        client.force_login(user)
        assert client.get(reverse("authorization:org-grants")).status_code == 404
        assert client.get(reverse("authorization:live-room", args=[room.pk])).status_code == 404
        assert client.post(reverse("authorization:live-room", args=[room.pk])).status_code == 404
    assert not LiveRoomRequest.objects.exists()


def test_dashboard_shows_the_grant_cards(client, creator, shop_main):
    client.force_login(creator.user)
    assert "数据授权管理" in html(client.get("/"))
    client.force_login(shop_main.user)
    assert "达人授权列表" in html(client.get("/"))


def test_live_room_search_with_a_nul_byte_is_a_400_not_a_500(client):
    from portal.tests.factories import main_member

    member = main_member(kind="agency")
    client.force_login(member.user)
    resp = client.get("/authorization/org/live-rooms/", {"q": "a\x00b"})
    assert resp.status_code == 400
    assert resp.context["error"].field == "q"


def test_grant_2_authorize_with_nothing_ticked_names_the_field_and_the_rule(client, creator, today):
    # Given a creator who fills in the dates but ticks no organization
    login(client, creator.user)
    page = html(
        client.post(
            reverse("authorization:creator-grants"), {"start_date": today, "end_date": today + days(10)}
        )
    )
    # Then the error names the rule and the field to fix, not a bare "This field is required."
    assert "GRANT-2: 店铺/机构：请搜索并勾选至少一个要授权的店铺/机构。" in page  # noqa: RUF001
    assert "这个字段是必填项" not in page and "This field is required" not in page
    assert not Grant.objects.exists()


def test_grant_7_dates_stay_on_one_line_and_reject_asks_for_confirmation(client, creator, shop_main, today):
    # Given a creator with an all_data grant and a pending live-room request
    GrantFactory(creator=creator, start_date=today, end_date=today + days(30))
    request = services.live_room_request_create(
        membership=shop_main, live_room=LiveRoomFactory(creator=creator), actor=shop_main.user
    )
    login(client, creator.user)
    body = html(client.get(reverse("authorization:creator-grants")))
    # Then the date cells are marked as dates, which the stylesheet keeps on one line
    end = (today + days(30)).isoformat()
    assert f'<td class="date">{end}</td>' in body
    css = (settings.BASE_DIR / "static/portal/app.css").read_text()
    assert re.search(r"\.table td\.date \{[^}]*white-space:nowrap", css)
    # And rejecting a request asks first, like the other refusing actions on the page
    action = reverse("authorization:request-reject", args=[request.pk])
    reject = re.search(rf'<form[^>]*action="{action}"[^>]*>', body).group(0)
    assert "data-confirm=" in reject
