"""FEE-4.1: no URL, API or admin action moves money out of a wallet. Only settlement charges
(Billing II's service call) are negative; deposit transfers and top-ups only add."""

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from billing.models import ClosureRequest, LedgerEntry, Wallet
from billing.payments.sandbox import SandboxProvider, event_body
from billing.services.deposit import deposit_pay_in
from billing.services.invoice import invoice_request
from billing.services.topup import top_up_create
from billing.services.wallet import wallet_charge_for_month
from portal import clock
from portal.tests.factories import UserFactory, main_member

pytestmark = pytest.mark.django_db
USCC = "91350100M000100Y43"
SKIP = ("accounts/logout/", "accounts/password/", "i18n/")
HOSTILE = {
    "amount_fen": -100_000,
    "amount_yuan": "-1000",
    "amount": -100_000,
    "kind": "withdrawal",
    "preset": "custom",
    "custom_yuan": "-5",
    "reason": "x",
    "note": "x",
    "apply": "1",
    "action": "pay",
    "title": "x",
    "taxpayer_id": USCC,
    "email": "a@b.cn",
}


def walk(patterns, prefix=""):
    for p in patterns:
        part = str(p.pattern) if isinstance(p.pattern, RoutePattern) else None
        if part is None:
            continue  # regex patterns: the admin's app index only
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + part)
        elif isinstance(p, URLPattern):
            yield prefix + part


@pytest.fixture
def money_world():
    owner = main_member(kind="service_provider")
    org = owner.organization
    order = top_up_create(organization_id=org.id, amount_fen=50_000)
    SandboxProvider().deliver(body=event_body(order=order, status="paid"), host="testserver", now=clock.now())
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=80_000)  # arrears -30,000
    deposit_pay_in(organization_id=org.id, amount_fen=10_000, actor=None)
    invoice = invoice_request(
        organization_id=org.id, amount_fen=100, title="x", taxpayer_id=USCC, kind="general", email="a@b.cn"
    )
    closure = ClosureRequest.objects.create(organization=org, state="pending")
    pending = top_up_create(organization_id=org.id, amount_fen=100)
    return {"owner": owner, "org": org, "invoice": invoice, "closure": closure, "pending": pending}


def fill(route: str, world) -> str:
    def repl(m):
        conv = m.group(1) or "str"
        return {
            "int": str(world["invoice"].pk),
            "path": str(LedgerEntry.objects.order_by("pk").first().pk),
        }.get(conv, world["pending"].out_trade_no)

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", repl, route)


def snapshot():
    return {w.organization_id: w.balance_fen for w in Wallet.objects.all()}, set(
        LedgerEntry.objects.values_list("pk", flat=True)
    )


def assert_no_money_out(before):
    balances, ids = before
    assert ids <= set(LedgerEntry.objects.values_list("pk", flat=True)), "a ledger entry disappeared"
    new = LedgerEntry.objects.exclude(pk__in=ids)
    assert not new.filter(amount_fen__lt=0).exclude(kind="settlement_charge").exists()
    for wallet in Wallet.objects.all():
        added = new.filter(wallet=wallet).exclude(kind="settlement_charge")
        assert wallet.balance_fen >= balances.get(wallet.organization_id, 0) + sum(
            new.filter(wallet=wallet, kind="settlement_charge").values_list("amount_fen", flat=True)
        )
        assert all(e.amount_fen > 0 for e in added)


def test_fee_4_1_no_url_or_api_moves_money_out(money_world):
    routes = [r for r in walk(get_resolver().url_patterns) if not r.startswith(SKIP)]
    assert len(routes) > 30 and "api/v1/billing/top-ups" in routes
    assert "admin/billing/ledgerentry/<path:object_id>/change/" in routes
    staff = UserFactory(is_staff=True, is_superuser=True)
    before = snapshot()
    for user in (money_world["owner"].user, staff, None):
        client = Client(raise_request_exception=False)
        if user is not None:
            client.force_login(user)
        for route in routes:
            url = fill(route, money_world)
            client.get(url)
            client.post(url, HOSTILE)
            client.post(url, HOSTILE, content_type="application/json")
    assert_no_money_out(before)


def test_fee_4_1_no_admin_action_moves_money_out(money_world):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client(raise_request_exception=False)
    client.force_login(staff)
    before = snapshot()
    ran = []
    for model, model_admin in list(admin.site._registry.items()):
        request = type("R", (), {"user": staff, "GET": {}, "POST": {}, "method": "GET"})()
        for name in model_admin.get_actions(request):
            if name == "delete_selected":
                continue
            pks = list(model.objects.values_list("pk", flat=True)[:20])
            url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
            client.post(url, {**HOSTILE, "action": name, "_selected_action": pks, "amount_yuan": "1.00"})
            ran.append(f"{model._meta.label}.{name}")
    assert "billing.DepositAccount.transfer_arrears" in ran and "billing.Invoice.issue" in ran
    assert_no_money_out(before)


def test_fee_4_1_only_the_wallet_service_appends_ledger_entries():
    root = Path(__file__).resolve().parents[1]
    writers = set()
    for path in root.rglob("*.py"):
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(
            r"LedgerEntry\.objects\.(create|bulk_create|update|get_or_create)"
            r"|ledger_append\(|INSERT INTO billing_ledgerentry",
            text,
        ):
            writers.add(path.relative_to(root).as_posix())
    assert writers == {"services/wallet.py"}
    # And within it, the only negative append is the settlement charge.
    source = (root / "services" / "wallet.py").read_text(encoding="utf-8")
    # Three set-based appends: the top-up credit, alone and in a group-commit batch (kind
    # 'top_up_credit', amount_fen > 0, DB check), and the batch settlement charge, whose only
    # kind is 'settlement_charge' (amount_fen <= 0, DB check).
    assert source.count("INSERT INTO billing_ledgerentry") == 3
    assert source.count("SELECT w.id, 'top_up_credit', paid.amount_fen") == 2
    assert source.count("SELECT w.id, 'settlement_charge', -v.amount_fen") == 1
    assert source.count("amount_fen=-") == 1  # -deposit_entry.amount_fen (> 0)
    assert (
        "amount_fen=-deposit_entry.amount_fen" in source
    )  # a deposit entry is negative, so this is positive
