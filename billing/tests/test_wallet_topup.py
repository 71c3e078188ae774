"""Top-ups over the API and the provider webhook (FEE-4.1, FEE-6.1, money rules)."""

import datetime as dt
import json
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import LedgerEntry, PaymentEvent, TopUpOrder, Wallet
from billing.payments import sandbox
from billing.services.topup import top_up_create, top_up_expire_due
from billing.services.wallet import wallet_charge_for_month
from billing.tests.factories_wallet import TopUpOrderFactory, ledger_sum

pytestmark = pytest.mark.django_db
TOP_UPS = reverse("billing-api:top-ups")


def webhook(client, body: bytes, *, ts=None, secret=None, signature=None):
    ts = str(int(time.time()) if ts is None else ts)
    sig = signature or sandbox.sign(timestamp=ts, body=body, secret=secret)
    return client.post(
        reverse("billing-api:payment-webhook", args=["sandbox"]),
        data=body,
        content_type="application/json",
        headers={"X-Sandbox-Timestamp": ts, "X-Sandbox-Signature": sig},
    )


def paid_body(order, **kw):
    return sandbox.event_body(order=order, status="paid", **kw)


# --- API: create, list, idempotency ---------------------------------------------------------
def test_main_account_starts_a_top_up_and_gets_the_cashier_url(client, owner):
    client.force_login(owner.user)
    resp = client.post(TOP_UPS, {"amount_fen": 10_000}, content_type="application/json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    order = TopUpOrder.objects.get(out_trade_no=body["out_trade_no"])
    assert order.organization_id == owner.organization_id and order.state == "pending"
    assert body["pay_url"].endswith(f"/billing/cashier/sandbox/{order.out_trade_no}/")
    assert abs(order.expires_at - order.created_at - dt.timedelta(minutes=30)) < dt.timedelta(seconds=2)


@pytest.mark.parametrize("amount", [99, 100_000_001, 0, -100, "abc"])
def test_top_up_amount_outside_1_to_1000000_yuan_is_refused(client, owner, amount):
    client.force_login(owner.user)
    resp = client.post(TOP_UPS, {"amount_fen": amount}, content_type="application/json")
    assert resp.status_code == 400
    assert resp.json()["field"] == "amount_fen"
    assert not TopUpOrder.objects.exists()


def test_top_up_amount_range_is_a_database_check(org):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        TopUpOrderFactory(organization=org, amount_fen=50)


def test_order_number_is_unique_in_the_database(org):
    """The provider's callback names the order by its number: two orders may never share one."""
    from django.db import IntegrityError

    order = top_up_create(organization_id=org.id, amount_fen=100)
    with pytest.raises(IntegrityError):
        TopUpOrderFactory(organization=org, out_trade_no=order.out_trade_no)


def test_sub_account_cannot_top_up_and_other_tenant_sees_404(client, owner, teammate, outsider):
    order = top_up_create(organization_id=owner.organization_id, amount_fen=500)
    client.force_login(teammate.user)
    assert client.post(TOP_UPS, {"amount_fen": 500}, content_type="application/json").status_code == 403
    assert client.get(reverse("billing-api:top-up", args=[order.out_trade_no])).status_code == 200
    client.force_login(outsider.user)
    assert client.get(reverse("billing-api:top-up", args=[order.out_trade_no])).status_code == 404
    assert client.get(TOP_UPS).json()["count"] == 0


def test_idempotency_key_replays_the_first_response(client, owner):
    client.force_login(owner.user)
    first = client.post(
        TOP_UPS, {"amount_fen": 700}, content_type="application/json", headers={"Idempotency-Key": "k1"}
    )
    again = client.post(
        TOP_UPS, {"amount_fen": 700}, content_type="application/json", headers={"Idempotency-Key": "k1"}
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert TopUpOrder.objects.count() == 1


def test_idempotency_key_with_a_different_body_is_refused_409(client, owner):
    client.force_login(owner.user)
    client.post(
        TOP_UPS, {"amount_fen": 700}, content_type="application/json", headers={"Idempotency-Key": "k2"}
    )
    resp = client.post(
        TOP_UPS, {"amount_fen": 800}, content_type="application/json", headers={"Idempotency-Key": "k2"}
    )
    assert resp.status_code == 409
    assert resp.json() == {
        "code": "IDEMPOTENCY-KEY-REUSED",
        "message": "This Idempotency-Key was used with a different request body.",
        "field": "Idempotency-Key",
    }
    assert TopUpOrder.objects.count() == 1


def test_idempotency_keys_are_per_organization(client, owner, outsider):
    for m in (owner, outsider):
        client.force_login(m.user)
        resp = client.post(
            TOP_UPS, {"amount_fen": 700}, content_type="application/json", headers={"Idempotency-Key": "same"}
        )
        assert resp.status_code == 201
    assert TopUpOrder.objects.count() == 2


def test_top_up_list_has_a_constant_query_count(client, owner, django_assert_max_num_queries):
    for _ in range(5):
        top_up_create(organization_id=owner.organization_id, amount_fen=500)
    client.force_login(owner.user)
    with django_assert_max_num_queries(8):
        resp = client.get(TOP_UPS)
    assert resp.json()["count"] == 5


# --- webhook ----------------------------------------------------------------------------------
def test_signed_paid_webhook_credits_the_wallet_once(client, org):
    order = top_up_create(organization_id=org.id, amount_fen=10_000)
    resp = webhook(client, paid_body(order))
    assert resp.status_code == 200 and resp.json() == {"outcome": "credited", "credited": True}
    order.refresh_from_db()
    assert order.state == "paid" and order.paid_at is not None
    assert Wallet.objects.get(organization=org).balance_fen == 10_000 == ledger_sum(org.id)
    entry = LedgerEntry.objects.get()
    assert entry.kind == "top_up_credit" and entry.top_up_order == order


def test_webhook_with_a_bad_signature_is_refused(client, org):
    order = top_up_create(organization_id=org.id, amount_fen=10_000)
    resp = webhook(client, paid_body(order), secret="not-the-secret")
    assert resp.status_code == 401 and resp.json()["code"] == "PAYMENT-SIGNATURE"
    assert webhook(client, paid_body(order), signature="00").status_code == 401
    assert not LedgerEntry.objects.exists() and not PaymentEvent.objects.exists()


def test_webhook_with_a_tampered_body_is_refused(client, org):
    order = top_up_create(organization_id=org.id, amount_fen=100)
    body = paid_body(order)
    ts = str(int(time.time()))
    sig = sandbox.sign(timestamp=ts, body=body)
    tampered = body.replace(b'"amount_fen":100', b'"amount_fen":100000')
    resp = webhook(client, tampered, ts=ts, signature=sig)
    assert resp.status_code == 401
    assert ledger_sum(org.id) == 0


def test_webhook_older_than_5_minutes_is_refused(client, org):
    order = top_up_create(organization_id=org.id, amount_fen=100)
    resp = webhook(client, paid_body(order), ts=int(time.time()) - 301)
    assert resp.status_code == 401 and resp.json()["code"] == "PAYMENT-STALE"
    assert ledger_sum(org.id) == 0


def test_replayed_event_is_refused_and_credits_nothing(client, org):
    order = top_up_create(organization_id=org.id, amount_fen=100)
    body = paid_body(order)
    assert webhook(client, body).status_code == 200
    replay = webhook(client, body)
    assert replay.status_code == 409 and replay.json()["code"] == "PAYMENT-REPLAY"
    assert ledger_sum(org.id) == 100


def test_a_second_paid_event_for_the_same_order_credits_nothing(client, org):
    order = top_up_create(organization_id=org.id, amount_fen=100)
    assert webhook(client, paid_body(order)).status_code == 200
    resp = webhook(client, paid_body(order))  # new event id, same payment
    assert resp.status_code == 200 and resp.json() == {"outcome": "already_paid", "credited": False}
    assert ledger_sum(org.id) == 100 and LedgerEntry.objects.count() == 1


@pytest.mark.parametrize("override", [{"amount_fen": 99}, {"currency": "USD"}])
def test_webhook_amount_or_currency_mismatch_is_refused_and_logged(client, org, caplog, override):
    order = top_up_create(organization_id=org.id, amount_fen=100)
    resp = webhook(client, paid_body(order, **override))
    assert resp.status_code == 400 and resp.json()["code"] == "PAYMENT-MISMATCH"
    assert "mismatch" in caplog.text
    order.refresh_from_db()
    assert order.state == "pending" and ledger_sum(org.id) == 0
    assert PaymentEvent.objects.get().outcome == "rejected_mismatch"


@pytest.mark.parametrize("amount", [100.9, 100.0, "100"])
def test_webhook_amount_that_is_not_an_integer_of_fen_is_refused_and_logged(client, org, caplog, amount):
    # Money rules: the callback's amount must equal the order's, in integer fen; int() used to
    # turn 100.9 (or "100") into 100 and credit the order.
    order = top_up_create(organization_id=org.id, amount_fen=100)
    resp = webhook(client, paid_body(order, amount_fen=amount))
    assert resp.status_code == 400 and resp.json()["code"] == "PAYMENT-MALFORMED"
    assert resp.json()["field"] == "amount_fen" and "amount_fen" in caplog.text
    order.refresh_from_db()
    assert order.state == "pending" and ledger_sum(org.id) == 0


def test_failed_webhook_marks_the_order_failed(client, org):
    order = top_up_create(organization_id=org.id, amount_fen=100)
    assert webhook(client, sandbox.event_body(order=order, status="failed")).json()["outcome"] == "failed"
    order.refresh_from_db()
    assert order.state == "failed" and ledger_sum(org.id) == 0


def test_malformed_webhook_body_is_a_400_not_a_500(client, org):
    assert webhook(client, b"{not json").status_code == 400
    assert webhook(client, json.dumps({"event_id": "x"}).encode()).status_code == 400


def test_a_signed_timestamp_no_clock_can_hold_is_stale_not_a_500(client, org):
    order = top_up_create(organization_id=org.id, amount_fen=100)
    resp = webhook(client, paid_body(order), ts="9" * 30)
    assert resp.status_code == 401 and resp.json()["code"] == "PAYMENT-STALE"
    assert ledger_sum(org.id) == 0


@pytest.mark.parametrize("amount", [2**63, -(2**63) - 1, 10**30])
def test_a_signed_amount_beyond_any_fen_column_is_refused_not_a_500(client, org, caplog, amount):
    # Money rules: an amount that cannot be the order's is refused, naming the field and logged.
    order = top_up_create(organization_id=org.id, amount_fen=100)
    for status in ("paid", "failed"):
        resp = webhook(client, sandbox.event_body(order=order, status=status, amount_fen=amount))
        assert resp.status_code == 400 and resp.json()["code"] == "PAYMENT-MALFORMED"
        assert resp.json()["field"] == "amount_fen"
    assert "amount_fen" in caplog.text
    order.refresh_from_db()
    assert order.state == "pending" and ledger_sum(org.id) == 0


def test_webhook_for_an_unknown_order_is_404(client, org):
    order = TopUpOrder(out_trade_no="NOPE", amount_fen=100, currency="CNY")
    assert webhook(client, paid_body(order)).status_code == 404


# --- expiry and arrears lift ------------------------------------------------------------------
def test_pending_orders_expire_after_30_minutes(org):
    now = timezone.now()
    old = top_up_create(organization_id=org.id, amount_fen=100, now=now - dt.timedelta(minutes=31))
    fresh = top_up_create(organization_id=org.id, amount_fen=100, now=now - dt.timedelta(minutes=5))
    assert top_up_expire_due(now=now) == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.state == "expired" and fresh.state == "pending"
    assert top_up_expire_due(now=now) == 0


def test_a_payment_arriving_after_expiry_is_still_credited(client, org):
    order = top_up_create(organization_id=org.id, amount_fen=100, now=timezone.now() - dt.timedelta(hours=1))
    top_up_expire_due()
    assert webhook(client, paid_body(order)).json()["credited"] is True
    assert ledger_sum(org.id) == 100


def test_fee_6_1_top_up_bringing_balance_to_zero_lifts_arrears(
    client, org, django_capture_on_commit_callbacks
):
    from billing.selectors.wallet import wallet_in_arrears

    with django_capture_on_commit_callbacks(execute=True):
        wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=300)
    assert wallet_in_arrears(organization_id=org.id) is True
    order = top_up_create(organization_id=org.id, amount_fen=300)
    with django_capture_on_commit_callbacks(execute=True):
        webhook(client, paid_body(order))
    assert wallet_in_arrears(organization_id=org.id) is False


def test_fee_6_1_credit_while_not_in_arrears_leaves_the_gate_decision_correct(
    client, org, django_capture_on_commit_callbacks, django_assert_num_queries
):
    from django.core.cache import cache

    from billing.selectors.wallet import arrears_cache_key, wallet_in_arrears

    # Given a wallet at 0 (first top-up: the credit creates it) and then a positive balance,
    # with the gate's "no arrears" decision cached.
    for amount in (300, 500):
        assert wallet_in_arrears(organization_id=org.id) is False
        order = top_up_create(organization_id=org.id, amount_fen=amount)
        # When the credit commits.
        with django_capture_on_commit_callbacks(execute=True):
            assert webhook(client, paid_body(order)).json()["credited"] is True
        # Then the decision is still "no arrears", served from the cache without a query: a
        # credit that starts from a balance ≥ 0 cannot change it, so the key is kept.
        assert cache.get(arrears_cache_key(org.id)) is False
        with django_assert_num_queries(0):
            assert wallet_in_arrears(organization_id=org.id) is False
    assert Wallet.objects.get(organization=org).balance_fen == 800 == ledger_sum(org.id)


def test_fee_6_1_credit_that_leaves_arrears_unpaid_keeps_the_measures(
    client, org, django_capture_on_commit_callbacks
):
    from billing.selectors.wallet import wallet_in_arrears

    with django_capture_on_commit_callbacks(execute=True):
        wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=300)
    assert wallet_in_arrears(organization_id=org.id) is True
    order = top_up_create(organization_id=org.id, amount_fen=200)
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook(client, paid_body(order)).json()["credited"] is True
    # FEE-6.1: measures are lifted only when ALL arrears are paid; -100 fen is still arrears.
    assert wallet_in_arrears(organization_id=org.id) is True
    assert Wallet.objects.get(organization=org).balance_fen == -100 == ledger_sum(org.id)


def test_webhook_from_more_than_5_minutes_in_the_future_is_refused(client, org):
    order = top_up_create(organization_id=org.id, amount_fen=100)
    resp = webhook(client, paid_body(order), ts=int(time.time()) + 301)
    assert resp.status_code == 401 and resp.json()["code"] == "PAYMENT-STALE"


def test_webhook_for_an_unknown_provider_is_404(client, org):
    resp = client.post(
        reverse("billing-api:payment-webhook", args=["alipay"]), data=b"{}", content_type="application/json"
    )
    assert resp.status_code == 404


def test_payment_provider_is_chosen_by_settings(settings):
    from billing.payments import get_provider
    from billing.payments.sandbox import SandboxProvider
    from portal.errors import NotFound

    assert isinstance(get_provider(), SandboxProvider)
    settings.PAYMENT_PROVIDER = "wechat"
    with pytest.raises(NotFound):
        get_provider()
