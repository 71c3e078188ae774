"""Billing II pages and API: owner, teammate (sub-account) and outsider (other tenant → 404)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import App, Bill
from billing.services.settlement import settlement_run_month
from billing.tests.factories_metering import AppFactory, DiscountFactory, paid_api, record_usage, sh
from billing.tests.test_wallet_pdf import pdf_text
from portal.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def billed(app):
    """March 2026 settled for ``app``'s organization: 2 lines, 20% discount."""
    api = paid_api(price_fen_per_1000=1000, code="order.list")
    va = paid_api(price_fen_per_1000=3000, tier="value_added", code="va.data")
    DiscountFactory(
        app=app, rate=Decimal("0.2"), valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2026, 12, 31)
    )
    record_usage(
        [
            (app, api, "in_cloud", sh(2026, 3, 2, 10), 100),
            (app, va, "out_of_cloud", sh(2026, 3, 3, 10), 50),
        ]
    )
    settlement_run_month(year=2026, month=3)
    return Bill.objects.get(organization=app.organization)


class TestApps:
    def test_fee_3_1_main_account_creates_an_app_and_sees_the_secret_once(self, client, owner):
        client.force_login(owner.user)
        resp = client.post(reverse("billing:apps"), {"name": "我的ERP"})
        assert resp.status_code == 200 and resp["Cache-Control"].startswith("max-age=0")
        app = App.objects.get(organization=owner.organization)
        secret = resp.context["secret"]
        assert app.secret_hash == App.hash_secret(secret) and secret not in app.secret_hash
        listing = client.get(reverse("billing:apps")).content.decode()
        assert app.app_key in listing and secret not in listing

    def test_fee_3_1_rotating_replaces_the_secret(self, client, owner, app):
        client.force_login(owner.user)
        old = app.secret_hash
        resp = client.post(reverse("billing:app-rotate", args=[app.pk]))
        app.refresh_from_db()
        assert resp.status_code == 200 and app.secret_hash != old
        assert app.secret_hash == App.hash_secret(resp.context["secret"])

    def test_sub_account_sees_apps_but_cannot_create_or_rotate(self, client, teammate, app):
        client.force_login(teammate.user)
        page = client.get(reverse("billing:apps"))
        assert page.status_code == 200 and app.app_key in page.content.decode()
        assert "重置密钥" not in page.content.decode()
        old = app.secret_hash
        client.post(reverse("billing:app-rotate", args=[app.pk]))
        app.refresh_from_db()
        assert app.secret_hash == old
        assert client.post(reverse("billing:apps"), {"name": "x"}).status_code == 403

    def test_other_tenant_gets_404(self, client, outsider, app):
        client.force_login(outsider.user)
        assert app.app_key not in client.get(reverse("billing:apps")).content.decode()
        assert client.post(reverse("billing:app-rotate", args=[app.pk])).status_code == 404

    def test_api_lists_creates_and_rotates(self, client, owner, teammate, outsider, app):
        client.force_login(owner.user)
        assert [a["app_key"] for a in client.get("/api/v1/billing/apps").json()["results"]] == [app.app_key]
        created = client.post("/api/v1/billing/apps", {"name": "API app"}, content_type="application/json")
        assert created.status_code == 201 and created.json()["secret"]
        rotated = client.post(f"/api/v1/billing/apps/{app.pk}/rotate-secret")
        assert (
            rotated.status_code == 200
            and App.hash_secret(rotated.json()["secret"]) == App.objects.get(pk=app.pk).secret_hash
        )
        client.force_login(teammate.user)
        assert client.post(f"/api/v1/billing/apps/{app.pk}/rotate-secret").status_code == 403
        client.force_login(outsider.user)
        assert client.post(f"/api/v1/billing/apps/{app.pk}/rotate-secret").status_code == 404
        assert client.get("/api/v1/billing/apps").json()["results"] == []


