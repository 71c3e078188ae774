"""Wallet pages: owner / teammate / outsider, arrears banner, ledger filters and CSV,
top-up through the sandbox cashier, invoices and closure."""

import datetime as dt

import pytest
from django.urls import reverse

from billing.models import Bill, ClosureRequest, Invoice, LedgerEntry, TopUpOrder
from billing.services.invoice import invoice_issue, invoice_request
from billing.services.topup import top_up_create
from billing.services.wallet import wallet_charge_for_month
from billing.tests.factories_wallet import ledger_sum
from portal import clock
from portal.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
USCC = "91350100M000100Y43"


def pay(client, order):
    return client.post(reverse("billing:sandbox-cashier", args=[order.out_trade_no]), {"action": "pay"})


def test_wallet_page_for_owner_teammate_outsider_and_user_without_organization(
    client, owner, teammate, outsider
):
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=3, amount_fen=123)
    for member in (owner, teammate):
        client.force_login(member.user)
        html = client.get(reverse("billing:wallet")).content.decode()
        assert "-¥1.23" in html and 'data-kind="settlement_charge"' in html
    client.force_login(outsider.user)
    html = client.get(reverse("billing:wallet")).content.decode()
    assert 'data-kind="settlement_charge"' not in html and "¥0.00" in html
    client.force_login(UserFactory())
    assert client.get(reverse("billing:wallet")).status_code == 404


def test_fee_6_2_arrears_banner_shows_while_balance_is_negative(client, owner):
    client.force_login(owner.user)
    assert 'data-rule="FEE-6.2"' not in client.get(reverse("billing:wallet")).content.decode()
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=3, amount_fen=500)
    for name in ("billing:wallet", "billing:top-up", "billing:invoices", "billing:deposit"):
        html = client.get(reverse(name)).content.decode()
        assert 'data-rule="FEE-6.2"' in html and "FEE-6.2" in html and "¥5.00" in html


def test_fee_6_2_the_dashboard_in_arrears_opens_with_the_banner(client, owner, teammate):
    # Given a developer whose wallet is not in arrears, the dashboard shows no banner
    client.force_login(owner.user)
    assert 'data-rule="FEE-6.2"' not in client.get(reverse("dashboard")).content.decode()
    # When a settlement charge takes the balance below zero
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=3, amount_fen=500)
    # Then the dashboard opens with the arrears banner (FEE-6.1 measures, the FEE-6.2 notice, the
    # amount owed) for the main account and the sub-account alike, above the wallet card
    for member in (owner, teammate):
        client.force_login(member.user)
        html = client.get(reverse("dashboard")).content.decode()
        assert 'data-rule="FEE-6.2"' in html and "FEE-6.1-ARREARS" in html and "¥5.00" in html
        assert html.index('data-rule="FEE-6.2"') < html.index('class="cards"')


def test_the_dashboard_reads_the_balance_once_for_the_card_and_the_banner(client, owner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=3, amount_fen=500)
    client.force_login(owner.user)
    with CaptureQueriesContext(connection) as ctx:
        client.get(reverse("dashboard"))
    assert sum("billing_wallet" in q["sql"] for q in ctx.captured_queries) == 1


def test_fee_6_2_every_wallet_page_in_arrears_shows_the_banner(client, owner):
    # Given an organization in arrears with a paid top-up too small to end them, and an invoice
    _paid_charges(owner.organization_id, 1_000)
    invoice = invoice_request(
        organization_id=owner.organization_id,
        amount_fen=100,
        title="x",
        taxpayer_id=USCC,
        kind="general",
        email="a@b.cn",
    )
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=4, amount_fen=800)
    order = top_up_create(organization_id=owner.organization_id, amount_fen=300)
    client.force_login(owner.user)
    pay(client, order)
    assert ledger_sum(owner.organization_id) == -500
    # When the developer reads the top-up's result and the invoice, as every other wallet page
    for url in (
        reverse("billing:top-up-result", args=[order.out_trade_no]),
        reverse("billing:invoice", args=[invoice.pk]),
    ):
        html = client.get(url).content.decode()
        # Then the arrears banner names the FEE-6.2 liability and the amount still owed
        assert 'data-rule="FEE-6.2"' in html and "FEE-6.2" in html and "¥5.00" in html, url


