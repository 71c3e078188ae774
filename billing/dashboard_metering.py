"""Billing II dashboard cards and navigation: developers see their apps, usage and bills."""

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from billing.models import App, Bill
from portal.models import Organization
from portal.money import format_fen


def _is_developer(membership) -> bool:
    org = membership.organization
    return (
        org.kind == Organization.Kind.SERVICE_PROVIDER or App.objects.filter(organization_id=org.id).exists()
    )


def cards(request) -> list[dict]:
    membership = getattr(request, "active_membership", None)
    if membership is None or not _is_developer(membership):
        return []
    apps = App.objects.filter(organization_id=membership.organization_id).count()
    last = Bill.objects.filter(organization_id=membership.organization_id).order_by("-year", "-month").first()
    bill_body = (
        _("%(y)s-%(m)02d 账单 %(total)s")
        % {"y": last.year, "m": last.month, "total": format_fen(last.total_fen)}
        if last
        else _("暂无账单")
    )
    return [
        {
            "title": _("我的应用"),
            "body": _("%(n)s 个应用") % {"n": apps},
            "url": reverse("billing:apps"),
            "order": 20,
        },
        {"title": _("技术服务费账单"), "body": bill_body, "url": reverse("billing:bills"), "order": 21},
        {"title": _("API 用量"), "body": _("按日查看调用次数"), "url": reverse("billing:usage"), "order": 22},
    ]


def nav(request) -> list[dict]:
    items = [{"title": _("折扣政策"), "url": reverse("billing:discount-policy"), "order": 40}]
    membership = getattr(request, "active_membership", None)
    if membership is not None and _is_developer(membership):
        items[:0] = [
            {"title": pgettext("plural", "应用"), "url": reverse("billing:apps"), "order": 20},
            {"title": _("用量"), "url": reverse("billing:usage"), "order": 21},
            {"title": _("账单"), "url": reverse("billing:bills"), "order": 22},
        ]
    return items
