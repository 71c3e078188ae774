"""FEE-2.1 read paths by the tier in force on each usage day, as settlement bills it: the usage
chart (page and API) and the bill's tier column (page, CSV, API)."""

import csv
import datetime as dt
import io
import re

import pytest
from django.db import connection
from django.urls import reverse

from billing.models import Api, Bill
from billing.selectors.metering import USAGE_DAILY_SQL
from billing.services import metering as svc
from billing.services.settlement import settlement_run_month
from billing.services.usage import usage_partition_ensure
from billing.tests.factories_metering import ApiFactory, paid_api, record_usage, sh
from portal import clock

pytestmark = pytest.mark.django_db

IN, OUT = "in_cloud", "out_of_cloud"
MARCH_14, MARCH_15 = dt.date(2026, 3, 14), dt.date(2026, 3, 15)
USAGE_API = "/api/v1/billing/usage/daily"


def free_then_basic_on_the_15th(app) -> Api:
    """A free API made basic on 15 March 2026 (priced from then), used on both sides of the change."""
    api = ApiFactory(tier=Api.Tier.FREE, code="order.tiered")
    svc.api_update(api=api, tier=Api.Tier.BASIC, today=MARCH_14)
    svc.api_price_set(api=api, price_fen_per_1000=1000, effective_from=MARCH_15)
    record_usage(
        [
            (app, api, IN, sh(2026, 3, 1), 7),
            (app, api, IN, sh(2026, 3, 14, 23), 3),  # 15:00 UTC on the 14th: still free
            (app, api, IN, sh(2026, 3, 15), 1000),  # 00:00 +08 on the 15th: basic
            (app, api, OUT, sh(2026, 3, 20, 12), 500),
        ]
    )
    return api


def day(n: int) -> int:
    return n - 1  # index of March n in the month's series


class TestUsageChartByTierInForce:
    def test_fee_2_1_free_to_basic_on_the_15th_splits_the_chart_on_that_day(self, client, owner, app):
        # given a free API made basic on the 15th, and today it is basic
        free_then_basic_on_the_15th(app)
        client.force_login(owner.user)
        # when the owner opens the usage page and the usage API for March
        page = client.get(reverse("billing:usage"), {"month": "2026-03"})
        body = client.get(USAGE_API, {"month": "2026-03"}).json()
        # then the calls before the 15th are free and those from the 15th basic, in both
        by_tier = page.context["data"]["by_tier"]
        assert body["by_tier"] == by_tier
        assert by_tier["free"][day(1)] == 7 and by_tier["free"][day(14)] == 3
        assert by_tier["basic"][day(15)] == 1000 and by_tier["basic"][day(20)] == 500
        assert sum(by_tier["free"]) == 10 and sum(by_tier["basic"]) == 1500
        assert sum(by_tier["value_added"]) == 0 and body["total_calls"] == 1510
        free, basic, _ = page.context["tier_chart"]["data"]["datasets"]  # in Api.Tier order
        assert free["data"][day(14)] == 3 and free["data"][day(15)] == 0
        assert basic["data"][day(14)] == 0 and basic["data"][day(15)] == 1000

    def test_fee_2_1_filters_by_app_and_api_keep_the_tier_of_each_day(self, client, teammate, app):
        api = free_then_basic_on_the_15th(app)
        other = paid_api(code="order.other")
        record_usage([(app, other, IN, sh(2026, 3, 2), 40)])
        client.force_login(teammate.user)
        body = client.get(USAGE_API, {"month": "2026-03", "app": app.pk, "api": api.pk}).json()
        assert sum(body["by_tier"]["free"]) == 10 and sum(body["by_tier"]["basic"]) == 1500
        assert list(body["by_app"]) == [str(app.pk)] and body["total_calls"] == 1510
        assert body["by_app"][str(app.pk)][day(2)] == 0  # the other API is filtered out

    def test_fee_2_1_basic_to_value_added_then_free(self, client, owner, app):
        api = paid_api(code="va.tiered")
        svc.api_update(api=api, tier=Api.Tier.VALUE_ADDED, today=dt.date(2026, 3, 9))
        svc.api_update(api=api, tier=Api.Tier.FREE, today=dt.date(2026, 3, 19))
        record_usage([(app, api, IN, sh(2026, 3, d), d) for d in (9, 10, 19, 20)])
        client.force_login(owner.user)
        by_tier = client.get(USAGE_API, {"month": "2026-03"}).json()["by_tier"]
        assert [(t, i + 1) for t, series in by_tier.items() for i, n in enumerate(series) if n] == [
            ("free", 20),
            ("basic", 9),
            ("value_added", 10),
            ("value_added", 19),
        ]

    def test_other_tenant_sees_none_of_the_usage(self, client, outsider, app):
        free_then_basic_on_the_15th(app)
        client.force_login(outsider.user)
        body = client.get(USAGE_API, {"month": "2026-03"}).json()
        assert body["total_calls"] == 0 and body["by_app"] == {}

    def test_the_by_tier_query_reads_only_the_months_partition_through_its_index(self, app):
        """One organization's month: an index scan of that month's partition (pruned), as before
        the tier became per day. Seq scans are disabled because a test table is tiny."""
        for month in (2, 3, 4):
            usage_partition_ensure(year=2026, month=month)
        free_then_basic_on_the_15th(app)
        start, end = clock.month_range(2026, 3)
        with connection.cursor() as cur:
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute(
                "EXPLAIN " + USAGE_DAILY_SQL.format(filters=""),
                {"start": start, "end": end, "org": app.organization_id},
            )
            plan = "\n".join(r[0] for r in cur.fetchall())
        # "Index Scan using …_pk" here; "Bitmap Index Scan on …_pk" on a real month's volume
        assert re.search(r"Index Scan (using|on) billing_usage_hourly_p2026_03_pk", plan), plan
        assert "Seq Scan on billing_usage_hourly" not in plan, plan
        assert "p2026_02" not in plan and "p2026_04" not in plan, plan


