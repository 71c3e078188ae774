"""Races on PostgreSQL with real threads: each thread has its own connection."""

import threading
import time
from collections import Counter

import pytest
from django.db import connection

from billing.models import Invoice, LedgerEntry, Wallet
from billing.payments import sandbox
from billing.services.invoice import invoice_request
from billing.services.topup import payment_webhook_handle, top_up_create
from billing.services.wallet import wallet_charge_for_month, wallet_credit_top_up
from billing.tests.factories_wallet import TopUpOrderFactory, ledger_sum
from portal.errors import DomainError

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
USCC = "91350100M000100Y43"


def run_concurrently(n: int, fn) -> list:
    """Start ``n`` threads that call fn(i) at the same moment; return results or exceptions."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def signed(body: bytes) -> dict:
    ts = str(int(time.time()))
    return {"X-Sandbox-Timestamp": ts, "X-Sandbox-Signature": sandbox.sign(timestamp=ts, body=body)}


def test_50_concurrent_deliveries_of_one_webhook_credit_once(org):
    order = top_up_create(organization_id=org.id, amount_fen=10_000)
    body = sandbox.event_body(order=order, status="paid")
    headers = signed(body)
    results = run_concurrently(
        50, lambda i: payment_webhook_handle(provider_name="sandbox", headers=headers, body=body)
    )
    outcomes = Counter(r.outcome if not isinstance(r, Exception) else repr(r) for r in results)
    assert outcomes == {"credited": 1, "replay": 49}
    assert LedgerEntry.objects.filter(top_up_order=order).count() == 1
    assert Wallet.objects.get(organization=org).balance_fen == 10_000 == ledger_sum(org.id)


def test_50_concurrent_distinct_events_for_one_payment_credit_once(org):
    order = top_up_create(organization_id=org.id, amount_fen=10_000)

    def deliver(i):
        body = sandbox.event_body(order=order, status="paid", event_id=f"evt_{i}")
        return payment_webhook_handle(provider_name="sandbox", headers=signed(body), body=body)

    outcomes = Counter(r.outcome for r in run_concurrently(50, deliver))
    assert outcomes == {"credited": 1, "already_paid": 49}
    assert ledger_sum(org.id) == 10_000 == Wallet.objects.get(organization=org).balance_fen


def test_20_concurrent_charges_and_top_ups_on_one_wallet_lose_nothing(org):
    orders = [
        TopUpOrderFactory(organization=org, amount_fen=1_000 + i, state="paid", paid_at=order_time())
        for i in range(10)
    ]

    def work(i):
        if i % 2:
            return wallet_credit_top_up(order=orders[i // 2])
        return wallet_charge_for_month(
            organization_id=org.id, year=2024, month=i // 2 + 1, amount_fen=700 + i
        )

    results = run_concurrently(20, work)
    assert not [r for r in results if isinstance(r, Exception)]
    expected = sum(1_000 + i for i in range(10)) - sum(700 + i for i in range(0, 20, 2))
    wallet = Wallet.objects.get(organization=org)
    assert wallet.balance_fen == expected == ledger_sum(org.id)
    assert LedgerEntry.objects.filter(wallet=wallet).count() == 20
    # balance_after_fen forms an unbroken chain: every entry saw the previous balance.
    running = 0
    for e in LedgerEntry.objects.filter(wallet=wallet).order_by("id"):
        running += e.amount_fen
        assert e.balance_after_fen == running


def test_20_concurrent_charges_and_webhook_credits_on_one_wallet_lose_nothing(org):
    """The same race through the path production takes: signed provider callbacks into
    ``payment_webhook_handle`` (→ ``wallet_credit_paid_event``), interleaved with settlement
    charges, plus a second delivery (another event id) of every payment racing its first."""
    # given 10 pending orders and, for each, two distinct "paid" events for the same payment
    orders = [top_up_create(organization_id=org.id, amount_fen=1_000 + i) for i in range(10)]
    bodies = [
        [sandbox.event_body(order=o, status="paid", event_id=f"evt_{o.out_trade_no}_{n}") for n in (1, 2)]
        for o in orders
    ]

    # when 30 threads start at once: charge, first delivery, second delivery, charge, ...
    def work(i):
        order_index, slot = divmod(i, 3)
        if slot == 0:
            return wallet_charge_for_month(
                organization_id=org.id, year=2024, month=order_index + 1, amount_fen=700 + order_index
            )
        body = bodies[order_index][slot - 1]
        return payment_webhook_handle(provider_name="sandbox", headers=signed(body), body=body)

    results = run_concurrently(30, work)

    # then nothing failed, every payment was credited exactly once, every charge booked once
    assert not [r for r in results if isinstance(r, Exception)], results
    outcomes = Counter(r.outcome for i, r in enumerate(results) if i % 3)
    assert outcomes == {"credited": 10, "already_paid": 10}
    wallet = Wallet.objects.get(organization=org)
    for order in orders:
        assert LedgerEntry.objects.filter(top_up_order=order, kind="top_up_credit").count() == 1
        order.refresh_from_db()
        assert order.state == "paid"
    assert LedgerEntry.objects.filter(wallet=wallet, kind="settlement_charge").count() == 10
    expected = sum(1_000 + i for i in range(10)) - sum(700 + i for i in range(10))
    assert wallet.balance_fen == expected == ledger_sum(org.id)
    # and balance_after_fen forms an unbroken chain: no entry was computed from a stale balance
    running = 0
    for e in LedgerEntry.objects.filter(wallet=wallet).order_by("id"):
        running += e.amount_fen
        assert e.balance_after_fen == running


def order_time():
    from django.utils import timezone

    return timezone.now()


def test_first_concurrent_wallet_creation_is_race_free(org):
    results = run_concurrently(
        10, lambda i: wallet_charge_for_month(organization_id=org.id, year=2024, month=i + 1, amount_fen=1)
    )
    assert not [r for r in results if isinstance(r, Exception)]
    assert Wallet.objects.filter(organization=org).count() == 1
    assert Wallet.objects.get(organization=org).balance_fen == -10 == ledger_sum(org.id)


def test_fee_4_3_two_concurrent_invoice_requests_cannot_exceed_the_invoiceable_amount(org):
    order = top_up_create(organization_id=org.id, amount_fen=10_000)
    body = sandbox.event_body(order=order, status="paid")
    payment_webhook_handle(provider_name="sandbox", headers=signed(body), body=body)
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=10_000)

    def request(i):
        return invoice_request(
            organization_id=org.id,
            amount_fen=7_000,
            title="星河",
            taxpayer_id=USCC,
            kind="general",
            email="a@b.cn",
        )

    results = run_concurrently(2, request)
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(refused) == 1 and refused[0].code == "FEE-4.3"
    assert Invoice.objects.count() == 1


def test_fee_4_2_concurrent_settlement_retries_charge_the_month_once(org):
    results = run_concurrently(
        10, lambda i: wallet_charge_for_month(organization_id=org.id, year=2024, month=8, amount_fen=555)
    )
    assert len({r.pk for r in results}) == 1
    assert ledger_sum(org.id) == -555


def test_concurrent_requests_with_one_idempotency_key_create_one_order(org):
    from billing.models import TopUpOrder
    from billing.services.topup import idempotent_call, request_fingerprint

    def post(i):
        return idempotent_call(
            organization_id=org.id,
            scope="top-ups",
            key="same-key",
            fingerprint=request_fingerprint({"amount_fen": 500}),
            call=lambda: (
                201,
                {"out_trade_no": top_up_create(organization_id=org.id, amount_fen=500).out_trade_no},
            ),
        )

    results = run_concurrently(5, post)
    assert not [r for r in results if isinstance(r, Exception)]
    assert len({r[1]["out_trade_no"] for r in results}) == 1
    assert sorted(r[2] for r in results) == [False, True, True, True, True]
    assert TopUpOrder.objects.count() == 1
