"""Back office for grant-ops: search grants by creator or organization, see each history,
revoke with a reason (a service call, audited). Dates are read-only: a grant's window only
changes through the creator's operations, each with its event."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from authorization import selectors, services
from authorization.models import (
    CreatorDailySales,
    Grant,
    GrantEvent,
    LiveRoom,
    LiveRoomRequest,
    LiveRoomSales,
    OrganizationWebhook,
    WebhookDelivery,
)
from portal.admin import AuditedModelAdmin
from portal.admin_scale import LargeTableAdmin
from portal.errors import DomainError


class _ReadOnly:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class GrantEventInline(_ReadOnly, admin.TabularInline):
    model = GrantEvent
    extra = 0
    can_delete = False
    fields = (
        "at",
        "operation",
        "actor",
        "old_start_date",
        "old_end_date",
        "new_start_date",
        "new_end_date",
        "reason",
    )
    readonly_fields = fields
    ordering = ("at", "id")


class RevokeReasonForm(forms.Form):
    reason = forms.CharField(label=_("解除原因"), max_length=300, widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(Grant)
class GrantAdmin(LargeTableAdmin):
    list_display = (
        "id",
        "creator",
        "organization",
        "scope",
        "live_room",
        "start_date",
        "end_date",
        "state",
        "revoked_at",
    )
    list_filter = ("scope", "is_current")
    search_fields = ("creator__nickname__icontains", "creator__douyin_id", "organization__name__icontains")
    search_help_text = _("达人昵称, 抖音号 (完整), 或组织名称")
    list_select_related = ("creator", "organization", "live_room")
    inlines = [GrantEventInline]
    actions = ["revoke_with_reason"]
    readonly_fields = [f.name for f in Grant._meta.fields]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("状态"))
    def state(self, obj):
        return selectors.state_of(obj)

    def save_model(self, request, obj, form, change):  # every field is read-only: never a silent edit
        return None

    @admin.action(description=_("解除授权(填写原因)"), permissions=["change"])
    def revoke_with_reason(self, request, queryset):
        form = RevokeReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = 0
            for grant in queryset.order_by("pk"):
                try:
                    services.grant_revoke_by_staff(
                        grant=grant, actor=request.user, reason=form.cleaned_data["reason"]
                    )
                    done += 1
                except DomainError as exc:
                    self.message_user(request, f"#{grant.pk} {exc.display}", messages.WARNING)
            self.message_user(request, _("已解除 %(n)d 条授权。") % {"n": done}, messages.SUCCESS)
            return None
        return render(
            request,
            "authorization/admin_revoke.html",
            {
                **self.admin_site.each_context(request),
                "grants": queryset,
                "form": form,
                "action": "revoke_with_reason",
                "opts": self.model._meta,
                "title": _("解除授权"),
            },
        )


@admin.register(GrantEvent)
class GrantEventAdmin(_ReadOnly, LargeTableAdmin):
    list_display = ("at", "grant", "operation", "actor", "old_end_date", "new_end_date")
    list_filter = ("operation",)
    search_fields = ("grant__creator__nickname__icontains", "grant__organization__name__icontains")
    search_help_text = _("达人昵称或组织名称")
    list_select_related = ("grant", "actor")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("authorization.view_grantevent")


@admin.register(LiveRoomRequest)
class LiveRoomRequestAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ("id", "organization", "live_room", "creator", "status", "created_at", "expires_at")
    list_filter = ("status",)
    search_fields = ("organization__name", "creator__nickname", "live_room__title")
    list_select_related = ("organization", "live_room", "creator")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("authorization.view_liveroomrequest")


@admin.register(LiveRoom)
class LiveRoomAdmin(AuditedModelAdmin):
    """Staff add and correct live rooms (audited). A room's creator is fixed once it exists
    (the database refuses the change, and the access check caches room → creator)."""

    list_display = ("id", "title", "creator", "started_at")
    search_fields = ("title", "creator__nickname")
    list_select_related = ("creator",)
    autocomplete_fields = ("creator",)

    def get_readonly_fields(self, request, obj=None):
        return ("creator",) if obj is not None else ()


@admin.register(CreatorDailySales)
class CreatorDailySalesAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ("creator", "date", "gmv_fen", "orders", "viewers")
    search_fields = ("creator__nickname",)
    list_select_related = ("creator",)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("authorization.view_creatordailysales")


@admin.register(LiveRoomSales)
class LiveRoomSalesAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ("live_room", "hour_at", "gmv_fen", "orders", "viewers")
    list_select_related = ("live_room",)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("authorization.view_liveroomsales")


class OrganizationWebhookForm(forms.ModelForm):
    class Meta:
        model = OrganizationWebhook
        fields = ["organization", "url", "secret", "is_active"]

    def clean_url(self):
        """The same rules as the organization's own settings page (https, no internal address
        in production): deliveries to anything else are refused anyway."""
        from authorization.services_webhooks import webhook_url_validate

        try:
            return webhook_url_validate(self.cleaned_data.get("url", ""))
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.register(OrganizationWebhook)
class OrganizationWebhookAdmin(AuditedModelAdmin):
    """Where an organization receives signed 'access revoked/expired' calls; edits are audited."""

    form = OrganizationWebhookForm
    list_display = ("organization", "url", "is_active", "secret_rotated_at", "created_at")
    search_fields = ("organization__name", "url")
    autocomplete_fields = ("organization",)
    readonly_fields = ("secret_rotated_at",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnly, LargeTableAdmin):
    """What was sent to each organization's webhook and how it answered (read-only)."""

    list_display = ("created_at", "organization", "event", "status", "response_status", "attempts")
    list_filter = ("status", "event")
    search_fields = ("organization__name__icontains",)
    list_select_related = ("organization",)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("authorization.view_webhookdelivery")
