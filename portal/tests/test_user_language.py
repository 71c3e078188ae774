"""A signed-in user's language choice is stored (User.language): pages follow it on any browser
after sign-in, and notification emails are written in each recipient's language (ADR 0003)."""

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils.translation import gettext_noop

from portal.services import notification_send
from portal.tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

NOTICE = gettext_noop("你对 %(org)s 的数据授权将于 %(end)s 到期")
PARAMS = {"org": "Global Goods", "end": "2026-12-01"}
ZH = "你对 Global Goods 的数据授权将于 2026-12-01 到期"
EN = "Your data grant to Global Goods expires on 2026-12-01"


@pytest.fixture(autouse=True)
def _catalogues(settings):
    call_command("compile_catalogs", verbosity=0)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def dashboard(client) -> str:
    return client.get(reverse("dashboard")).content.decode()


def switch(browser, user, language: str) -> str:
    """Use the language switch signed in as ``user``; return the language stored for them."""
    browser.force_login(user)
    browser.post(reverse("set_language"), {"language": language, "next": "/"})
    user.refresh_from_db()
    return user.language


def test_the_switch_stores_a_signed_in_users_language_and_a_new_browser_follows_it(client):
    user = UserFactory()
    assert switch(client, user, "en") == "en"
    other_browser = Client()  # no language cookie
    other_browser.force_login(user)
    assert 'lang="en"' in dashboard(other_browser)
    assert switch(other_browser, user, "zh-hans") == "zh-hans"
    assert 'lang="zh-hans"' in dashboard(other_browser)


def test_a_browsers_choice_before_sign_in_becomes_the_users_language(client):
    user = UserFactory()
    client.post(reverse("set_language"), {"language": "en", "next": "/"})  # signed out: cookie only
    assert (
        client.post(reverse("login"), {"username": user.username, "password": "pw-for-tests-1"}).status_code
        == 302
    )
    user.refresh_from_db()
    assert user.language == "en" and 'lang="en"' in dashboard(client)


def test_the_stored_language_wins_over_another_browsers_cookie():
    user = UserFactory(language="en")
    browser = Client()
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    browser.force_login(user)
    assert 'lang="en"' in dashboard(browser)


def test_an_unknown_language_is_not_stored(client):
    assert switch(client, UserFactory(), "xx") == ""


def test_a_users_email_is_written_in_the_users_language(django_capture_on_commit_callbacks):
    user = UserFactory(language="en", email="en@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        notification_send(kind="t", title=NOTICE, params=PARAMS, user=user, email=True)
    assert [(m.to, m.subject) for m in mail.outbox] == [(["en@example.com"], EN)]


def test_an_organizations_email_goes_out_once_per_language(django_capture_on_commit_callbacks):
    org = OrganizationFactory(contact_email="office@example.com")
    MembershipFactory(
        organization=org, role="main", user=UserFactory(language="en", email="main@example.com")
    )
    MembershipFactory(organization=org, role="sub", user=UserFactory(language="", email="sub@example.com"))
    with django_capture_on_commit_callbacks(execute=True):
        notification_send(kind="t", title=NOTICE, params=PARAMS, organization=org, email=True)
    sent = sorted((m.subject, tuple(m.to)) for m in mail.outbox)
    assert sent == [(EN, ("main@example.com",)), (ZH, ("office@example.com", "sub@example.com"))]


def test_a_language_changed_elsewhere_applies_to_an_open_session_at_once(client):
    user = UserFactory()
    client.force_login(user)
    assert 'lang="zh-hans"' in dashboard(client)
    user.language = "en"  # e.g. staff in admin, or the user on another browser
    user.save(update_fields=["language"])
    assert 'lang="en"' in dashboard(client)


def test_an_api_call_without_a_session_loads_no_user_for_the_language(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/api/schema/", HTTP_ACCEPT="application/json").status_code in (200, 401, 403, 404)


def test_an_email_the_mail_server_refuses_is_retried_not_lost(
    django_capture_on_commit_callbacks, monkeypatch
):
    import datetime as dt
    from smtplib import SMTPServerDisconnected

    from portal import services
    from portal.models import OutboundEmail

    real, calls = services.send_mail, []

    def mail_server_down(*args, **kwargs):
        calls.append(args)
        raise SMTPServerDisconnected("connection unexpectedly closed")

    monkeypatch.setattr(services, "send_mail", mail_server_down)
    user = UserFactory(language="en", email="en@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        notification_send(kind="t", title=NOTICE, params=PARAMS, user=user, email=True, dedupe_key="once")
    assert len(calls) == 1 and mail.outbox == []
    retry = OutboundEmail.objects.get()
    assert (retry.state, retry.subject, retry.recipients) == ("pending", EN, ["en@example.com"])
    monkeypatch.setattr(services, "send_mail", real)  # the mail server is back: the sweeper sends it
    assert services.outbound_emails_send_due(now=retry.next_attempt_at + dt.timedelta(seconds=1))["sent"] == 1
    assert [(m.to, m.subject) for m in mail.outbox] == [(["en@example.com"], EN)]
