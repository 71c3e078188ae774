"""Billing I demo data (idempotent): the demo developer's wallet has half a year of history
(top-ups, and a settlement charge on the 5th of each month, on their real dates), a pending
invoice request and a deposit; the second shop is in arrears so the FEE-6.2 banner can be seen.

The history is written through the real services under ``clock.travel``, oldest first, so
the ledger reads in time order with a correct ``balance_after_fen`` on every entry. It runs
before the metering demo settles the last two months (``billing.demo``) and only into a
wallet with no entries yet: the ledger is append-only, so an entry dated earlier than one
already there could never be put in its place; a demo database seeded before keeps its
history as it is.
"""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from billing.models import Bill, DepositEntry, Invoice, LedgerEntry, TopUpOrder
from billing.payments.sandbox import SandboxProvider, event_body
from billing.services.deposit import deposit_pay_in
from billing.services.wallet import wallet_charge_for_month
from portal import clock, demo

DEMO_USCC = "91350100M000100Y43"


def _paid_top_up(org, out_trade_no: str, amount_fen: int) -> None:
    order, _ = TopUpOrder.objects.get_or_create(
        out_trade_no=out_trade_no,
        defaults={
            "organization": org,
            "amount_fen": amount_fen,
            "provider": "sandbox",
            "expires_at": timezone.now() + dt.timedelta(minutes=30),
        },
    )
    if order.state == TopUpOrder.State.PENDING:
        response = SandboxProvider().deliver(
            body=event_body(order=order, status="paid", event_id=f"evt_demo_{out_trade_no}"),
            host="127.0.0.1",
            now=timezone.now(),
        )
        if response.status_code != 200:
            raise RuntimeError(f"demo top-up {out_trade_no} was not credited: {response.content!r}")


def _deposit(org, amount_fen: int) -> None:
    if not DepositEntry.objects.filter(account__organization=org).exists():
        deposit_pay_in(
            organization_id=org.id, amount_fen=amount_fen, actor=demo.user("billing_ops"), note="demo"
        )


def _month(today: dt.date, back: int) -> tuple[int, int]:
    """(year, month) ``back`` months before today's."""
    index = today.year * 12 + today.month - 1 - back
    return index // 12, index % 12 + 1


def _at(year: int, month: int, day: int, hour: int) -> dt.datetime:
    return clock.start_of_day(dt.date(year, month, day)) + dt.timedelta(hours=hour)


def settlement_instant(year: int, month: int) -> dt.datetime:
    """When the real settlement of (year, month) runs: 02:00 on the 5th of the next month
    (FEE-4.2; billing.beat_metering), or now if that is still ahead."""
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    return min(_at(ny, nm, 5, 2), clock.now())


# The provider's history before the two months the metering demo settles from usage: months
# back from today's, as (top-ups [(day, hour, fen)], that month's settled fee in fen).
HISTORY = [
    (6, [(3, 10, 100_000)], 12_345),
    (5, [(12, 15, 50_000)], 23_456),
    (4, [], 18_900),
    (3, [(20, 11, 80_000)], 21_300),
]


def seed_history(*, today: dt.date | None = None) -> None:
    """The provider's back-dated top-ups and monthly charges, oldest first (see the module
    docstring); nothing when its wallet already has an entry. All or nothing."""
    provider = demo.organization("provider")
    if LedgerEntry.objects.filter(wallet__organization=provider).exists():
        return
    today = today or clock.today()
    events: list[tuple[dt.datetime, str, tuple]] = []
    for back, top_ups, fee_fen in HISTORY:
        year, month = _month(today, back)
        for day, hour, amount_fen in top_ups:
            events.append((_at(year, month, day, hour), "top_up", (amount_fen,)))
        events.append((settlement_instant(year, month), "charge", (year, month, fee_fen)))
    events.sort(key=lambda e: e[0])
    top_ups = 0
    with transaction.atomic():
        for instant, kind, args in events:
            with clock.travel(instant):
                if kind == "top_up":
                    top_ups += 1
                    _paid_top_up(provider, f"TDEMOPROVIDER{top_ups:04d}", args[0])
                else:
                    year, month, fee_fen = args
                    wallet_charge_for_month(
                        organization_id=provider.id,
                        year=year,
                        month=month,
                        amount_fen=fee_fen,
                        reference=f"settlement {year}-{month:02d}",
                    )


def seed_bills() -> None:
    """A bill for every month the demo charged without settling usage (the provider's older
    history, the second shop's arrears): the ledger's charge and the bills page must agree
    (FEE-4.2: a charge is a month's bill paid). Totals only, no lines: those months have no
    usage to itemize. Run after every charge is written; idempotent."""
    charges = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.SETTLEMENT_CHARGE,
        wallet__organization__in=[demo.organization("provider"), demo.organization("shop2")],
    ).select_related("wallet")
    for charge in charges:
        org_id = charge.wallet.organization_id
        if Bill.objects.filter(
            organization_id=org_id, year=charge.period_year, month=charge.period_month
        ).exists():
            continue
        bill = Bill.objects.create(
            organization_id=org_id,
            year=charge.period_year,
            month=charge.period_month,
            subtotal_fen=-charge.amount_fen,
            discount_fen=0,
            total_fen=-charge.amount_fen,
            ledger_entry_id=charge.pk,
        )
        Bill.objects.filter(pk=bill.pk).update(settled_at=charge.created_at)  # not the seeding time


def seed() -> None:
    provider = demo.organization("provider")
    shop2 = demo.organization("shop2")
    with transaction.atomic():
        wallet_charge_for_month(
            organization_id=shop2.id, year=2024, month=1, amount_fen=8_800, reference="demo"
        )
    if not Invoice.objects.filter(organization=provider).exists():
        Invoice.objects.create(
            organization=provider,
            amount_fen=10_000,
            title="星河软件服务商",
            taxpayer_id=DEMO_USCC,
            kind=Invoice.Kind.GENERAL,
            email="dev@example.com",
            requested_by=demo.user("dev"),
        )
    _deposit(provider, 500_000)
    _deposit(shop2, 5_000)
