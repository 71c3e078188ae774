from django import template

from portal.money import format_fen

register = template.Library()


@register.filter
def fen(value):
    """Show integer fen as ¥ with two decimals: {{ wallet.balance_fen|fen }}."""
    return format_fen(value)
