# ruff: noqa: RUF001
"""Gifts on the dashboard and in the top navigation: for shop members only."""

from django.urls import reverse
from django.utils.translation import gettext as _

from gifts import selectors
from gifts.models import Gift, GiftDispute


def _membership(request):
    membership = getattr(request, "active_membership", None)
    return membership if selectors.shop_of(membership) is not None else None


def cards(request) -> list[dict]:
    membership = _membership(request)
    if membership is None:
        return []
    gifts = selectors.gift_list_for_shop(membership=membership)
    waiting = gifts.filter(state__in=[Gift.State.SUBMITTED, Gift.State.REVISIONS_REQUESTED]).count()
    open_disputes = (
        selectors.dispute_list_for_shop(membership=membership)
        .filter(state=GiftDispute.State.AWAITING_MERCHANT)
        .count()
    )
    return [
        {
            "title": _("全球购赠品"),
            "body": _("审核中/待修改 %(w)d 个，待举证争议 %(d)d 件") % {"w": waiting, "d": open_disputes},
            "url": reverse("gifts:gift-list"),
            "order": 40,
        }
    ]


def nav(request) -> list[dict]:
    if _membership(request) is None:
        return []
    return [{"title": _("赠品"), "url": reverse("gifts:gift-list"), "order": 40}]
