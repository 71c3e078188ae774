"""Billing demo data for seed_demo (idempotent)."""

from billing import demo_metering, demo_wallet


def seed() -> None:
    demo_metering.seed()  # catalog and apps first: the wallet demo may charge for their usage
    demo_wallet.seed()
