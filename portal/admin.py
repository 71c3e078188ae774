from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from portal.models import ApiKey, AuditEntry, Creator, Membership, Notification, Organization, User


class ReadOnlyAdmin(admin.ModelAdmin):
    """For append-only records: staff read, nobody edits or deletes (the DB refuses anyway)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (*BaseUserAdmin.fieldsets, ("Portal", {"fields": ("display_name",)}))
    list_display = ("username", "display_name", "email", "is_staff", "is_active")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "kind", "created_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    inlines = [MembershipInline]
    show_full_result_count = False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role")
    list_filter = ("role",)
    search_fields = ("user__username", "organization__name")
    autocomplete_fields = ("user", "organization")


@admin.register(Creator)
class CreatorAdmin(admin.ModelAdmin):
    list_display = ("nickname", "douyin_id", "user")
    search_fields = ("nickname", "douyin_id")
    autocomplete_fields = ("user",)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "actor__username", "action")
    date_hierarchy = "at"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "title", "user", "organization", "read_at")
    list_filter = ("kind",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "organization", "created_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "created_by", "created_at")
    search_fields = ("prefix", "organization__name")
