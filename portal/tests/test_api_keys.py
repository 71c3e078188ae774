"""API keys: main accounts create and revoke their organization's keys; nobody else can."""

import pytest
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from portal import api_auth as api_key_auth
from portal.api_auth import api_key_resolve
from portal.errors import DomainError
from portal.models import ApiKey, AuditEntry, Membership
from portal.services import api_key_create, api_key_revoke
from portal.tests.factories import MembershipFactory, main_member, sub_member

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


def test_me_with_a_key_shows_the_keys_organization_not_its_owners_others():
    mine = main_member()
    MembershipFactory(user=mine.user, role=Membership.Role.MAIN)  # the owner's other organization
    _, raw = api_key_create(membership=mine, name="erp", actor=mine.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    body = api.get("/api/v1/portal/me").json()
    assert [m["organization"]["id"] for m in body["memberships"]] == [mine.organization_id]
    api = APIClient()
    api.force_login(mine.user)
    assert len(api.get("/api/v1/portal/me").json()["memberships"]) == 2  # signed in, the person sees both


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


def _key_client(raw):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return api


def test_warm_key_resolves_without_a_query_and_still_checks_the_secret(django_assert_num_queries):
    m = main_member()
    key, raw = api_key_create(membership=m, name="svc", actor=m.user)
    header = f"Api-Key {raw}"
    with django_assert_num_queries(1):  # a miss: key, main membership, user, organization at once
        main, got = api_key_resolve(header)
    assert (main.pk, main.user.pk, got.pk) == (m.pk, m.user.pk, key.pk)
    assert main.organization.pk == got.organization.pk == m.organization.pk
    with django_assert_num_queries(0):  # warm: one cache read
        main, got = api_key_resolve(header)
    assert (main.user.pk, got.organization_id) == (m.user.pk, m.organization.pk)
    with django_assert_num_queries(0), pytest.raises(AuthenticationFailed):
        api_key_resolve(f"Api-Key {key.prefix}.not-the-secret")  # hash compared on every call


def test_revoked_key_is_refused_on_the_next_call_even_with_a_warm_cache(
    client, django_capture_on_commit_callbacks
):
    m = main_member()
    key, raw = api_key_create(membership=m, name="ci", actor=m.user)
    api = _key_client(raw)
    assert api.get("/api/v1/portal/me").status_code == 200
    assert cache.get(f"portal:apikey:{key.prefix}") is not None  # warm
    client.force_login(m.user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("api-key-revoke", args=[key.pk]))
    assert api.get("/api/v1/portal/me").status_code == 401
    assert api.get("/api/v1/authorization/access", {"creator": 1, "scope": "all_data"}).status_code == 401


def test_revocation_is_not_undone_by_a_fill_that_read_the_key_before_it(django_capture_on_commit_callbacks):
    m = main_member()
    key, raw = api_key_create(membership=m, name="ci", actor=m.user)
    stale = api_key_auth._load(key.prefix)  # a concurrent miss read the live row ...
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(membership=m, key_id=key.pk, actor=m.user)
    cache.add(f"portal:apikey:{key.prefix}", stale, 60)  # ... and stores it after the revocation
    with pytest.raises(AuthenticationFailed):
        api_key_resolve(f"Api-Key {raw}")


@pytest.mark.django_db(transaction=True)
def test_a_key_follows_a_change_of_main_account_on_the_next_call():
    """The key acts as the organization's main account: when it is handed to another member,
    the next call acts as the new one (the cached entry is dropped after the commit)."""
    m = main_member()
    successor = sub_member(m.organization)
    _, raw = api_key_create(membership=m, name="ci", actor=m.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    for _ in range(2):  # cached (and served from process memory) from here on
        assert api.get("/api/v1/portal/me").json()["username"] == m.user.username

    with transaction.atomic():
        Membership.objects.filter(pk=m.pk).update(role=Membership.Role.SUB)
        successor.role = Membership.Role.MAIN
        successor.save(update_fields=["role"])

    assert api.get("/api/v1/portal/me").json()["username"] == successor.user.username


@pytest.mark.django_db(transaction=True)
def test_a_deactivated_main_account_s_key_is_refused_on_the_next_call():
    m = main_member()
    _, raw = api_key_create(membership=m, name="ci", actor=m.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    for _ in range(2):
        assert api.get("/api/v1/portal/me").status_code == 200

    m.user.is_active = False
    m.user.save()

    assert api.get("/api/v1/portal/me").status_code == 401


def test_p_3_a_key_never_acts_as_its_owners_creator_profile():
    """One person may be a shop's main account and a creator: the shop's key is the shop's."""
    import datetime as dt

    from authorization.tests.factories import GrantFactory
    from portal import clock
    from portal.tests.factories import CreatorFactory, OrganizationFactory

    shop = main_member(kind="shop")
    creator = CreatorFactory(user=shop.user)
    today = clock.today()
    grant = GrantFactory(
        creator=creator,
        organization=OrganizationFactory(kind="agency"),
        start_date=today,
        end_date=today + dt.timedelta(days=30),
    )
    _, raw = api_key_create(membership=shop, name="erp", actor=shop.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.get("/api/v1/authorization/creator/grants").status_code == 404
    revoke = api.post(
        f"/api/v1/authorization/creator/grants/{grant.pk}/revoke", {"reason": "x"}, format="json"
    )
    assert revoke.status_code == 404
    grant.refresh_from_db()
    assert grant.revoked_at is None
    assert api.get(f"/api/v1/authorization/grants/{grant.pk}/events").status_code == 404  # history too
    me = api.get("/api/v1/portal/me").json()
    assert me["is_creator"] is False and "creator" not in me["roles"]
    person = APIClient()
    person.force_login(shop.user)  # signed in, the person is the creator
    assert person.get("/api/v1/authorization/creator/grants").status_code == 200


def test_a_key_reads_its_organizations_notices_not_its_owners_inbox():
    from portal.services import notification_send

    shop = main_member(kind="shop")
    other = MembershipFactory(user=shop.user, role=Membership.Role.MAIN)
    notification_send(kind="t", title="给店铺的通知", organization=shop.organization)
    notification_send(kind="t", title="给本人的通知", user=shop.user)
    notification_send(kind="t", title="另一组织的通知", organization=other.organization)
    _, raw = api_key_create(membership=shop, name="erp", actor=shop.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    titles = [n["title"] for n in api.get("/api/v1/portal/notifications").json()["results"]]
    assert titles == ["给店铺的通知"]


@pytest.mark.parametrize("how", ["revoked", "deleted"])
def test_a_key_revoked_or_deleted_in_admin_is_refused_on_the_next_call(
    client, how, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from portal.tests.factories import UserFactory

    shop = main_member()
    key, raw = api_key_create(membership=shop, name="erp", actor=shop.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.get("/api/v1/portal/me").status_code == 200  # the key is cached now
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with django_capture_on_commit_callbacks(execute=True):
        if how == "revoked":
            now = timezone.localtime()
            form = {
                "organization": shop.organization_id,
                "name": key.name,
                "revoked_at_0": now.strftime("%Y-%m-%d"),
                "revoked_at_1": now.strftime("%H:%M:%S"),
            }
            resp = client.post(f"/admin/portal/apikey/{key.pk}/change/", form)
        else:
            resp = client.post(f"/admin/portal/apikey/{key.pk}/delete/", {"post": "yes"})
    assert resp.status_code == 302
    assert api.get("/api/v1/portal/me").status_code == 401