class TestBills:
    def test_fee_4_2_bill_detail_per_app_api_location_with_discount(self, client, owner, billed):
        client.force_login(owner.user)
        html = client.get(reverse("billing:bill", args=[billed.pk])).content.decode()
        # 100 calls x 1000/1000 = 100 fen; 50 x 3000/1000 = 150 fen; 250 - 20% = 200.
        assert (billed.subtotal_fen, billed.discount_fen, billed.total_fen) == (250, 50, 200)
        assert "order.list" in html and "va.data" in html and "抖店云外" in html and "¥2.00" in html
        assert html.count('data-testid="bill-line"') == 2
        # FEE-5.1: each line says in words how many of its calls were discounted, by how much
        # (not "100 @ 20%" under "折扣日调用")
        assert "享受折扣的调用" in html and "折扣日调用" not in html
        assert "100 次, 优惠 20%" in html and "50 次, 优惠 20%" in html and "@ 20%" not in html

    def test_bill_shows_prices_as_yuan_counts_with_separators_and_one_sign_for_discounts(
        self, client, owner, app
    ):
        # Given a month of 48,125 calls at 800 fen per 1,000, with a discount on another app only
        api = paid_api(price_fen_per_1000=800, code="order.list")
        other = AppFactory(organization=owner.organization, name="无折扣")
        DiscountFactory(
            app=app, rate=Decimal("0.2"), valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2026, 12, 31)
        )
        record_usage(
            [
                (app, api, "in_cloud", sh(2026, 3, 2, 10), 48_125),
                (other, api, "in_cloud", sh(2026, 3, 2, 10), 1),
            ]
        )
        settlement_run_month(year=2026, month=3)
        bill = Bill.objects.get(organization=owner.organization)
        client.force_login(owner.user)
        # When the developer reads the bill and the bill list
        detail = client.get(reverse("billing:bill", args=[bill.pk])).content.decode()
        listing = client.get(reverse("billing:bills")).content.decode()
        # Then money is ¥ with two decimals (the price too), counts have separators,
        # a discount is always minus, and nothing off is ¥0.00, not -¥0.00
        assert '<td class="num" data-testid="bill-line-price">¥8.00</td>' in detail
        assert '<td class="num">48,125</td>' in detail
        assert (
            f'data-testid="bill-discount">-¥{bill.discount_fen // 100}.' in detail and bill.discount_fen > 0
        )
        assert "-¥0.00" not in detail and '<td class="num">¥0.00</td>' in detail
        assert f"-¥{bill.discount_fen // 100}." in listing
        catalog = client.get(reverse("billing:catalog")).content.decode()
        assert '<td class="num">¥8.00</td>' in catalog

    def test_in_english_one_bill_is_a_bill_and_the_list_is_bills(self, client, owner, billed):
        owner.user.language = "en"
        owner.user.save(update_fields=["language"])
        client.force_login(owner.user)
        detail = client.get(reverse("billing:bill", args=[billed.pk])).content.decode()
        listing = client.get(reverse("billing:bills")).content.decode()
        assert "<h1>Bill 2026-03</h1>" in detail
        assert "<h1>Bills</h1>" in listing
        assert f'<a href="{reverse("billing:apps")}">Apps</a>' in listing  # the menu names the list

    def test_bill_list_and_query_count(self, client, owner, billed, django_assert_max_num_queries):
        client.force_login(owner.user)
        with django_assert_max_num_queries(12):
            resp = client.get(reverse("billing:bills"))
        assert resp.content.decode().count('data-testid="bill-row"') == 1

    def test_csv_export_has_every_line_and_the_total(self, client, owner, billed):
        client.force_login(owner.user)
        resp = client.get(reverse("billing:bill-csv", args=[billed.pk]))
        text = resp.content.decode("utf-8-sig")
        assert resp["Content-Type"].startswith("text/csv")
        rows = [r.split(",") for r in text.strip().splitlines()]
        assert rows[0][:3] == ["app_key", "app", "api"]
        assert rows[1][2:] == ["order.list", "basic", "in_cloud", "100", "1000", "100", "0.2:100"]
        assert rows[-1][-1] == "200"

    def test_pdf_statement(self, client, owner, teammate, billed):
        client.force_login(teammate.user)
        resp = client.get(reverse("billing:bill-pdf", args=[billed.pk]))
        assert resp.status_code == 200 and resp.content.startswith(b"%PDF")
        text = " ".join(pdf_text(resp.content).split())  # a narrow cell wraps its words
        assert "order.list" in text and "100 次, 优惠 20%" in text and "50 次, 优惠 20%" in text

    def test_other_tenant_gets_404_on_every_bill_url(self, client, outsider, billed):
        client.force_login(outsider.user)
        for name in ("billing:bill", "billing:bill-csv", "billing:bill-pdf"):
            assert client.get(reverse(name, args=[billed.pk])).status_code == 404
        assert client.get(f"/api/v1/billing/bills/{billed.pk}").status_code == 404
        assert client.get("/api/v1/billing/bills").json()["results"] == []

    def test_api_lists_have_constant_query_counts(self, client, owner, billed, django_assert_max_num_queries):
        for i in range(3):
            AppFactory(organization=owner.organization, name=f"extra {i}")
        client.force_login(owner.user)
        with django_assert_max_num_queries(8):
            assert len(client.get("/api/v1/billing/apps").json()["results"]) == 4
        with django_assert_max_num_queries(8):
            assert len(client.get("/api/v1/billing/bills").json()["results"]) == 1

    def test_api_bill_detail(self, client, teammate, billed, django_assert_max_num_queries):
        client.force_login(teammate.user)
        with django_assert_max_num_queries(10):
            data = client.get(f"/api/v1/billing/bills/{billed.pk}").json()
        assert data["total_fen"] == 200
        (app_row,) = data["apps"]
        assert app_row["discount_fen"] == 50 and len(app_row["lines"]) == 2


