"""Factories and helpers for the wallet side (Billing I)."""

import datetime as dt
import uuid

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from billing.models import TopUpOrder
from portal.tests.factories import OrganizationFactory


class TopUpOrderFactory(DjangoModelFactory):
    class Meta:
        model = TopUpOrder

    organization = factory.SubFactory(OrganizationFactory)
    out_trade_no = factory.LazyFunction(lambda: f"T{uuid.uuid4().hex[:20].upper()}")
    amount_fen = 10_000
    provider = "sandbox"
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(minutes=30))


def ledger_sum(organization_id: int) -> int:
    from django.db.models import Sum

    from billing.models import LedgerEntry

    return int(
        LedgerEntry.objects.filter(wallet__organization_id=organization_id).aggregate(
            s=Sum("amount_fen", default=0)
        )["s"]
    )
