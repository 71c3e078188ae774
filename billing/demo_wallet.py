def seed() -> None:
    """Billing I demo data (idempotent)."""
