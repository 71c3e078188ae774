"""Wallet card and navigation (Billing I): members of an organization see its wallet."""

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from billing.selectors.wallet import wallet_balance_fen
from portal.money import format_fen


def _balance_fen(request) -> int | None:
    """The active organization's balance, read once per request (the card and the banner)."""
    membership = getattr(request, "active_membership", None)
    if membership is None:
        return None
    if not hasattr(request, "_wallet_balance_fen"):
        request._wallet_balance_fen = wallet_balance_fen(organization_id=membership.organization_id)
    return request._wallet_balance_fen


def cards(request) -> list[dict]:
    balance = _balance_fen(request)
    if balance is None:
        return []
    body = _("余额 %(balance)s") % {"balance": format_fen(balance)}
    if balance < 0:
        body += " · " + _("已欠费")
    return [{"title": _("钱包"), "body": body, "url": reverse("billing:wallet"), "order": 10}]


def banners(request) -> list[dict]:
    """In arrears, the dashboard opens with the wallet pages' banner: the measures in force
    (FEE-6.1) and the FEE-6.2 notice that their consequences are the developer's own."""
    balance = _balance_fen(request)
    if balance is None or balance >= 0:
        return []
    html = render_to_string(
        "billing/_wallet_arrears_banner.html", {"in_arrears": True, "arrears_fen": -balance}, request=request
    )
    return [{"html": html, "order": 10}]


def nav(request) -> list[dict]:
    if getattr(request, "active_membership", None) is None:
        return []
    return [
        {"title": _("钱包"), "url": reverse("billing:wallet"), "order": 10},
        {"title": _("发票"), "url": reverse("billing:invoices"), "order": 11},
    ]
