import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views import i18n as i18n_views
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal import selectors, services
from portal.errors import DomainError
from portal.extensions import collect
from portal.forms import ApiKeyCreateForm
from portal.health import health_report
from portal.middleware import ACTIVE_ORG_SESSION_KEY

log = logging.getLogger(__name__)


@login_required
def dashboard(request):
    notifications = selectors.notification_list_for_user(
        user=request.user, membership=request.active_membership
    )
    membership = request.active_membership
    api_keys = selectors.api_key_list(membership=membership)[:20] if membership and membership.is_main else []
    return render(
        request,
        "portal/dashboard.html",
        {
            "banners": collect("banners", request),
            "cards": collect("cards", request),
            "notifications": notifications[:5],
            "api_keys": api_keys,
        },
    )


@login_required
def notification_list(request):
    qs = selectors.notification_list_for_user(user=request.user, membership=request.active_membership)
    page = Paginator(qs, 30).get_page(request.GET.get("page"))
    return render(request, "portal/notifications.html", {"page": page})


@login_required
@require_POST
def switch_organization(request):
    org_id = request.POST.get("organization")
    if any(str(m.organization_id) == org_id for m in selectors.membership_list_for_user(user=request.user)):
        request.session[ACTIVE_ORG_SESSION_KEY] = int(org_id)
    else:
        messages.error(request, _("你不是该组织的成员。"))
    return redirect("dashboard")


@login_required
@require_POST
def api_key_create(request):
    membership = request.active_membership
    if membership is None or not membership.is_main:
        messages.error(request, _("只有主账号可以创建 API 密钥。"))
        return redirect("dashboard")
    form = ApiKeyCreateForm(request.POST)
    if not form.is_valid():
        raise DomainError("API-KEY-NAME", form.errors["name"][0], field="name")
    _key, raw = services.api_key_create(
        membership=membership, name=form.cleaned_data["name"] or "default", actor=request.user
    )
    return render(request, "portal/api_key_created.html", {"raw_key": raw})


@never_cache
@require_POST
def set_language(request):
    """Django's language switch (sets the cookie), and for a signed-in user also the stored
    language: pages on every browser and the user's emails follow it."""
    response = i18n_views.set_language(request)
    code = request.POST.get("language")
    if request.user.is_authenticated and code in dict(settings.LANGUAGES):
        services.user_language_set(user=request.user, language=code)
    return response


def healthz(request):
    """For load balancers (the status code) and staff (what failed and why). Anyone else learns
    only which part is down: the reasons name hosts and migrations."""
    healthy, checks = health_report()
    down = [name for name, value in checks.items() if value != "ok"]
    body = {"status": "ok" if healthy else "fail", "down": down}
    if not healthy:
        log.warning("healthz: %s", {name: checks[name] for name in down})
    if request.user.is_authenticated and request.user.is_staff:
        body["checks"] = checks
    return JsonResponse(body, status=200 if healthy else 503)


@login_required
@require_POST
def api_key_revoke(request, key_id: int):
    membership = request.active_membership
    if membership is None or not membership.is_main:
        messages.error(request, _("只有主账号可以管理 API 密钥。"))
        return redirect("dashboard")
    services.api_key_revoke(membership=membership, key_id=key_id, actor=request.user)
    messages.success(request, _("密钥已停用。"))
    return redirect("dashboard")