class TestUsageAndPolicy:
    def test_usage_page_charts_calls_per_day_by_tier_and_app(self, client, owner, app):
        api = paid_api(code="order.list")
        record_usage([(app, api, "in_cloud", sh(2026, 3, 2, h), 10) for h in range(3)])
        record_usage([(app, api, "in_cloud", sh(2026, 3, 31, 23), 5)])
        client.force_login(owner.user)
        resp = client.get(reverse("billing:usage"), {"month": "2026-03", "app": app.pk})
        assert resp.status_code == 200 and resp.context["year"] == 2026 and resp.context["month"] == 3
        assert resp.context["data"]["total_calls"] == 35
        assert resp.context["tier_chart"]["data"]["datasets"][1]["data"][1] == 30  # basic, March 2
        api_resp = client.get("/api/v1/billing/usage/daily", {"month": "2026-03", "app": app.pk})
        body = api_resp.json()
        assert body["total_calls"] == 35
        assert body["by_tier"]["basic"][1] == 30 and body["by_tier"]["basic"][30] == 5
        assert body["by_app"][str(app.pk)][1] == 30
        html = resp.content.decode()
        assert 'data-chart="usage-tier-chart"' in html and 'id="usage-app-chart"' in html

    def test_usage_total_groups_its_digits(self, client, owner, app):
        record_usage([(app, paid_api(code="order.list"), "in_cloud", sh(2026, 3, 2, 10), 168_031)])
        client.force_login(owner.user)
        html = client.get(reverse("billing:usage"), {"month": "2026-03"}).content.decode()
        assert '<strong data-testid="total-calls">168,031</strong>' in html

    def test_usage_is_scoped_to_the_organization(self, client, outsider, app):
        api = paid_api()
        record_usage([(app, api, "in_cloud", sh(2026, 3, 2), 10)])
        client.force_login(outsider.user)
        assert client.get("/api/v1/billing/usage/daily", {"month": "2026-03"}).json()["total_calls"] == 0
        assert client.get("/api/v1/billing/usage/daily", {"month": "March"}).status_code == 400

    def test_fee_5_1_discount_policy_page_is_public(self, client, app):
        DiscountFactory(
            app=app, rate=Decimal("0.2"), valid_from=dt.date(2020, 1, 1), valid_to=dt.date(2099, 1, 1)
        )
        DiscountFactory(
            app=AppFactory(),
            rate=Decimal("0.2"),
            valid_from=dt.date(2020, 1, 1),
            valid_to=dt.date(2099, 1, 1),
        )
        html = client.get(reverse("billing:discount-policy")).content.decode()
        assert "20%" in html and html.count('data-testid="policy-row"') == 1
        assert client.get("/api/v1/billing/discount-policy").json()[0]["apps"] == 2

    def test_catalog_shows_price_in_force_today(self, client, owner):
        paid_api(price_fen_per_1000=123, code="catalog.api")
        client.force_login(owner.user)
        rows = client.get("/api/v1/billing/catalog").json()["results"]
        assert {"code": "catalog.api", "title": "", "tier": "basic", "price_today": 123} in rows
        assert "catalog.api" in client.get(reverse("billing:catalog")).content.decode()

    def test_catalog_page_shows_50_apis_a_page_and_pages_through_all(
        self, client, django_assert_max_num_queries
    ):
        from billing.models import Api
        from billing.tests.factories_metering import ApiFactory

        ApiFactory.create_batch(120)
        codes = set(Api.objects.values_list("code", flat=True))
        seen, page = [], 1
        while True:
            with django_assert_max_num_queries(8):
                html = client.get(reverse("billing:catalog"), {"page": page}).content.decode()
            rows = html.count("<tr><td><code>")
            assert rows <= 50
            seen += [c for c in codes if f"<code>{c}</code>" in html]
            if f"page={page + 1}" not in html:
                break
            page += 1
        assert page == 3 and sorted(seen) == sorted(codes)

    @pytest.mark.parametrize("page", ["billing:catalog", "billing:discount-policy"])
    def test_public_pages_link_apps_usage_and_bills_only_for_organization_members(self, client, owner, page):
        """A creator or staff member has no organization: its apps, usage and bills pages answer
        404, so the catalog and the discount policy must not offer links to them."""
        links = [reverse(name) for name in ("billing:apps", "billing:usage", "billing:bills")]
        client.force_login(UserFactory())
        html = client.get(reverse(page)).content.decode()
        assert not any(f'href="{link}"' in html for link in links)
        assert all(client.get(link).status_code == 404 for link in links)
        client.force_login(owner.user)
        html = client.get(reverse(page)).content.decode()
        assert all(f'href="{link}"' in html for link in links)

    def test_pages_need_login(self, client):
        for name in ("billing:apps", "billing:usage", "billing:bills"):
            assert client.get(reverse(name)).status_code == 302
