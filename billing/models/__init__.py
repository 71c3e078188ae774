"""Billing models: ``wallet`` (money in: wallet, ledger, top-ups, invoices, deposits — Billing I)
and ``metering`` (money out: catalog, usage, bills, settlement — Billing II)."""

from billing.models.metering import *  # noqa: F403
from billing.models.wallet import *  # noqa: F403
