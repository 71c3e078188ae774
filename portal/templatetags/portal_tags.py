from django import template

from portal.money import format_fen

register = template.Library()


@register.filter
def fen(value):
    """Show integer fen as ¥ with two decimals: {{ wallet.balance_fen|fen }}."""
    return format_fen(value)


@register.filter
def fen_off(value):
    """A deduction shown with its minus sign, and none when there is nothing off:
    {{ bill.discount_fen|fen_off }} → '-¥18.30', or '¥0.00' (never '-¥0.00')."""
    return format_fen(None if value is None else -int(value))


@register.filter
def count(value):
    """A count of calls, orders or people with thousands separators: 48125 → '48,125'."""
    return "—" if value is None else f"{int(value):,}"
