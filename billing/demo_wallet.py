"""Billing I demo data (idempotent): the demo developer's wallet has a paid top-up, two
settled months (2024-01/02, left alone by the metering demo), a pending invoice request and
a deposit; the second shop is in arrears so the FEE-6.2 banner can be seen."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from billing.models import DepositEntry, Invoice, TopUpOrder
from billing.payments.sandbox import SandboxProvider, event_body
from billing.services.deposit import deposit_pay_in
from billing.services.wallet import wallet_charge_for_month
from portal import demo

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
        SandboxProvider().deliver(
            body=event_body(order=order, status="paid", event_id=f"evt_demo_{out_trade_no}"),
            host="127.0.0.1",
            now=timezone.now(),
        )


def _deposit(org, amount_fen: int) -> None:
    if not DepositEntry.objects.filter(account__organization=org).exists():
        deposit_pay_in(
            organization_id=org.id, amount_fen=amount_fen, actor=demo.user("billing_ops"), note="demo"
        )


def seed() -> None:
    provider = demo.organization("provider")
    shop2 = demo.organization("shop2")
    _paid_top_up(provider, "TDEMOPROVIDER0001", 100_000)
    with transaction.atomic():
        wallet_charge_for_month(
            organization_id=provider.id, year=2024, month=1, amount_fen=12_345, reference="demo"
        )
        wallet_charge_for_month(
            organization_id=provider.id, year=2024, month=2, amount_fen=23_456, reference="demo"
        )
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
