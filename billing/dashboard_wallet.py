"""Wallet card and navigation (Billing I): members of an organization see its wallet."""

from django.urls import reverse
from django.utils.translation import gettext as _

from billing.selectors.wallet import wallet_balance_fen
from portal.money import format_fen


def cards(request) -> list[dict]:
    membership = getattr(request, "active_membership", None)
    if membership is None:
        return []
    balance = wallet_balance_fen(organization_id=membership.organization_id)
    body = _("余额 %(balance)s") % {"balance": format_fen(balance)}
    if balance < 0:
        body += " · " + _("已欠费")
    return [{"title": _("钱包"), "body": body, "url": reverse("billing:wallet"), "order": 10}]


def nav(request) -> list[dict]:
    if getattr(request, "active_membership", None) is None:
        return []
    return [
        {"title": _("钱包"), "url": reverse("billing:wallet"), "order": 10},
        {"title": _("发票"), "url": reverse("billing:invoices"), "order": 11},
    ]
