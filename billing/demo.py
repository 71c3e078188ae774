"""Billing demo data for seed_demo (idempotent)."""

from billing import demo_metering, demo_wallet


def seed() -> None:
    # The ledger is append-only and read in time order: the provider's back-dated history goes
    # in before the metering demo settles the last two months (dated after it).
    demo_wallet.seed_history()
    demo_metering.seed()  # catalog and apps first: the wallet demo may charge for their usage
    demo_wallet.seed()
    demo_wallet.seed_bills()  # after every charge above
