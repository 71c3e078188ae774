"""Browser journey (Billing II): a developer reads the usage chart, a bill and its exports."""

import datetime as dt
import os
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing.services.settlement import settlement_run_month
from billing.tests.factories_metering import AppFactory, DiscountFactory, paid_api, record_usage, sh
from portal.tests.factories import main_member

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]
SCREENSHOT = os.environ.get("E2E_SCREENSHOT_BILL")  # a path: save the bill page there to look at


def test_developer_sees_usage_chart_bill_and_exports(page, live_server, login, usage_table_cleanup):
    call_command("compile_catalogs", verbosity=0)
    member = main_member(kind="service_provider")
    member.user.set_password("pw-e2e-metering-1")
    member.user.save()
    app = AppFactory(organization=member.organization, name="浏览器应用")
    api = paid_api(price_fen_per_1000=1000, code="order.list")
    record_usage([(app, api, "in_cloud", sh(2026, 3, d, 10), 100 * d) for d in range(1, 6)])
    # FEE-5.1: a 20% quality-app discount on the 3rd to the 5th only
    DiscountFactory(
        app=app, rate=Decimal("0.2"), valid_from=dt.date(2026, 3, 3), valid_to=dt.date(2026, 3, 5)
    )
    settlement_run_month(year=2026, month=3)

    login(page, member.user.username, "pw-e2e-metering-1")
    page.goto(f"{live_server.url}/billing/usage/?month=2026-03")
    assert page.get_by_test_id("total-calls").inner_text() == "1,500"
    # app.js drew both charts from their JSON configs (no inline script under the CSP).
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('canvas[data-chart]')].map(c => !!window.Chart.getChart(c))"
    )
    assert drawn == [True, True]

    page.goto(f"{live_server.url}/billing/bills/")
    page.click("text=2026-03")
    # 1,500 fen of usage; the 1,200 calls of the 3rd to 5th (1,200 fen) are 20% off: ¥12.60
    assert page.get_by_test_id("bill-total").inner_text() == "¥12.60"
    assert page.get_by_test_id("bill-line-discounted").inner_text() == "1,200 次, 优惠 20%"
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)
    with page.expect_download() as csv_download:
        page.click("text=导出 CSV")
    assert csv_download.value.suggested_filename == "bill-2026-03.csv"
    pdf = page.request.get(live_server.url + page.locator("text=PDF 对账单").get_attribute("href"))
    assert pdf.ok and pdf.body().startswith(b"%PDF")

    page.goto(f"{live_server.url}/billing/apps/")
    page.once("dialog", lambda d: d.accept())
    page.click("text=重置密钥")
    assert len(page.get_by_test_id("app-secret").inner_text()) > 30
