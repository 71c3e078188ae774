"""API keys: main accounts create and revoke their organization's keys; nobody else can."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from portal.errors import DomainError
from portal.models import ApiKey, AuditEntry
from portal.services import api_key_create
from portal.tests.factories import main_member, sub_member

pytestmark = pytest.mark.django_db


def test_main_account_creates_a_key_shown_once(client):
    m = main_member(kind="service_provider")
    client.force_login(m.user)
    resp = client.post(reverse("api-key-create"), {"name": "erp"})
    raw = resp.context["raw_key"]
    key = ApiKey.objects.get(organization=m.organization)
    assert raw.startswith(key.prefix + ".") and key.key_hash == ApiKey.hash(raw) and raw not in key.key_hash
    assert raw not in client.get(reverse("dashboard")).content.decode()


def test_sub_account_cannot_create_keys(client):
    m = main_member()
    sub = sub_member(m.organization)
    client.force_login(sub.user)
    client.post(reverse("api-key-create"), {"name": "erp"})
    assert not ApiKey.objects.exists()


def test_revoked_key_no_longer_authenticates_and_revocation_is_audited(client):
    m = main_member()
    key, raw = api_key_create(membership=m, name="ci", actor=m.user)
    client.force_login(m.user)
    client.post(reverse("api-key-revoke", args=[key.pk]))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.get("/api/v1/portal/me").status_code == 401
    assert AuditEntry.objects.filter(action="api_key.revoke", object_id=str(key.pk), actor=m.user).exists()


def test_another_organizations_key_is_not_found(client):
    mine = main_member()
    other = main_member()
    key, _ = api_key_create(membership=other, name="theirs", actor=other.user)
    client.force_login(mine.user)
    resp = client.post(reverse("api-key-revoke", args=[key.pk]))
    assert resp.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


@pytest.mark.parametrize("name", ["x" * 101, "erp\x00"])
def test_api_key_name_too_long_or_nul_is_a_400_not_a_500(client, name):
    m = main_member()
    client.force_login(m.user)
    resp = client.post(reverse("api-key-create"), {"name": name})
    assert resp.status_code == 400 and "API-KEY-NAME" in resp.content.decode()
    assert not ApiKey.objects.exists()


def test_api_key_name_service_refuses_what_the_column_cannot_hold():
    m = main_member()
    with pytest.raises(DomainError) as exc:
        api_key_create(membership=m, name="x" * 101, actor=m.user)
    assert exc.value.code == "API-KEY-NAME" and exc.value.field == "name"
    assert not ApiKey.objects.exists()