class TestBillTierInForce:
    @pytest.fixture
    def bill(self, app):
        """March settled with a free→basic API (changed on the 15th) and a basic→value-added one
        (on the 10th); both are free today, after March."""
        tiered = free_then_basic_on_the_15th(app)
        upgraded = paid_api(price_fen_per_1000=2000, code="va.upgraded")
        svc.api_update(api=upgraded, tier=Api.Tier.VALUE_ADDED, today=dt.date(2026, 3, 9))
        record_usage([(app, upgraded, IN, sh(2026, 3, 2), 1000), (app, upgraded, IN, sh(2026, 3, 12), 1000)])
        settlement_run_month(year=2026, month=3)
        for api in (tiered, upgraded):
            svc.api_update(api=api, tier=Api.Tier.FREE, today=dt.date(2026, 4, 1))
        return Bill.objects.get(organization=app.organization)

    def test_fee_2_1_csv_shows_the_tiers_of_the_billed_days(self, client, owner, bill):
        client.force_login(owner.user)
        resp = client.get(reverse("billing:bill-csv", args=[bill.pk]))
        rows = list(csv.DictReader(io.StringIO(resp.content.decode().lstrip("\ufeff"))))
        lines = {(r["api"], r["location"]): (r["tier"], r["calls"]) for r in rows if r["api"]}
        assert lines == {
            # free days are never billed: only the basic days from the 15th
            ("order.tiered", IN): ("basic", "1000"),
            ("order.tiered", OUT): ("basic", "500"),
            ("va.upgraded", IN): ("basic → value_added", "2000"),
        }

    def test_fee_2_1_detail_page_and_api_show_the_tiers_of_the_billed_days(self, client, teammate, bill):
        client.force_login(teammate.user)
        html = client.get(reverse("billing:bill", args=[bill.pk])).content.decode()
        assert re.findall(r'data-testid="bill-line-tier">([^<]*)<', html) == [
            "基础API",
            "基础API",
            "基础API → 增值API",
        ]
        (app_row,) = client.get(f"/api/v1/billing/bills/{bill.pk}").json()["apps"]
        assert [(ln["api"], ln["tier"], ln["tiers"]) for ln in app_row["lines"]] == [
            ("order.tiered", "basic", ["basic"]),
            ("order.tiered", "basic", ["basic"]),
            ("va.upgraded", "value_added", ["basic", "value_added"]),  # tier: one code
        ]

    def test_other_tenant_gets_404(self, client, outsider, bill):
        client.force_login(outsider.user)
        assert client.get(reverse("billing:bill-csv", args=[bill.pk])).status_code == 404
        assert client.get(reverse("billing:bill", args=[bill.pk])).status_code == 404
