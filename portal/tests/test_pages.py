"""Sign in/out, password change, language switch, dashboard roles, organization switch."""

import pytest
from django.urls import reverse

from portal.models import Membership
from portal.tests.factories import (
    CreatorFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    main_member,
)

pytestmark = pytest.mark.django_db
PW = "pw-for-tests-1"


def test_sign_in_and_out(client):
    user = UserFactory(username="alice")
    resp = client.post(reverse("login"), {"username": "alice", "password": PW})
    assert resp.status_code == 302 and resp.url == reverse("dashboard")
    assert client.get(reverse("dashboard")).status_code == 200
    client.post(reverse("logout"))
    resp = client.get(reverse("dashboard"))
    assert resp.status_code == 302 and reverse("login") in resp.url
    assert user.is_authenticated


def test_wrong_password_is_refused_and_repeated_failures_lock_the_login(client, settings):
    UserFactory(username="bob")
    resp = client.post(reverse("login"), {"username": "bob", "password": "nope"})
    assert resp.status_code == 200 and "用户名或密码不正确" in resp.content.decode()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        resp = client.post(reverse("login"), {"username": "bob", "password": "nope"})
    assert resp.status_code == 429
    # Even the right password is refused while locked out.
    resp = client.post(reverse("login"), {"username": "bob", "password": PW})
    assert resp.status_code == 429


def test_password_change_needs_the_old_password(client):
    user = UserFactory()
    client.force_login(user)
    url = reverse("password_change")
    bad = client.post(
        url, {"old_password": "wrong", "new_password1": "N3w-pass-phrase", "new_password2": "N3w-pass-phrase"}
    )
    assert bad.status_code == 200
    ok = client.post(
        url, {"old_password": PW, "new_password1": "N3w-pass-phrase", "new_password2": "N3w-pass-phrase"}
    )
    assert ok.status_code == 302
    user.refresh_from_db()
    assert user.check_password("N3w-pass-phrase")


def test_every_form_carries_a_csrf_token(client):
    client.force_login(main_member().user)
    html = client.get(reverse("dashboard")).content.decode()
    assert html.count("<form") == html.count('name="csrfmiddlewaretoken"')


def test_language_switch_between_chinese_and_english(client):
    client.force_login(UserFactory())
    zh = client.get(reverse("dashboard")).content.decode()
    assert "工作台" in zh and 'lang="zh-hans"' in zh
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    en = client.get(reverse("dashboard")).content.decode()
    assert "Dashboard" in en and 'lang="en"' in en


@pytest.mark.parametrize(
    ("kind", "role", "creator", "expected"),
    [
        ("service_provider", "main", False, {"developer"}),
        ("shop", "main", False, {"shop_main"}),
        ("shop", "sub", False, {"shop_sub"}),
        ("agency", "sub", False, {"agency"}),
        (None, None, True, {"creator"}),
    ],
)
def test_dashboard_shows_the_sections_of_the_users_role(client, kind, role, creator, expected):
    user = UserFactory()
    if kind:
        org = OrganizationFactory(kind=kind)
        if role == "sub":
            main_member(org)
        MembershipFactory(user=user, organization=org, role=role)
    if creator:
        CreatorFactory(user=user)
    client.force_login(user)
    html = client.get(reverse("dashboard")).content.decode()
    shown = {
        r for r in ("developer", "creator", "shop_main", "shop_sub", "agency") if f'data-role="{r}"' in html
    }
    assert shown == expected


def test_switching_to_an_organization_the_user_is_not_in_is_refused(client):
    mine = main_member()
    other = main_member()
    client.force_login(mine.user)
    client.post(reverse("switch-organization"), {"organization": other.organization_id})
    resp = client.get(reverse("dashboard"))
    assert resp.context["active_membership"].organization_id == mine.organization_id


def test_user_in_two_organizations_switches_between_them(client):
    first = main_member()
    second = MembershipFactory(
        user=first.user, role=Membership.Role.SUB, organization=main_member().organization
    )
    client.force_login(first.user)
    client.post(reverse("switch-organization"), {"organization": second.organization_id})
    resp = client.get(reverse("dashboard"))
    assert resp.context["active_membership"].pk == second.pk


def test_pages_send_a_content_security_policy_without_inline_scripts(client):
    client.force_login(UserFactory())
    resp = client.get(reverse("dashboard"))
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert "cdn" not in resp.content.decode().lower()


def test_zh_hans_is_the_default_even_for_an_english_browser(client):
    client.force_login(UserFactory())
    html = client.get(reverse("dashboard"), headers={"accept-language": "en-US,en;q=0.9"}).content.decode()
    assert 'lang="zh-hans"' in html and "工作台" in html


def test_swagger_ui_alone_may_use_inline_styles(client):
    client.force_login(UserFactory())
    docs = client.get(reverse("swagger-ui")).headers["Content-Security-Policy"]
    page = client.get(reverse("dashboard")).headers["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in docs
    assert "unsafe-inline" not in page
