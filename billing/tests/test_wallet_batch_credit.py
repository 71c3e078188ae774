"""FEE-4.1: the group-commit batch (``wallet_credit_paid_events``) must write exactly what the
same callbacks written one at a time write: outcomes, balances, ledger entries (amounts,
balance_after chain, order), order states and stored events. Hypothesis draws the batches."""

import datetime as dt
import uuid

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import LedgerEntry, PaymentEvent, TopUpOrder, Wallet
from billing.services.topup import top_up_create
from billing.services.wallet import (
    PaidEvent,
    wallet_charge_for_month,
    wallet_credit_paid_event,
    wallet_credit_paid_events,
)
from portal.tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)

# One callback of a batch: which wallet's order, and what is wrong with it, if anything.
KINDS = ("fine", "fine", "fine", "mismatch", "unknown_order", "already_paid", "replay")
callbacks = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2), st.sampled_from(KINDS), st.integers(100, 50_000)),
    min_size=1,
    max_size=12,
)


def state(orgs) -> dict:
    """Everything the credit writes, by wallet, without ids a second run cannot repeat."""
    wallets = {w.organization_id: w.balance_fen for w in Wallet.objects.filter(organization__in=orgs)}
    entries = LedgerEntry.objects.filter(wallet__organization__in=orgs).select_related("wallet")
    entries = entries.order_by("id")
    ledger = [
        (e.wallet.organization_id, e.kind, e.amount_fen, e.balance_after_fen, e.top_up_order_id, e.created_at)
        for e in entries
    ]
    orders = sorted(TopUpOrder.objects.filter(organization__in=orgs).values_list("id", "state", "paid_at"))
    events = sorted(PaymentEvent.objects.values_list("event_id", "order_id", "outcome", "received_at"))
    return {"wallets": wallets, "ledger": ledger, "orders": orders, "events": events}


def build(draw_callbacks, orgs) -> list[PaidEvent]:
    events = []
    for org_index, kind, amount in draw_callbacks:
        org = orgs[org_index]
        order = top_up_create(organization_id=org.id, amount_fen=amount, now=NOW)
        event_id = f"evt_{uuid.uuid4().hex}"
        out_trade_no, paid_amount = order.out_trade_no, amount
        if kind == "mismatch":
            paid_amount = amount + 1
        elif kind == "unknown_order":
            out_trade_no = f"T-UNKNOWN-{uuid.uuid4().hex[:8]}"
        elif kind in ("already_paid", "replay"):
            first_id = f"evt_{uuid.uuid4().hex}"
            first = PaidEvent("sandbox", first_id, order.out_trade_no, amount, "CNY", "S", {})
            wallet_credit_paid_event(**vars(first), now=NOW)
            if kind == "replay":
                event_id = first.event_id
        events.append(PaidEvent("sandbox", event_id, out_trade_no, paid_amount, "CNY", "SBX0", {"k": kind}))
    return events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=callbacks, in_arrears=st.booleans())
def test_fee_4_1_a_batch_writes_what_the_same_callbacks_write_one_at_a_time(drawn, in_arrears):
    with transaction.atomic():
        orgs = [OrganizationFactory() for _ in range(3)]
        if in_arrears:
            wallet_charge_for_month(organization_id=orgs[0].id, year=2024, month=1, amount_fen=20_000)
        events = build(drawn, orgs)
        now = [NOW + dt.timedelta(milliseconds=i) for i in range(len(events))]

        # One at a time, in a savepoint that is then rolled back...
        sid = transaction.savepoint()
        alone = [wallet_credit_paid_event(**vars(e), now=n) for e, n in zip(events, now, strict=True)]
        expected = state(orgs)
        transaction.savepoint_rollback(sid)

        # ...and the same callbacks as one batch.
        together = wallet_credit_paid_events(events, now=now)
        assert together == alone
        assert state(orgs) == expected
        transaction.set_rollback(True)


def test_a_batch_that_repeats_an_order_or_an_event_is_refused_before_writing():
    org = OrganizationFactory()
    order = top_up_create(organization_id=org.id, amount_fen=1_000, now=NOW)
    one = PaidEvent("sandbox", "evt_a", order.out_trade_no, 1_000, "CNY", "SBX", {})
    other = PaidEvent("sandbox", "evt_b", order.out_trade_no, 1_000, "CNY", "SBX", {})
    with pytest.raises(ValueError, match="twice"):
        wallet_credit_paid_events([one, other], now=[NOW, NOW])
    with pytest.raises(ValueError, match="twice"):
        wallet_credit_paid_events([one, one], now=[NOW, NOW])
    assert not LedgerEntry.objects.filter(top_up_order=order).exists()
