"""Dashboard cards and navigation of the authorization app (role-aware)."""

from django.urls import reverse
from django.utils.translation import gettext as _

from portal.models import Organization


def _org_member(request) -> bool:
    m = getattr(request, "active_membership", None)
    return m is not None and m.organization.kind in (Organization.Kind.SHOP, Organization.Kind.AGENCY)


def _org_main(request) -> bool:
    """GRANT-9: the webhook announces all_data revocations, so only the main account sets it."""
    return _org_member(request) and request.active_membership.is_main


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
    if _org_main(request):
        items.append(
            {
                "title": _("授权变更回调"),
                "body": _("达人解除授权或授权到期时通知你们的系统(HMAC 签名)。"),
                "url": reverse("authorization:webhook-settings"),
                "order": 32,
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
    if _org_main(request):
        items.append({"title": _("授权回调"), "url": reverse("authorization:webhook-settings"), "order": 32})
    return items