def test_wallet_page_has_a_constant_query_count(client, owner, django_assert_max_num_queries):
    for month in range(3, 12):
        wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=month, amount_fen=1)
    client.force_login(owner.user)
    with django_assert_max_num_queries(20):
        resp = client.get(reverse("billing:wallet"))
    assert resp.status_code == 200


def test_the_balance_chart_runs_from_the_first_entry_to_now_at_the_current_balance(client, owner):
    for month in range(3, 12):
        wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=month, amount_fen=1)
    client.force_login(owner.user)
    config = client.get(reverse("billing:wallet")).context["chart_config"]
    dataset = config["data"]["datasets"][0]
    points, entries = dataset["data"], dataset["data"][:-1]
    # a time axis: x is the entry's time (epoch ms), so uneven gaps keep their width
    times = [e.created_at for e in LedgerEntry.objects.filter(wallet__organization_id=owner.organization_id)]
    assert [p["x"] for p in entries] == sorted(int(t.timestamp() * 1000) for t in times)
    assert entries[-1]["y"] == -0.09
    # the balance holds until now: the line runs on to today at the current balance, and that
    # last point has no dot (it is not an entry)
    assert points[-1] == {"x": points[-1]["x"], "y": -0.09}
    assert points[-1]["x"] > entries[-1]["x"]
    assert abs(points[-1]["x"] - clock.now().timestamp() * 1000) < 60_000
    assert dataset["pointRadius"] == [2] * len(entries) + [0]
    # the axis spans exactly that: no blank future months after the line
    assert (config["options"]["scales"]["x"]["min"], config["options"]["scales"]["x"]["max"]) == (
        points[0]["x"],
        points[-1]["x"],
    )


def test_an_empty_wallet_has_no_balance_line(client, owner):
    client.force_login(owner.user)
    resp = client.get(reverse("billing:wallet"))
    dataset = resp.context["chart_config"]["data"]["datasets"][0]
    assert dataset["data"] == [] and dataset["pointRadius"] == []


def test_an_empty_wallet_draws_no_chart_of_1970(client, owner):
    # Given a wallet without entries: an empty line on an axis of its own would read
    # "1970-01-01 08:00" six times (epoch 0 to 1 ms) over ¥0 to ¥1
    client.force_login(owner.user)
    html = client.get(reverse("billing:wallet")).content.decode()
    # Then the chart's place says there is nothing yet, and no canvas is drawn
    assert 'data-chart="balance-chart"' not in html
    assert 'data-testid="balance-chart-empty"' in html
    # And one entry draws its line again
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=3, amount_fen=1)
    html = client.get(reverse("billing:wallet")).content.decode()
    assert 'data-chart="balance-chart"' in html and 'data-testid="balance-chart-empty"' not in html


def test_ledger_filters_by_kind_and_date(client, owner):
    org_id = owner.organization_id
    wallet_charge_for_month(organization_id=org_id, year=2024, month=3, amount_fen=100)
    order = top_up_create(organization_id=org_id, amount_fen=1000)
    client.force_login(owner.user)
    pay(client, order)
    html = client.get(reverse("billing:wallet"), {"kind": "top_up_credit"}).content.decode()
    assert 'data-kind="top_up_credit"' in html and 'data-kind="settlement_charge"' not in html
    tomorrow = clock.today() + dt.timedelta(days=1)
    html = client.get(reverse("billing:wallet"), {"date_from": tomorrow.isoformat()}).content.decode()
    assert "data-kind=" not in html
    html = client.get(reverse("billing:wallet"), {"date_to": clock.today().isoformat()}).content.decode()
    assert html.count("data-kind=") == 2


