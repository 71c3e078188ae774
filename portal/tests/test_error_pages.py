"""Refusals read as pages of the portal: a 403 or a stale form token gets the site's layout, a
message in the reader's language and a way back, never Django's bare English page; the API
gets the one error body."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse

from billing.models import TopUpOrder
from portal.tests.factories import OrganizationFactory, main_member, sub_member
from portal.views_errors import csrf_failure, permission_denied

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory(kind="service_provider")


def test_a_sub_account_refused_a_main_account_action_gets_the_portals_403_page(client, org):
    # Given a sub-account of an organization (the wallet is read-only to it)
    main_member(org)
    teammate = sub_member(org)
    client.force_login(teammate.user)
    # When it posts a top-up, which only the main account may make
    resp = client.post(
        reverse("billing:top-up"), {"preset": "10000"}, HTTP_REFERER="http://testserver/billing/wallet/"
    )
    # Then it gets the portal's page: the reason in Chinese, a way back, the site's navigation
    body = resp.content.decode()
    assert resp.status_code == 403
    assert "无权执行此操作" in body and "只有主账号可以执行此操作。" in body
    assert 'href="http://testserver/billing/wallet/" data-back' in body
    assert "<nav" in body and "403 Forbidden" not in body
    assert not TopUpOrder.objects.exists()


def test_a_bare_permission_denied_says_who_to_ask(org):
    # Given a page refusal without a message of its own
    request = RequestFactory().get("/billing/wallet/")
    request.user = main_member(org).user
    request.active_membership = None
    # When the 403 handler answers it
    resp = permission_denied(request, PermissionDenied())
    # Then the page says the account lacks the permission and whom to ask
    body = resp.content.decode()
    assert resp.status_code == 403 and "请联系组织的主账号" in body


def test_an_api_refusal_gets_the_one_error_body():
    resp = permission_denied(RequestFactory().get("/api/v1/billing/wallet"), PermissionDenied())
    assert resp.status_code == 403
    assert json.loads(resp.content) == {
        "code": "permission_denied",
        "message": "Permission denied.",
        "field": None,
    }
    resp = csrf_failure(RequestFactory().post("/api/v1/billing/top-ups"), reason="CSRF cookie not set.")
    assert resp.status_code == 403 and json.loads(resp.content)["code"] == "csrf_failed"


def test_a_form_posted_with_a_stale_token_is_refused_with_a_page_that_says_so(org):
    # Given a main account whose page's form token is stale (signed out and in elsewhere)
    owner = main_member(org)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)
    # When the form is posted without a valid token
    resp = client.post(reverse("billing:top-up"), {"preset": "10000", "csrfmiddlewaretoken": "stale"})
    # Then nothing is created and the page explains what happened and how to go on
    body = resp.content.decode()
    assert resp.status_code == 403
    assert "页面已过期" in body and "请返回并刷新页面后重试" in body and "data-back" in body
    assert "CSRF verification failed" not in body
    assert not TopUpOrder.objects.exists()
