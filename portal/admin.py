from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from portal.admin_scale import LargeTableAdmin, RecentValuesListFilter
from portal.errors import DomainError
from portal.models import (
    ApiKey,
    AuditEntry,
    Creator,
    Membership,
    Notification,
    Organization,
    OutboundEmail,
    User,
)
from portal.services import audit_record, outbound_email_resend


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete a staff member makes in admin also lands in the
    append-only AuditEntry trail (P-4), beside Django's own LogEntry."""

    def log_addition(self, request, obj, message):
        audit_record(actor=request.user, action="admin.add", obj=obj, details={"message": str(message)})
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        audit_record(actor=request.user, action="admin.change", obj=obj, details={"message": str(message)})
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            audit_record(actor=request.user, action="admin.delete", obj=obj, details={"repr": str(obj)[:200]})
        return super().log_deletions(request, queryset)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For append-only records: staff read, nobody edits or deletes (the DB refuses anyway)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(AuditedModelAdmin, BaseUserAdmin):
    fieldsets = (*BaseUserAdmin.fieldsets, ("Portal", {"fields": ("display_name", "language")}))
    list_display = ("username", "display_name", "email", "is_staff", "is_active")


class MembershipFormSet(BaseInlineFormSet):
    def clean(self):
        """P-2 across the rows of one save: each row alone passes the model's checks, and the
        database's one-main constraint would only fail at the commit (a 500)."""
        super().clean()
        mains = [
            form
            for form in self.forms
            if form.cleaned_data.get("role") == Membership.Role.MAIN and not form.cleaned_data.get("DELETE")
        ]
        if len(mains) > 1:
            raise ValidationError(_("P-2: 一个组织只能有一个主账号。"), code="P-2")


class MembershipInlineForm(forms.ModelForm):
    ONE_MAIN = "portal_membership_one_main_per_org"

    def validate_constraints(self):
        """Every constraint but P-2's one main account, which the formset checks across its rows:
        a handover demotes one row and promotes another in one save, and row by row against the
        database the promotion would clash with the main account it replaces."""
        exclude = self._get_validation_exclusions()
        for constraint in self.instance._meta.constraints:
            if constraint.name == self.ONE_MAIN:
                continue
            try:
                constraint.validate(type(self.instance), self.instance, exclude=exclude)
            except ValidationError as exc:
                self._update_errors(exc)


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipInlineForm
    formset = MembershipFormSet
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(AuditedModelAdmin):
    list_display = ("id", "name", "kind", "created_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    inlines = [MembershipInline]
    show_full_result_count = False

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        # A handover in one save: the old main account steps down before the new one steps up
        # (the database allows one main account at every statement, P-2).
        memberships = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        for membership in sorted(memberships, key=lambda m: m.role == Membership.Role.MAIN):
            membership.save()
        formset.save_m2m()


@admin.register(Membership)
class MembershipAdmin(AuditedModelAdmin):
    list_display = ("user", "organization", "role")
    list_filter = ("role",)
    search_fields = ("user__username", "organization__name")
    autocomplete_fields = ("user", "organization")


@admin.register(Creator)
class CreatorAdmin(AuditedModelAdmin):
    list_display = ("nickname", "douyin_id", "user")
    search_fields = ("nickname", "douyin_id")
    autocomplete_fields = ("user",)


@admin.register(AuditEntry)
class AuditEntryAdmin(LargeTableAdmin, ReadOnlyAdmin):
    """Newest first by id (the trail is appended). A date filter rather than a drill-down,
    which would read every entry's time to list the years and months."""

    list_display = ("at", "actor", "action", "object_type", "object_id")
    list_filter = (
        ("action", RecentValuesListFilter),
        ("object_type", RecentValuesListFilter),
        ("at", admin.DateFieldListFilter),
    )
    search_fields = ("object_id", "actor__username")
    search_help_text = _("对象 ID 或操作人用户名 (完整)")
    list_select_related = ("actor",)  # nullable: Django's default select_related() skips it


@admin.register(Notification)
class NotificationAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ("created_at", "kind", "title", "user", "organization", "read_at")
    list_filter = (("kind", RecentValuesListFilter),)
    list_select_related = ("user", "organization")  # both nullable: not followed by default


@admin.register(OutboundEmail)
class OutboundEmailAdmin(LargeTableAdmin, ReadOnlyAdmin):
    """The outbox of notification emails (read-only): what was sent, what waits for a retry and
    why, what was given up. Staff who may change outbox emails resend a failed one (audited)."""

    list_display = (
        "created_at",
        "subject",
        "to",
        "language",
        "state",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
    )
    list_filter = ("state",)
    search_fields = ("recipients",)
    search_help_text = _("收件人邮箱 (完整)")
    actions = ["resend"]

    @admin.display(description=_("收件人"))
    def to(self, obj):
        return ", ".join(obj.recipients)

    def get_search_results(self, request, queryset, search_term):
        """An address among the recipients, as typed or in lower case (array overlap: the GIN
        index ``portal_outbound_email_to``)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(recipients__overlap=sorted({term, term.lower()})), False

    def has_resend_permission(self, request) -> bool:
        """P-4: resending sends mail in the portal's name: the change permission, not the view."""
        return request.user.has_perm("portal.change_outboundemail")

    @admin.action(description=_("重新发送所选失败邮件"), permissions=["resend"])
    def resend(self, request, queryset):
        if not self.has_resend_permission(request):
            raise PermissionDenied
        resent = 0
        for email in queryset.order_by("pk"):
            try:
                outbound_email_resend(email_id=email.pk, actor=request.user)
            except DomainError as exc:
                messages.error(request, exc.display)
            else:
                resent += 1
        if resent:
            messages.success(request, gettext("已重新发送 %(count)d 封邮件。") % {"count": resent})


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedModelAdmin):
    list_display = ("prefix", "name", "organization", "created_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "created_by", "created_at")
    search_fields = ("prefix", "organization__name")
    autocomplete_fields = ("organization",)  # not a <select> of every organization


def _audit_registered_admin(model) -> None:
    """Mix the audit trail into another app's admin (staff groups, beat schedules, login
    lock-outs): their edits are staff actions too (P-4)."""
    original = type(admin.site.get_model_admin(model))
    if issubclass(original, AuditedModelAdmin):
        return
    admin.site.unregister(model)
    audited = type(original.__name__, (AuditedModelAdmin, original), {"__module__": __name__})
    admin.site.register(model, audited)


def _audit_third_party_admins() -> None:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.contrib.auth.models import Group
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    for model in (
        Group,
        PeriodicTask,
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        SolarSchedule,
        AccessAttempt,
        AccessFailureLog,
        AccessLog,
    ):
        _audit_registered_admin(model)


_audit_third_party_admins()  # their apps come before portal in INSTALLED_APPS: registered already