def test_ledger_notes_name_the_bill_and_the_order_in_words_not_machine_references(client, owner, teammate):
    # Given a settled month with its bill, a month charged without one, and a paid top-up
    org_id = owner.organization_id
    bill = Bill.objects.create(organization_id=org_id, year=2024, month=4, subtotal_fen=300, total_fen=300)
    wallet_charge_for_month(
        organization_id=org_id, year=2024, month=4, amount_fen=300, reference=f"bill #{bill.pk}"
    )
    wallet_charge_for_month(organization_id=org_id, year=2024, month=3, amount_fen=100)
    order = top_up_create(organization_id=org_id, amount_fen=1000)
    client.force_login(owner.user)
    pay(client, order)
    for member in (owner, teammate):
        client.force_login(member.user)
        # When a member reads the ledger
        html = client.get(reverse("billing:wallet")).content.decode()
        # Then each note says what was paid, linked to it; no "bill #", "top-up" or "settlement" codes
        assert f'<a href="{reverse("billing:bill", args=[bill.pk])}">2024-04 技术服务费</a>' in html
        assert "2024-03 技术服务费" in html
        assert f'href="{reverse("billing:top-up-result", args=[order.out_trade_no])}"' in html
        for code in (f"bill #{bill.pk}", "settlement 2024-03", f"top-up {order.out_trade_no}"):
            assert code not in html, code
    # and the English page reads in English
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    html = client.get(reverse("billing:wallet")).content.decode()
    assert "2024-04 technical service fee" in html and "Top-up order" in html


def test_ledger_csv_streams_the_filtered_rows_of_the_own_organization_only(client, owner, outsider):
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=3, amount_fen=100)
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=4, amount_fen=200)
    wallet_charge_for_month(organization_id=outsider.organization_id, year=2024, month=3, amount_fen=999)
    client.force_login(owner.user)
    resp = client.get(reverse("billing:ledger-csv"), {"kind": "settlement_charge"})
    assert resp.streaming and resp["Content-Type"].startswith("text/csv")
    lines = b"".join(resp.streaming_content).decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("id,time,kind")
    assert len(lines) == 3 and all("-999" not in line for line in lines)
    assert {line.split(",")[4] for line in lines[1:]} == {"-100", "-200"}


def test_top_up_form_redirects_to_the_sandbox_cashier_and_pay_credits(client, owner):
    client.force_login(owner.user)
    resp = client.post(reverse("billing:top-up"), {"preset": "custom", "custom_yuan": "100"})
    order = TopUpOrder.objects.get()
    assert order.amount_fen == 10_000
    assert resp.status_code == 302 and resp.url == reverse(
        "billing:sandbox-cashier", args=[order.out_trade_no]
    )
    assert client.get(resp.url).status_code == 200
    resp = pay(client, order)
    assert resp.url == reverse("billing:top-up-result", args=[order.out_trade_no])
    html = client.get(resp.url).content.decode()
    assert 'data-state="paid"' in html and "¥100.00" in html
    assert ledger_sum(owner.organization_id) == 10_000


