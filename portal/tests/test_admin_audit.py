"""P-4: every staff action is audited. Each admin that lets staff add, change or delete writes
the AuditEntry trail (``AuditedModelAdmin``), third-party admins included (staff groups, beat
schedules, login lock-outs); the read-only ones offer no such action."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory

from portal.admin import AuditedModelAdmin
from portal.models import AuditEntry
from portal.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _editable_fields(model_admin, request) -> set[str]:
    """Fields the change form lets staff edit (an admin whose fields are all read-only acts
    only through its actions, which call audited services)."""
    readonly = set(model_admin.get_readonly_fields(request))
    return {f for f in model_admin.get_fields(request) if f not in readonly}


def _overrides(model_admin, name: str) -> bool:
    return getattr(type(model_admin), name) is not getattr(admin.ModelAdmin, name)


def _unaudited_writes(model_admin, request) -> list[str]:
    """The write paths of one admin that bypass the audit trail: none if it is an
    AuditedModelAdmin; otherwise saving a form must go through its own ``save_model`` (or its
    own add view), and deleting (one or many) through its own ``delete_model`` and
    ``delete_queryset``, which call the audited services (each tested where it is defined).
    List actions are the admin's own code and call audited services."""
    if isinstance(model_admin, AuditedModelAdmin):
        return []
    gaps = []
    adds = model_admin.has_add_permission(request) and not _overrides(model_admin, "add_view")
    an_object = model_admin.model()  # the change form of an object, not the list's actions
    changes = model_admin.has_change_permission(request, an_object) and _editable_fields(model_admin, request)
    saves = adds or changes
    if saves and not _overrides(model_admin, "save_model"):
        gaps.append("save")
    if model_admin.has_delete_permission(request):
        gaps += [name for name in ("delete_model", "delete_queryset") if not _overrides(model_admin, name)]
    return gaps


def test_p_4_every_admin_that_lets_staff_write_is_audited():
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    unaudited = {
        model._meta.label: gaps
        for model, model_admin in admin.site._registry.items()
        if (gaps := _unaudited_writes(model_admin, request))
    }
    assert not unaudited, f"admin write paths without the audit trail: {unaudited}"


def test_p_4_changing_a_staff_groups_permissions_is_audited(client):
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    group = Group.objects.create(name="auditors")
    client.force_login(admin_user)
    permission = Permission.objects.get(codename="view_auditentry")
    resp = client.post(
        f"/admin/auth/group/{group.pk}/change/", {"name": "auditors", "permissions": [permission.pk]}
    )
    assert resp.status_code == 302
    entry = AuditEntry.objects.get(action="admin.change", object_type="auth.group", object_id=str(group.pk))
    assert entry.actor == admin_user
