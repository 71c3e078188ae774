"""Dashboard cards and navigation of Billing II (developers only), demo data."""

import pytest
from django.urls import reverse

from billing.tests.factories_metering import AppFactory
from portal.tests.factories import main_member

pytestmark = pytest.mark.django_db


def test_fee_3_1_a_shop_with_an_app_is_a_developer_and_sees_apps_and_bills(client):
    member = main_member(kind="shop")
    client.force_login(member.user)
    html = client.get(reverse("dashboard")).content.decode()
    assert reverse("billing:apps") not in html
    AppFactory(organization=member.organization)
    html = client.get(reverse("dashboard")).content.decode()
    assert reverse("billing:apps") in html and reverse("billing:bills") in html
    assert 'data-role="developer"' in html


def test_discount_policy_is_in_everyones_navigation(client):
    member = main_member(kind="agency")
    client.force_login(member.user)
    html = client.get(reverse("dashboard")).content.decode()
    assert reverse("billing:discount-policy") in html and reverse("billing:usage") not in html
