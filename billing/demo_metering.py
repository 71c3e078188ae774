def seed() -> None:
    """Billing II demo data (idempotent)."""
