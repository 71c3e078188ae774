"""The organization's webhook settings page (GRANT-11 event hook), main account only: set the
URL, rotate the signing secret (shown once), send a test event, see recent deliveries.

Not a member of an organization (or a creator): 404, as every organization page; a sub-account:
403 from the service (GRANT-9), rendered by the DomainError middleware.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from authorization import selectors, services_webhooks
from authorization.forms import WebhookForm
from authorization.views import _membership_or_404
from portal.errors import DomainError


def _render(request, membership, hook, form, *, secret=None, status=200):
    return render(
        request,
        "authorization/webhook_settings.html",
        {
            "hook": hook,
            "form": form,
            "secret": secret,
            "deliveries": selectors.webhook_delivery_list(membership=membership),
        },
        status=status,
    )


@login_required
def webhook_settings(request):
    membership = _membership_or_404(request)
    hook = services_webhooks.webhook_get(membership=membership)
    initial = {"url": hook.url, "is_active": hook.is_active} if hook else {"is_active": True}
    form = WebhookForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            try:
                hook, secret = services_webhooks.webhook_configure(
                    membership=membership,
                    url=form.cleaned_data["url"],
                    is_active=form.cleaned_data["is_active"],
                    actor=request.user,
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                if secret is not None:  # the first secret: shown on this response only
                    return _render(
                        request, membership, hook, WebhookForm(initial=form.cleaned_data), secret=secret
                    )
                messages.success(request, _("回调设置已保存。"))
                return redirect("authorization:webhook-settings")
        return _render(request, membership, hook, form, status=400)
    return _render(request, membership, hook, form)


@login_required
@require_POST
def webhook_secret_rotate(request):
    membership = _membership_or_404(request)
    hook, secret = services_webhooks.webhook_secret_rotate(membership=membership, actor=request.user)
    form = WebhookForm(initial={"url": hook.url, "is_active": hook.is_active})
    return _render(request, membership, hook, form, secret=secret)


@login_required
@require_POST
def webhook_test(request):
    membership = _membership_or_404(request)
    services_webhooks.webhook_send_test(membership=membership, actor=request.user)
    messages.success(request, _("测试事件已加入发送队列。结果见下方发送记录。"))
    return redirect("authorization:webhook-settings")
