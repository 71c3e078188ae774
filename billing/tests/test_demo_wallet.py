"""seed_demo's wallet history: top-ups and monthly settlement charges on their real dates over
half a year, a ledger that reads in time order with a correct balance after every entry, and
``verify_ledger`` passing; reseeding adds nothing."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command

from billing.models import LedgerEntry, TopUpOrder, Wallet
from portal import clock, demo

pytestmark = pytest.mark.django_db


def provider_entries() -> list[LedgerEntry]:
    return list(
        LedgerEntry.objects.filter(wallet__organization=demo.organization("provider")).order_by(
            "created_at", "id"
        )
    )


def test_demo_ledger_spans_months_in_order_and_verifies():
    # when
    call_command("seed_demo")

    # then the provider's history covers half a year of distinct months
    entries = provider_entries()
    assert entries[-1].created_at - entries[0].created_at > dt.timedelta(days=31)
    months = {f"{clock.local(e.created_at):%Y-%m}" for e in entries}
    assert len(months) >= 6
    # read in time order, every balance_after_fen is the running sum, ending at the balance
    running = 0
    for entry in entries:
        running += entry.amount_fen
        assert entry.balance_after_fen == running, entry
    assert Wallet.objects.get(organization=demo.organization("provider")).balance_fen == running > 0
    # appended oldest first: primary-key order is time order
    assert [e.pk for e in entries] == sorted(e.pk for e in entries)
    # each settlement charge is dated after its month ended: 02:00 on the 5th (or now, before it)
    charges = [e for e in entries if e.kind == LedgerEntry.Kind.SETTLEMENT_CHARGE]
    assert len(charges) >= 6
    for charge in charges:
        _, month_end = clock.month_range(charge.period_year, charge.period_month)
        local = clock.local(charge.created_at)
        assert charge.created_at >= month_end
        assert (local.day, local.hour) == (5, 2) or local.date() == clock.today()
    # each credit carries its order's payment time
    for credit in (e for e in entries if e.kind == LedgerEntry.Kind.TOP_UP_CREDIT):
        order = TopUpOrder.objects.get(pk=credit.top_up_order_id)
        assert order.state == TopUpOrder.State.PAID and order.paid_at == credit.created_at
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "OK" in out.getvalue()


def ledger_rows() -> list[tuple]:
    return list(LedgerEntry.objects.order_by("id").values_list("id", "created_at", "balance_after_fen"))


def test_reseeding_leaves_the_demo_ledger_as_it_was():
    call_command("seed_demo")
    first = ledger_rows()

    call_command("seed_demo")

    assert ledger_rows() == first


def test_fee_4_2_every_month_the_demo_charged_has_its_bill():
    from billing.models import Bill

    # when the demo is seeded
    call_command("seed_demo")

    # then each settlement charge in any ledger is a bill of the same month, for the same total
    # (the history's charges for months before the last two used to have none)
    charges = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SETTLEMENT_CHARGE).select_related("wallet")
    assert charges.count() >= 6
    for charge in charges:
        bill = Bill.objects.get(
            organization_id=charge.wallet.organization_id, year=charge.period_year, month=charge.period_month
        )
        assert bill.total_fen == -charge.amount_fen and bill.ledger_entry_id == charge.pk, charge
    # and seeding again adds no second bill
    bills = Bill.objects.count()
    call_command("seed_demo")
    assert Bill.objects.count() == bills