def test_top_up_preset_and_limits(client, owner):
    client.force_login(owner.user)
    client.post(reverse("billing:top-up"), {"preset": "50000"})
    assert TopUpOrder.objects.get().amount_fen == 50_000
    for bad in ("0.5", "1000000.01", "1.234", ""):
        resp = client.post(reverse("billing:top-up"), {"preset": "custom", "custom_yuan": bad})
        assert resp.status_code == 200 and resp.context["form"].errors
    assert TopUpOrder.objects.count() == 1


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "FEE-4.1-TOP-UP-AMOUNT: 自定义金额须是数字, 如 100 或 99.50。"),
        ("1.234", "FEE-4.1-TOP-UP-AMOUNT: 自定义金额最多两位小数 (精确到分)。"),
        ("12345678901", "FEE-4.1-TOP-UP-AMOUNT: 充值金额须在 ¥1 至 ¥1,000,000 之间。"),
        ("0", "FEE-4.1-TOP-UP-AMOUNT: 充值金额须在 ¥1 至 ¥1,000,000 之间。"),
        ("-5", "FEE-4.1-TOP-UP-AMOUNT: 充值金额须在 ¥1 至 ¥1,000,000 之间。"),
        ("0.5", "FEE-4.1-TOP-UP-AMOUNT: 充值金额须在 ¥1 至 ¥1,000,000 之间。"),
        ("", "FEE-4.1-TOP-UP-AMOUNT: 请输入自定义金额。"),
    ],
)
def test_a_bad_custom_top_up_amount_gets_one_message_that_matches_the_stated_limits(
    client, owner, typed, message
):
    # Given the owner on the top-up page, when a custom amount is typed that cannot be paid
    client.force_login(owner.user)
    resp = client.post(reverse("billing:top-up"), {"preset": "custom", "custom_yuan": typed})
    # Then the field says what is wrong once, naming the field and the rule, in the terms of the
    # page's own ¥1 to ¥1,000,000 (not "enter an amount" after one was typed, nor a 0.01 minimum
    # the page never states, nor Django's "确认小数不超过 2 位.")
    assert resp.status_code == 200 and resp.context["form"].errors == {"custom_yuan": [message]}
    html = resp.content.decode()
    assert 'min="1"' in html and 'max="1000000"' in html
    assert not TopUpOrder.objects.exists()


@pytest.mark.parametrize("data", [{"preset": ""}, {"preset": "12300"}])
def test_a_missing_or_unknown_preset_is_shown_naming_the_rule_not_a_silent_reload(client, owner, data):
    # Given the owner, when the form comes back with no preset picked or one the page never
    # offered (a stale page after the presets changed, a hand-made request)
    client.force_login(owner.user)
    resp = client.post(reverse("billing:top-up"), data)
    # Then the page says what to do next to the amounts, naming the rule; no order is made
    message = "FEE-4.1-TOP-UP-AMOUNT: 请选择充值金额。"
    assert resp.status_code == 200 and resp.context["form"].errors == {"preset": [message]}
    assert message in resp.content.decode()
    assert not TopUpOrder.objects.exists()


@pytest.mark.parametrize("preset", ["10000", "50000", ""])
def test_a_typed_custom_amount_wins_over_the_picked_preset(client, owner, preset):
    # Given the owner on the top-up page without JavaScript, with a preset still picked (or none)
    client.force_login(owner.user)
    post = {"custom_yuan": "88.5"} | ({"preset": preset} if preset else {})
    # When a custom amount is typed and the form sent
    resp = client.post(reverse("billing:top-up"), post)
    # Then the order is for the typed amount, never the preset
    assert resp.status_code == 302
    assert list(TopUpOrder.objects.values_list("amount_fen", flat=True)) == [8_850]


def test_a_typed_refused_custom_amount_is_refused_not_replaced_by_the_preset(client, owner):
    # Given the owner on the top-up page without JavaScript, the ¥100 preset still picked
    client.force_login(owner.user)
    # When "-5" is typed as the custom amount
    resp = client.post(reverse("billing:top-up"), {"preset": "10000", "custom_yuan": "-5"})
    # Then no order is created: the typed amount is refused, and the page shows "custom" picked
    assert resp.status_code == 200 and list(resp.context["form"].errors) == ["custom_yuan"]
    assert not TopUpOrder.objects.exists()
    assert resp.context["form"]["preset"].value() == "custom"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "FEE-4.3: 开票金额须是数字, 如 100 或 99.50。"),
        ("0", "FEE-4.3: 开票金额须大于 ¥0, 最多两位小数。"),
        ("1.234", "FEE-4.3: 开票金额须大于 ¥0, 最多两位小数。"),
    ],
)
def test_fee_4_3_a_bad_invoice_amount_names_the_field_and_the_rule(client, owner, typed, message):
    # Given the owner requesting an invoice, when the amount typed is not one that can be invoiced
    client.force_login(owner.user)
    resp = client.post(
        reverse("billing:invoices"),
        {"amount_yuan": typed, "title": "星河", "taxpayer_id": USCC, "kind": "general", "email": "a@b.cn"},
    )
    # Then the amount field says why, citing FEE-4.3, and nothing is requested
    assert resp.status_code == 200 and resp.context["form"].errors == {"amount_yuan": [message]}
    assert not Invoice.objects.exists()


