"""History pages: the deposit page pages through every deposit entry (it stopped at 50), and
the top-up history lists every order of the organization with its state, amount in yuan and
a link to its result page (the wallet page shows only the latest 5)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import ClosureRequest, DepositEntry
from billing.services.deposit import deposit_pay_in
from billing.tests.factories_wallet import TopUpOrderFactory
from portal.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_deposit_page_pages_through_every_entry(client, owner, teammate):
    # given 55 pay-ins (more than the 50 the page used to cut off at)
    for i in range(55):
        deposit_pay_in(organization_id=owner.organization_id, amount_fen=100 + i, actor=None)
    url = reverse("billing:deposit")
    for member in (owner, teammate):
        client.force_login(member.user)
        seen = []
        for number in (1, 2, 3):
            resp = client.get(url, {"page": number})
            assert resp.status_code == 200
            seen += [e.pk for e in resp.context["page"]]
        # then every entry is on exactly one page, newest first, 20 a page
        newest_first = list(
            DepositEntry.objects.filter(account__organization_id=owner.organization_id)
            .order_by("-created_at", "-id")
            .values_list("pk", flat=True)
        )
        assert seen == newest_first and len(seen) == 55
    html = client.get(url, {"page": 3}).content.decode()
    assert html.count("data-entry=") == 15 and "第 3 / 3 页" in html and "¥1.00" in html


def test_deposit_page_pages_through_every_closure_request(client, owner):
    # Given 25 closure requests, each rejected in turn (more than the 20 the page cut off at)
    requests = [
        ClosureRequest.objects.create(organization=owner.organization, state="rejected", review_note=f"r{i}")
        for i in range(25)
    ]
    client.force_login(owner.user)
    url = reverse("billing:deposit")
    # When the owner pages through the closure requests (the deposit entries keep their own pages)
    first = client.get(url).content.decode()
    second = client.get(url, {"closures_page": 2}).content.decode()
    # Then every request is on exactly one page, newest first
    assert first.count("data-closure=") == 20 and second.count("data-closure=") == 5
    assert f'data-closure="{requests[0].pk}"' in second and f'data-closure="{requests[-1].pk}"' in first
    assert "closures_page=2" in first


def test_deposit_page_of_another_tenant_shows_none_of_the_entries(client, owner, outsider):
    deposit_pay_in(organization_id=owner.organization_id, amount_fen=777, actor=None)
    client.force_login(outsider.user)
    html = client.get(reverse("billing:deposit")).content.decode()
    assert "data-entry=" not in html and "¥7.77" not in html


def test_top_up_history_lists_every_order_with_state_amount_and_link(client, owner, teammate):
    org = owner.organization
    now = timezone.now()
    paid = TopUpOrderFactory(organization=org, amount_fen=12_345, state="paid", paid_at=now)
    failed = TopUpOrderFactory(organization=org, amount_fen=500, state="failed")
    expired = TopUpOrderFactory(organization=org, amount_fen=100, state="expired")
    pending = TopUpOrderFactory(organization=org, amount_fen=100_000)
    for member in (owner, teammate):
        client.force_login(member.user)
        resp = client.get(reverse("billing:top-up-list"))
        assert resp.status_code == 200
        html = resp.content.decode()
        for order, label, amount in (
            (paid, "已支付", "¥123.45"),
            (failed, "支付失败", "¥5.00"),
            (expired, "已过期", "¥1.00"),
            (pending, "待支付", "¥1,000.00"),
        ):
            row = html[html.index(f'data-order="{order.out_trade_no}"') :].split("</tr>")[0]
            assert f'data-state="{order.state}"' in row and label in row and amount in row
            assert f'href="{reverse("billing:top-up-result", args=[order.out_trade_no])}"' in row


def test_top_up_history_pages_newest_first_with_constant_queries(
    client, owner, django_assert_max_num_queries
):
    base = timezone.now() - dt.timedelta(days=1)
    orders = [TopUpOrderFactory(organization=owner.organization, amount_fen=100 + i) for i in range(45)]
    for i, order in enumerate(orders):  # distinct creation times, oldest first
        type(order).objects.filter(pk=order.pk).update(created_at=base + dt.timedelta(minutes=i))
    client.force_login(owner.user)
    with django_assert_max_num_queries(15):
        first = client.get(reverse("billing:top-up-list"))
    listed = [o.out_trade_no for o in first.context["page"]]
    assert listed == [o.out_trade_no for o in reversed(orders)][:20]
    last = client.get(reverse("billing:top-up-list"), {"page": 3})
    assert [o.out_trade_no for o in last.context["page"]] == [o.out_trade_no for o in reversed(orders[:5])]
    assert "第 3 / 3 页" in last.content.decode()


def test_top_up_history_is_per_organization(client, owner, outsider):
    mine = TopUpOrderFactory(organization=owner.organization)
    client.force_login(outsider.user)
    html = client.get(reverse("billing:top-up-list")).content.decode()
    assert mine.out_trade_no not in html and "暂无充值记录" in html
    client.force_login(UserFactory())  # no organization at all
    assert client.get(reverse("billing:top-up-list")).status_code == 404
    client.logout()
    assert client.get(reverse("billing:top-up-list")).status_code == 302


def test_wallet_page_links_to_the_top_up_history(client, owner):
    client.force_login(owner.user)
    html = client.get(reverse("billing:wallet")).content.decode()
    assert f'href="{reverse("billing:top-up-list")}"' in html
