"""Money helpers. Amounts are integer fen; rounding happens once, here, half-up."""

from decimal import ROUND_HALF_UP, Decimal


def round_half_up(value: Decimal | int) -> int:
    """Round a Decimal amount of fen to an integer number of fen, half-up (0.5 → 1)."""
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_fen(fen: int | None) -> str:
    """12345 → '¥123.45'; -5 → '-¥0.05'."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def yuan_to_fen(yuan: Decimal | str | int) -> int:
    """Parse an amount in yuan (at most two decimals) into fen; raises ValueError otherwise."""
    value = Decimal(str(yuan))
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("at most two decimal places")
    return int(value * 100)