def test_sandbox_fail_button_marks_the_order_failed(client, owner):
    order = top_up_create(organization_id=owner.organization_id, amount_fen=500)
    client.force_login(owner.user)
    client.post(reverse("billing:sandbox-cashier", args=[order.out_trade_no]), {"action": "fail"})
    order.refresh_from_db()
    assert order.state == "failed" and ledger_sum(owner.organization_id) == 0


def test_result_page_polls_with_htmx_until_final(client, owner):
    order = top_up_create(organization_id=owner.organization_id, amount_fen=500)
    client.force_login(owner.user)
    url = reverse("billing:top-up-result", args=[order.out_trade_no])
    partial = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert (
        partial.startswith('<div id="topup-status" data-state="pending"')
        and 'hx-trigger="every 2s"' in partial
    )
    pay(client, order)
    partial = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'data-state="paid"' in partial and "hx-trigger" not in partial


def test_fee_6_2_the_poll_that_sees_the_payment_redraws_the_page_and_its_banner(client, owner):
    # Given an organization in arrears whose result page is polling a pending top-up
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=3, amount_fen=500)
    order = top_up_create(organization_id=owner.organization_id, amount_fen=500)
    client.force_login(owner.user)
    url = reverse("billing:top-up-result", args=[order.out_trade_no])
    assert 'data-rule="FEE-6.2"' in client.get(url).content.decode()
    assert "HX-Refresh" not in client.get(url, headers={"HX-Request": "true"}).headers
    # When the payment ends the arrears and the next poll sees it
    pay(client, order)
    resp = client.get(url, headers={"HX-Request": "true"})
    # Then the page is redrawn once, and without the banner (FEE-6.1: lifted at once)
    assert resp.headers["HX-Refresh"] == "true"
    assert 'data-rule="FEE-6.2"' not in client.get(url).content.decode()


def test_an_order_past_its_30_minutes_reads_expired_before_the_beat_job_writes_it(client, owner):
    # Given a pending order created 31 minutes ago; the expiry job (every 5 minutes) has not run
    order = top_up_create(
        organization_id=owner.organization_id,
        amount_fen=500,
        now=clock.now() - dt.timedelta(minutes=31),
    )
    client.force_login(owner.user)
    url = reverse("billing:top-up-result", args=[order.out_trade_no])
    # When the developer opens its result page, the top-up history and the wallet
    html = client.get(url).content.decode()
    # Then it is expired: no "continue paying", no poll, no countdown at 0:00:00
    assert 'data-state="expired"' in html and "订单已过期" in html
    assert 'data-testid="pay-url"' not in html and "hx-trigger" not in html and "data-deadline" not in html
    history = client.get(reverse("billing:top-up-list")).content.decode()
    assert f'data-order="{order.out_trade_no}" data-state="expired"' in history
    assert "已过期" in client.get(reverse("billing:wallet")).content.decode()
    # And the sandbox cashier takes no payment for it
    cashier = client.get(reverse("billing:sandbox-cashier", args=[order.out_trade_no])).content.decode()
    assert 'data-testid="sandbox-pay"' not in cashier and "已过期" in cashier
    pay(client, order)
    assert ledger_sum(owner.organization_id) == 0
    # And the API says so to a client polling for a final state
    body = client.get(reverse("billing-api:top-up", args=[order.out_trade_no])).json()
    assert body["state"] == "expired" and body["pay_url"] is None


