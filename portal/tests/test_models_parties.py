"""P-1..P-4: parties and their database-level rules."""

import pytest
from django.contrib.auth.models import Group
from django.db import DatabaseError, IntegrityError, connection, transaction

from portal.models import AuditEntry, Membership
from portal.services import audit_record
from portal.tests.factories import MembershipFactory, OrganizationFactory, UserFactory, main_member

pytestmark = pytest.mark.django_db


def test_p_2_second_main_account_is_refused_by_the_database():
    org = OrganizationFactory()
    MembershipFactory(organization=org, role=Membership.Role.MAIN)
    with pytest.raises(IntegrityError, match="portal_membership_one_main_per_org"):
        MembershipFactory(organization=org, role=Membership.Role.MAIN)


def test_p_2_many_sub_accounts_are_allowed_beside_one_main():
    org = main_member().organization
    MembershipFactory.create_batch(3, organization=org, role=Membership.Role.SUB)
    assert org.memberships.filter(role="sub").count() == 3


def test_p_2_user_joins_an_organization_once():
    m = main_member()
    with pytest.raises(IntegrityError, match="portal_membership_one_per_user_org"):
        MembershipFactory(user=m.user, organization=m.organization, role=Membership.Role.SUB)


def test_p_2_unknown_role_is_refused_by_the_database():
    with pytest.raises(IntegrityError, match="portal_membership_role_valid"):
        MembershipFactory(role="owner")


def test_p_2_unknown_organization_kind_is_refused_by_the_database():
    with pytest.raises(IntegrityError, match="portal_organization_kind_valid"):
        OrganizationFactory(kind="bank")


def test_p_4_staff_groups_exist_with_least_privilege():
    billing = Group.objects.get(name="billing-ops")
    grants = Group.objects.get(name="grant-ops")
    gifts = Group.objects.get(name="gift-reviewers")
    for group, own in ((billing, "billing"), (grants, "authorization"), (gifts, "gifts")):
        labels = set(group.permissions.values_list("content_type__app_label", flat=True))
        assert labels <= {own, "portal"}, f"{group.name} holds permissions outside its domain: {labels}"
        portal_perms = set(
            group.permissions.filter(content_type__app_label="portal").values_list("codename", flat=True)
        )
        assert all(p.startswith("view_") for p in portal_perms), (
            f"{group.name} may edit parties: {portal_perms}"
        )
        assert not group.permissions.filter(content_type__app_label="auth").exists()


def test_p_4_audit_trail_is_append_only_in_the_database():
    actor = UserFactory(is_staff=True)
    entry = audit_record(actor=actor, action="test.touch", obj=actor, details={"why": "test"})
    with (
        pytest.raises(DatabaseError, match="Cannot update or delete rows from portal_auditentry"),
        transaction.atomic(),
    ):
        AuditEntry.objects.filter(pk=entry.pk).update(action="rewritten")
    with (
        pytest.raises(DatabaseError, match="Cannot update or delete rows from portal_auditentry"),
        transaction.atomic(),
    ):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.touch"


def test_organization_name_search_uses_the_trigram_index():
    OrganizationFactory.create_batch(3)
    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute(
            "EXPLAIN SELECT id FROM portal_organization WHERE UPPER(name::text) LIKE UPPER(%s)", ["%Org 1%"]
        )
        plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("SET enable_seqscan = on")
    assert "portal_org_name_trgm" in plan or "portal_org_name_upper_trgm" in plan, plan


def test_p_4_staff_edits_in_admin_are_audited(client):
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    org = OrganizationFactory(name="旧名称")
    client.force_login(admin_user)
    resp = client.post(
        f"/admin/portal/organization/{org.pk}/change/",
        {
            "name": "新名称",
            "kind": "shop",
            "contact_email": "",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )
    assert resp.status_code == 302, resp.content[:500]
    entry = AuditEntry.objects.get(action="admin.change", object_id=str(org.pk))
    assert entry.actor == admin_user and entry.object_type == "portal.organization"


def test_p_2_two_main_accounts_added_in_one_admin_save_are_a_form_error_not_a_500(client):
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    org = OrganizationFactory()
    first, second = UserFactory(), UserFactory()
    client.force_login(admin_user)
    client.raise_request_exception = False
    resp = client.post(
        f"/admin/portal/organization/{org.pk}/change/",
        {
            "name": org.name,
            "kind": org.kind,
            "contact_email": "",
            "memberships-TOTAL_FORMS": "2",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-user": first.pk,
            "memberships-0-role": "main",
            "memberships-1-user": second.pk,
            "memberships-1-role": "main",
        },
    )
    assert resp.status_code == 200, resp.status_code
    assert "P-2" in resp.content.decode()
    assert not org.memberships.exists()


def test_p_2_staff_hand_the_main_account_over_in_one_admin_save(client):
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    org = OrganizationFactory()
    old_main = MembershipFactory(organization=org, role="main")
    new_main = MembershipFactory(organization=org, role="sub")
    client.force_login(admin_user)
    form = {
        "name": org.name,
        "kind": org.kind,
        "contact_email": "",
        "memberships-TOTAL_FORMS": "2",
        "memberships-INITIAL_FORMS": "2",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    # the promotion comes first in the form: the save must still demote before it promotes
    for i, (m, role) in enumerate([(new_main, "main"), (old_main, "sub")]):
        form.update(
            {
                f"memberships-{i}-id": m.pk,
                f"memberships-{i}-organization": org.pk,
                f"memberships-{i}-user": m.user_id,
                f"memberships-{i}-role": role,
            }
        )
    resp = client.post(f"/admin/portal/organization/{org.pk}/change/", form)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    roles = dict(org.memberships.values_list("pk", "role"))
    assert roles == {new_main.pk: "main", old_main.pk: "sub"}
