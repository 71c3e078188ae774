"""API base: schema, Swagger UI offline, one error body, key auth, pagination."""

import pytest
import yaml
from django.urls import reverse
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from portal.errors import DomainError
from portal.selectors import organization_search
from portal.services import api_key_create
from portal.tests.factories import OrganizationFactory, UserFactory, main_member

pytestmark = pytest.mark.django_db


def test_schema_is_valid_openapi_3(client):
    resp = client.get(reverse("schema"))
    assert resp.status_code == 200
    spec = yaml.safe_load(resp.content)
    assert spec["openapi"].startswith("3.")
    validate(spec)


def test_swagger_ui_is_served_by_the_portal_itself(client):
    html = client.get(reverse("swagger-ui")).content.decode()
    assert "swagger-ui" in html.lower()
    assert "http://" not in html.replace("http://testserver", "") and "https://" not in html
    static = [part.split('"')[0] for part in html.split('src="')[1:]]
    assert static and all(s.startswith("/") for s in static)
    for src in static:
        assert client.get(src).status_code == 200


def test_unauthenticated_api_call_gets_the_error_body():
    resp = APIClient().get("/api/v1/portal/me")
    assert resp.status_code in (401, 403)
    assert set(resp.json()) == {"code", "message", "field"}
    assert resp.json()["code"] == "not_authenticated"


def test_unknown_api_url_gets_404_with_the_error_body(client):
    resp = client.get("/api/v1/portal/nowhere")
    assert resp.status_code == 404 and resp.json() == {
        "code": "not_found",
        "message": "Not found.",
        "field": None,
    }


def test_api_key_authenticates_as_the_organization():
    m = main_member()
    _, raw = api_key_create(membership=m, name="ci", actor=m.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    body = api.get("/api/v1/portal/me").json()
    assert body["active_membership"]["organization"]["id"] == m.organization_id

    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw[:-2]}xx")
    bad = api.get("/api/v1/portal/me")
    assert bad.status_code == 401 and bad.json()["code"] == "authentication_failed"


def test_organization_search_is_paginated_and_filtered():
    user = UserFactory()
    for i in range(60):
        OrganizationFactory(name=f"星光店铺{i}", kind="shop")
    OrganizationFactory(name="星光机构", kind="agency")
    api = APIClient()
    api.force_authenticate(user)
    page = api.get("/api/v1/portal/organizations", {"q": "星光", "kind": "shop"}).json()
    assert page["count"] == 60 and len(page["results"]) == 50 and page["next"]
    assert all(r["kind"] == "shop" for r in page["results"])


@pytest.mark.parametrize(
    ("params", "field"), [({"q": "星\x00光"}, "q"), ({"kind": "planet"}, "kind.0"), ({"q": "x" * 201}, "q")]
)
def test_organization_search_bad_params_are_400_with_the_field(params, field):
    api = APIClient()
    api.force_authenticate(UserFactory())
    resp = api.get("/api/v1/portal/organizations", params)
    assert resp.status_code == 400 and resp.json()["field"] == field


def test_organization_search_selector_refuses_nul_for_pages():
    with pytest.raises(DomainError) as exc:
        list(organization_search(query="a\x00b"))
    assert exc.value.field == "q"


def test_schema_documents_hand_paged_lists_as_pages(client):
    spec = yaml.safe_load(client.get(reverse("schema")).content)
    ok = spec["paths"]["/api/v1/gifts/gifts"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    name = ok["$ref"].rsplit("/", 1)[1]
    assert set(spec["components"]["schemas"][name]["properties"]) == {"count", "next", "previous", "results"}


def test_schema_generates_without_warnings(tmp_path):
    # check --deploy --fail-level WARNING (CI) fails on any drf-spectacular warning.
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").stat().st_size > 1000


def test_anonymous_api_calls_are_throttled_but_payment_callbacks_are_not(client, settings):
    from django.core.cache import cache

    cache.clear()
    codes = [client.get("/api/v1/billing/discount-policy").status_code for _ in range(61)]
    assert codes[:60] == [200] * 60 and codes[60] == 429
    # a provider's burst of callbacks is never throttled (bad signatures are refused as such)
    callbacks = [
        client.post("/api/v1/billing/webhooks/sandbox", b"{}", content_type="application/json").status_code
        for _ in range(61)
    ]
    assert 429 not in callbacks