def test_a_sub_account_is_offered_no_payment_it_may_not_make(client, owner, teammate):
    # Given a pending top-up of the organization
    order = top_up_create(organization_id=owner.organization_id, amount_fen=500)
    client.force_login(teammate.user)
    # When a sub-account (read-only on the wallet) opens its result page and the cashier
    result = client.get(reverse("billing:top-up-result", args=[order.out_trade_no])).content.decode()
    cashier = client.get(reverse("billing:sandbox-cashier", args=[order.out_trade_no])).content.decode()
    # Then neither offers "continue paying" or pay / fail buttons (they answered a bare 403), and
    # the cashier says who can pay
    assert 'data-state="pending"' in result and 'data-testid="pay-url"' not in result
    assert 'data-testid="sandbox-pay"' not in cashier and 'data-testid="sandbox-fail"' not in cashier
    assert "只有主账号可以充值。" in cashier
    # While the main account still gets both
    client.force_login(owner.user)
    assert (
        'data-testid="pay-url"'
        in client.get(reverse("billing:top-up-result", args=[order.out_trade_no])).content.decode()
    )
    assert (
        'data-testid="sandbox-pay"'
        in client.get(reverse("billing:sandbox-cashier", args=[order.out_trade_no])).content.decode()
    )


def test_teammate_cannot_top_up_or_pay_and_outsider_gets_404(client, owner, teammate, outsider):
    order = top_up_create(organization_id=owner.organization_id, amount_fen=500)
    client.force_login(teammate.user)
    assert client.post(reverse("billing:top-up"), {"preset": "10000"}).status_code == 403
    assert pay(client, order).status_code == 403
    assert client.get(reverse("billing:top-up-result", args=[order.out_trade_no])).status_code == 200
    client.force_login(outsider.user)
    assert client.get(reverse("billing:top-up-result", args=[order.out_trade_no])).status_code == 404
    assert client.get(reverse("billing:sandbox-cashier", args=[order.out_trade_no])).status_code == 404
    assert pay(client, order).status_code == 404
    assert ledger_sum(owner.organization_id) == 0


def test_a_trade_number_with_a_nul_is_a_404_not_a_500(client, owner):
    client.force_login(owner.user)
    client.raise_request_exception = False
    for url in ("/billing/top-up/T%00x/", "/billing/cashier/sandbox/T%00x/"):
        assert client.get(url).status_code == 404, url
    assert client.post("/billing/cashier/sandbox/T%00x/", {"outcome": "paid"}).status_code == 404
    assert client.get("/api/v1/billing/top-ups/T%00x").status_code in (400, 404)


def _paid_charges(org_id, fen):
    order = top_up_create(organization_id=org_id, amount_fen=fen)
    from billing.payments.sandbox import SandboxProvider, event_body

    SandboxProvider().deliver(body=event_body(order=order, status="paid"), host="testserver", now=clock.now())
    wallet_charge_for_month(organization_id=org_id, year=2024, month=5, amount_fen=fen)


def test_fee_4_3_invoice_request_page_within_and_over_the_invoiceable_amount(client, owner):
    _paid_charges(owner.organization_id, 10_000)
    client.force_login(owner.user)
    form = {
        "amount_yuan": "60",
        "title": "星河软件",
        "taxpayer_id": USCC,
        "kind": "general",
        "email": "a@b.cn",
    }
    resp = client.post(reverse("billing:invoices"), form)
    invoice = Invoice.objects.get()
    assert resp.status_code == 302 and invoice.amount_fen == 6_000 and invoice.state == "requested"
    resp = client.post(reverse("billing:invoices"), {**form, "amount_yuan": "40.01"})
    assert resp.status_code == 200 and "FEE-4.3" in resp.content.decode()
    assert Invoice.objects.count() == 1
    assert resp.context["invoiceable_fen"] == 4_000


def test_fee_4_3_invoice_form_checks_the_taxpayer_id_check_digit(client, owner):
    _paid_charges(owner.organization_id, 10_000)
    client.force_login(owner.user)
    form = {
        "amount_yuan": "1",
        "title": "x",
        "taxpayer_id": "91350100M000100Y44",
        "kind": "general",
        "email": "a@b.cn",
    }
    resp = client.post(reverse("billing:invoices"), form)
    assert resp.status_code == 200 and "taxpayer_id" in resp.context["form"].errors
    assert not Invoice.objects.exists()


