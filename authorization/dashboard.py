"""Dashboard cards and navigation of the authorization app (role-aware)."""

from django.urls import reverse
from django.utils.translation import gettext as _

from portal.models import Organization


def _org_member(request) -> bool:
    m = getattr(request, "active_membership", None)
    return m is not None and m.organization.kind in (Organization.Kind.SHOP, Organization.Kind.AGENCY)


def cards(request):
    items = []
    if hasattr(request.user, "creator"):
        items.append(
            {
                "title": _("数据授权管理"),
                "body": _("授权店铺/机构查看你的带货数据。处理直播间申请。"),
                "url": reverse("authorization:creator-grants"),
                "order": 30,
            }
        )
    if _org_member(request):
        items.append(
            {
                "title": _("达人授权列表"),
                "body": _("查看授权给我们的达人及其数据。"),
                "url": reverse("authorization:org-grants"),
                "order": 30,
            }
        )
    return items


def nav(request):
    items = []
    if hasattr(request.user, "creator"):
        items.append({"title": _("数据授权"), "url": reverse("authorization:creator-grants"), "order": 30})
    if _org_member(request):
        items.append({"title": _("达人授权"), "url": reverse("authorization:org-grants"), "order": 30})
        items.append({"title": _("直播间"), "url": reverse("authorization:live-rooms"), "order": 31})
    return items
