"""Browser journey: the demo developer tops up ¥100 through the sandbox cashier."""

import re

import pytest
from django.core.management import call_command

from billing.models import LedgerEntry

# serialized_rollback: seed_demo needs the staff groups the data migrations created, and the
# flush after this test must give them back to the tests that run later.
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]


def _yuan(text: str) -> int:
    """'¥1,234.56' / '-¥0.05' → fen."""
    sign = -1 if text.strip().startswith("-") else 1
    return sign * int(re.sub(r"[^0-9]", "", text))


def test_demo_developer_tops_up_100_yuan_through_the_sandbox_cashier(page, live_server, login):
    call_command("seed_demo")
    login(page, "dev")
    page.goto(f"{live_server.url}/billing/wallet/")
    before = _yuan(page.get_by_test_id("balance").inner_text())
    credits_before = page.locator('tr[data-kind="top_up_credit"]').count()
    page.click("text=充值 >> nth=0")
    page.wait_for_url("**/billing/top-up/")
    # a custom amount typed, then a preset picked after all: the preset is what is paid
    page.fill('input[name="custom_yuan"]', "50")
    assert page.is_checked('input[name="preset"][value="custom"]')
    page.check('input[name="preset"][value="10000"]')  # ¥100.00
    assert page.input_value('input[name="custom_yuan"]') == ""
    page.click("#topup-form button[type=submit]")
    page.wait_for_url("**/billing/cashier/sandbox/**")
    assert "¥100.00" in page.locator("main").inner_text()
    page.get_by_test_id("sandbox-pay").click()
    page.wait_for_url("**/billing/top-up/T*/")
    assert page.get_by_test_id("order-state").inner_text() == "已支付"
    assert _yuan(page.get_by_test_id("balance").inner_text()) == before + 10_000
    page.goto(f"{live_server.url}/billing/wallet/")
    assert _yuan(page.get_by_test_id("balance").inner_text()) == before + 10_000
    assert page.locator('tr[data-kind="top_up_credit"]').count() == credits_before + 1
    # the balance chart ends at the new balance, on a time axis labelled with Shanghai dates
    chart = page.wait_for_function(
        "() => { const c = document.querySelector('canvas[data-chart=\"balance-chart\"]').chart;"
        " return c && c.scales.x.ticks.length && {labels: c.scales.x.ticks.map(t => t.label),"
        " yLabels: c.scales.y.ticks.map(t => t.label), last: c.data.datasets[0].data.at(-1).y}; }"
    ).json_value()
    assert round(chart["last"] * 100) == before + 10_000
    # dates as the site writes them (2026-05-03, not 2026/05/03), amounts in yuan with their sign
    assert chart["labels"] and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", label) for label in chart["labels"])
    assert chart["yLabels"] and all(re.fullmatch(r"-?¥[\d,]+(\.\d+)?", y) for y in chart["yLabels"]), chart
    assert LedgerEntry.objects.filter(kind="top_up_credit", amount_fen=10_000).count() == 1


def test_a_balance_chart_over_a_few_minutes_labels_its_ticks_with_the_time(page, live_server, login):
    from billing.tests.factories_metering import top_up
    from portal.tests.factories import main_member

    owner = main_member(kind="service_provider")
    owner.user.set_password("Chart-pass-1")
    owner.user.save()
    top_up(owner.organization, 500)
    top_up(owner.organization, 700)
    login(page, owner.user.username, "Chart-pass-1")
    page.goto(f"{live_server.url}/billing/wallet/")
    labels = page.wait_for_function(
        "() => { const c = document.querySelector('canvas[data-chart=\"balance-chart\"]').chart;"
        " return c && c.scales.x.ticks.length && c.scales.x.ticks.map(t => t.label); }"
    ).json_value()
    assert labels and all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", label) for label in labels), labels