@pytest.mark.parametrize(
    "typed",
    [
        "91350100M000100Y44",  # wrong check character
        "91350100M000100Y4",  # 17 characters
        "91350100M000100Y431",  # 19 characters
        "9135010OM000100Y43",  # O is not in the code's alphabet
    ],
)
def test_fee_4_3_a_bad_taxpayer_id_gets_the_rule_and_what_the_code_must_be(client, owner, typed):
    # Given invoiceable fees, when the owner types a taxpayer ID that is not a valid code
    _paid_charges(owner.organization_id, 10_000)
    client.force_login(owner.user)
    form = {"amount_yuan": "1", "title": "x", "taxpayer_id": typed, "kind": "general", "email": "a@b.cn"}
    resp = client.post(reverse("billing:invoices"), form)
    # Then the field says, in the API's words and with its rule code, what the code must be
    # (not "check digit mismatch" for a code of the wrong length, nor Django's length message)
    message = "FEE-4.3-TAXPAYER-ID: 纳税人识别号须为 18 位统一社会信用代码 (校验位正确)。"
    assert resp.status_code == 200 and resp.context["form"].errors == {"taxpayer_id": [message]}
    assert not Invoice.objects.exists()


def test_fee_4_3_a_taxpayer_id_typed_in_full_width_characters_is_accepted_as_its_ascii(client, owner):
    # Given invoiceable fees, when the owner types the code with a Chinese input method (full-width
    # digits and letters, lower case, a trailing full-width space)
    _paid_charges(owner.organization_id, 10_000)
    client.force_login(owner.user)
    typed = "".join(chr(ord(c) + 0xFEE0) for c in USCC.lower()) + "\u3000"
    form = {"amount_yuan": "1", "title": "x", "taxpayer_id": typed, "kind": "general", "email": "a@b.cn"}
    resp = client.post(reverse("billing:invoices"), form)
    # Then the request is made, with the code as the register writes it
    assert resp.status_code == 302
    assert Invoice.objects.get().taxpayer_id == USCC


def test_fee_4_3_invoice_request_folds_a_full_width_taxpayer_id_for_the_api_too(owner):
    _paid_charges(owner.organization_id, 10_000)
    typed = "".join(chr(ord(c) + 0xFEE0) for c in USCC)
    invoice = invoice_request(
        organization_id=owner.organization_id,
        amount_fen=100,
        title="x",
        taxpayer_id=typed,
        kind="general",
        email="a@b.cn",
    )
    assert invoice.taxpayer_id == USCC


def test_invoice_pdf_is_downloadable_by_its_organization_only(client, owner, teammate, outsider, admin_user):
    _paid_charges(owner.organization_id, 10_000)
    invoice = invoice_request(
        organization_id=owner.organization_id,
        amount_fen=100,
        title="星河软件服务商",
        taxpayer_id=USCC,
        kind="special_vat",
        email="a@b.cn",
    )
    url = reverse("billing:invoice-pdf", args=[invoice.pk])
    client.force_login(owner.user)
    assert client.get(url).status_code == 404  # not issued yet
    invoice_issue(invoice_id=invoice.pk, actor=admin_user)
    for member in (owner, teammate):
        client.force_login(member.user)
        resp = client.get(url)
        assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
        assert b"".join(resp.streaming_content).startswith(b"%PDF")
    client.force_login(outsider.user)
    assert client.get(url).status_code == 404
    assert client.get(reverse("billing:invoice", args=[invoice.pk])).status_code == 404


