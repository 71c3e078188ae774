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


def test_p_4_every_admin_that_lets_staff_write_is_audited():
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedModelAdmin)
        and (
            model_admin.has_add_permission(request)
            or model_admin.has_delete_permission(request)
            or (model_admin.has_change_permission(request) and _editable_fields(model_admin, request))
        )
    ]
    assert not unaudited, f"editable admins without the audit trail: {unaudited}"


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