def test_fee_4_3_an_email_longer_than_the_column_names_the_field_not_a_500(client, owner):
    # Given invoiceable fees, and an address the validator accepts but 254 characters cannot hold
    _paid_charges(owner.organization_id, 10_000)
    client.force_login(owner.user)
    email = "a" * 64 + "@" + ("b" * 60 + ".") * 4 + "cn"
    assert len(email) > 254
    form = {"amount_yuan": "1", "title": "x", "taxpayer_id": USCC, "kind": "general", "email": email}
    # When the owner requests an invoice on the page and over the API
    resp = client.post(reverse("billing:invoices"), form)
    api = client.post(
        reverse("billing-api:invoices"),
        {"amount_fen": 100, "title": "x", "taxpayer_id": USCC, "invoice_type": "general", "email": email},
        content_type="application/json",
    )
    # Then both name the email field, and nothing is requested
    assert resp.status_code == 200 and list(resp.context["form"].errors) == ["email"]
    assert api.status_code == 400 and api.json()["field"] == "email"
    assert not Invoice.objects.exists()


def test_an_issued_invoice_whose_pdf_storage_lost_is_404_not_500(client, owner, admin_user):
    # Given an issued invoice whose file the private storage no longer has
    _paid_charges(owner.organization_id, 10_000)
    invoice = invoice_request(
        organization_id=owner.organization_id,
        amount_fen=100,
        title="星河软件服务商",
        taxpayer_id=USCC,
        kind="general",
        email="a@b.cn",
    )
    invoice = invoice_issue(invoice_id=invoice.pk, actor=admin_user)
    invoice.pdf.storage.delete(invoice.pdf.name)
    client.force_login(owner.user)
    # When the developer downloads it on the page or over the API, then it is not found (as in
    # admin), not a server error
    assert client.get(reverse("billing:invoice-pdf", args=[invoice.pk])).status_code == 404
    resp = client.get(reverse("billing-api:invoice-pdf", args=[invoice.pk]))
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"


def test_fee_6_3_closure_page_refuses_while_in_arrears_naming_the_rule(client, owner, teammate):
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=3, amount_fen=1)
    client.force_login(owner.user)
    resp = client.post(reverse("billing:closure-request"), {"reason": "bye"})
    html = resp.content.decode()
    assert resp.status_code == 409 and 'data-code="FEE-6.3"' in html and "<strong>FEE-6.3</strong>" in html
    assert not ClosureRequest.objects.exists()
    order = top_up_create(organization_id=owner.organization_id, amount_fen=100)
    pay(client, order)
    assert client.post(reverse("billing:closure-request"), {"reason": "bye"}).status_code == 302
    assert ClosureRequest.objects.get().state == "pending"
    client.force_login(teammate.user)
    assert client.post(reverse("billing:closure-request")).status_code == 403


@pytest.mark.parametrize(
    ("language", "note"), [("zh-hans", "超过一个月的欠费由保证金抵扣 (FEE-6.3)"), ("en", None)]
)
def test_fee_6_3_a_deposit_transfer_is_noted_in_the_readers_language(client, owner, settings, language, note):
    from billing.services.deposit import deposit_pay_in, deposit_transfer_arrears

    # Given arrears older than a month, paid from the deposit
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=1, amount_fen=5_000)
    deposit_pay_in(organization_id=owner.organization_id, amount_fen=2_000, actor=None)
    later = clock.today() + dt.timedelta(days=40)  # the charge booked today is then over a month old
    assert deposit_transfer_arrears(organization_id=owner.organization_id, today=later)
    settings.LOCALE_PATHS = list(settings.LOCALE_PATHS)  # reload the compiled catalogues
    client.force_login(owner.user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    # When the owner reads the wallet's ledger and the deposit's entries
    wallet = client.get(reverse("billing:wallet")).content.decode()
    deposit = client.get(reverse("billing:deposit")).content.decode()
    # Then the transfer's note is in the reader's language, like the other notes, never the
    # service's stored English
    for page in (wallet, deposit):
        assert "arrears older than one month" not in page and "deposit transfer" not in page
        assert (note or "Arrears over a month old, paid from the deposit (FEE-6.3)") in page
