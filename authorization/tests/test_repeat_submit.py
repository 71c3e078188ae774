# ruff: noqa: RUF001
"""A renewal or revocation sent again after it was made (the button pressed twice, the browser
re-sending the POST, an API client retrying with its Idempotency-Key) shows the grant as renewed
or revoked instead of the refusal a second one meets (GRANT-4, GRANT-5, GRANT-6), and is recorded
once. A different request the rules refuse is still refused, naming the rule."""

import re

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from rest_framework.test import APIClient

from authorization.models import GrantEvent
from authorization.tests.conftest import days
from authorization.tests.factories import GrantFactory
from portal import clock
from portal.models import Notification
from portal.tests.factories import main_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def today():
    return clock.today()


def _token(client) -> str:
    page = client.get(reverse("authorization:creator-grants")).content.decode()
    match = re.search(r'name="request_token" value="([0-9a-f]{32})"', page)
    assert match, "the renew forms carry a one-time request token"
    return match.group(1)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _events(grant, operation) -> int:
    return GrantEvent.objects.filter(grant=grant, operation=operation).count()


def test_grant_5_early_renewal_sent_again_shows_it_renewed_and_renews_once(client, creator, today):
    grant = GrantFactory(creator=creator, end_date=today + days(5))
    main_member(grant.organization)  # GRANT-9: the renewal notice goes to the main account
    client.force_login(creator.user)
    form = {"end_date": today + days(30), "request_token": _token(client)}
    url = reverse("authorization:grant-early-renew", args=[grant.pk])
    first = client.post(url, form, follow=True)
    assert _messages(first) == ["操作成功。"]
    notices = Notification.objects.count()

    again = client.post(url, form, follow=True)

    assert again.redirect_chain == [(reverse("authorization:creator-grants"), 302)]
    assert _messages(again) == ["已提前续约，无需重复提交。"]
    grant.refresh_from_db()
    assert grant.end_date == today + days(30)
    assert _events(grant, "early_renew") == 1
    assert Notification.objects.count() == notices  # the organization is told once


def test_grant_5_another_early_renewal_to_the_same_end_is_still_refused(client, creator, today):
    grant = GrantFactory(creator=creator, end_date=today + days(5))
    client.force_login(creator.user)
    url = reverse("authorization:grant-early-renew", args=[grant.pk])
    client.post(url, {"end_date": today + days(30), "request_token": _token(client)})

    # A new page (a new token) asking for the same end date is a second renewal: refused.
    resp = client.post(url, {"end_date": today + days(30), "request_token": _token(client)}, follow=True)

    assert resp.redirect_chain == [(reverse("authorization:creator-grants"), 302)]
    assert [m for m in _messages(resp) if m.startswith("GRANT-5: 截止日期必须晚于当前截止日期")]
    assert _events(grant, "early_renew") == 1


def test_grant_5_early_renewal_sent_again_with_htmx_shows_the_renewed_row(client, creator, today):
    grant = GrantFactory(creator=creator, end_date=today + days(5))
    client.force_login(creator.user)
    form = {"end_date": today + days(30), "request_token": _token(client)}
    url = reverse("authorization:grant-early-renew", args=[grant.pk])
    client.post(url, form, HTTP_HX_REQUEST="true")

    row = client.post(url, form, HTTP_HX_REQUEST="true").content.decode()

    assert "已提前续约，无需重复提交。" in row and 'class="error"' not in row
    assert (today + days(30)).isoformat() in row
    assert _events(grant, "early_renew") == 1


def test_grant_6_renewal_sent_again_shows_it_renewed_and_renews_once(client, creator, today):
    grant = GrantFactory(creator=creator, start_date=today - days(9), end_date=today - days(1))
    client.force_login(creator.user)
    form = {"start_date": today, "end_date": today + days(3), "request_token": _token(client)}
    url = reverse("authorization:grant-renew", args=[grant.pk])
    client.post(url, form)

    again = client.post(url, form, follow=True)

    assert again.redirect_chain == [(reverse("authorization:creator-grants"), 302)]
    assert _messages(again)[-1] == "已续约，无需重复提交。"
    assert _events(grant, "renew") == 1
    # A renewal from a new page is refused: the grant is no longer expired (GRANT-6).
    resp = client.post(url, {**form, "request_token": "a" * 32}, follow=True)
    assert _messages(resp)[-1] == "GRANT-6: 只有已到期的授权可以续约。"
    assert _events(grant, "renew") == 1
    grant.refresh_from_db()
    assert (grant.start_date, grant.end_date) == (today, today + days(3))


def test_grant_5_early_renew_api_retried_with_its_idempotency_key_returns_the_grant(creator, today):
    grant = GrantFactory(creator=creator, end_date=today + days(5))
    api = APIClient()
    api.force_login(creator.user)
    url = f"/api/v1/authorization/creator/grants/{grant.pk}/early-renew"
    body = {"end_date": (today + days(30)).isoformat()}

    first = api.post(url, body, format="json", headers={"Idempotency-Key": "r-1"})
    again = api.post(url, body, format="json", headers={"Idempotency-Key": "r-1"})
    other = api.post(url, body, format="json", headers={"Idempotency-Key": "r-2"})

    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["end_date"] == (today + days(30)).isoformat()
    assert (other.status_code, other.json()["code"]) == (400, "GRANT-5")
    assert _events(grant, "early_renew") == 1


def test_one_grant_event_per_request_key():
    grant = GrantFactory()
    GrantEvent.objects.create(grant=grant, operation="renew", request_key="k-1")
    GrantEvent.objects.create(grant=GrantFactory(), operation="renew", request_key="k-1")  # another grant
    GrantEvent.objects.create(grant=grant, operation="renew", request_key=None)
    GrantEvent.objects.create(grant=grant, operation="renew", request_key=None)  # no key: no limit
    with pytest.raises(IntegrityError), transaction.atomic():
        GrantEvent.objects.create(grant=grant, operation="early_renew", request_key="k-1")


def test_grant_5_idempotency_key_reused_for_another_end_date_is_refused_not_reported_done(creator, today):
    # A key names one request: the same key asking for another end date was not carried out, so
    # it must not be answered "renewed" with the first request's grant.
    grant = GrantFactory(creator=creator, end_date=today + days(5))
    api = APIClient()
    api.force_login(creator.user)
    url = f"/api/v1/authorization/creator/grants/{grant.pk}/early-renew"
    api.post(
        url, {"end_date": (today + days(30)).isoformat()}, format="json", headers={"Idempotency-Key": "r-1"}
    )

    other = api.post(
        url, {"end_date": (today + days(60)).isoformat()}, format="json", headers={"Idempotency-Key": "r-1"}
    )

    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY-KEY-REUSED")
    assert "Idempotent-Replayed" not in other.headers
    grant.refresh_from_db()
    assert grant.end_date == today + days(30)
    assert _events(grant, "early_renew") == 1


def test_grant_6_idempotency_key_of_an_early_renewal_reused_for_a_renewal_is_refused(creator, today):
    # The key was spent on an early renewal of this grant (GRANT-5); a renewal with it is another
    # request: refused with 409, not a 500 from the one-event-per-key constraint.
    grant = GrantFactory(creator=creator, start_date=today - days(9), end_date=today - days(1))
    GrantEvent.objects.create(grant=grant, operation="early_renew", request_key="r-1")
    api = APIClient()
    api.force_login(creator.user)
    url = f"/api/v1/authorization/creator/grants/{grant.pk}/renew"
    body = {"start_date": today.isoformat(), "end_date": (today + days(3)).isoformat()}

    resp = api.post(url, body, format="json", headers={"Idempotency-Key": "r-1"})

    assert (resp.status_code, resp.json()["code"]) == (409, "IDEMPOTENCY-KEY-REUSED")
    assert resp.json()["field"] == "request_key"
    grant.refresh_from_db()
    assert grant.end_date == today - days(1)


def test_grant_6_page_sent_again_with_other_dates_says_the_form_was_used(client, creator, today):
    grant = GrantFactory(creator=creator, start_date=today - days(9), end_date=today - days(1))
    client.force_login(creator.user)
    form = {"start_date": today, "end_date": today + days(3), "request_token": _token(client)}
    url = reverse("authorization:grant-renew", args=[grant.pk])
    client.post(url, form)

    # Back to the old page, another end date typed, the same form sent: not "already renewed".
    resp = client.post(url, {**form, "end_date": today + days(9)}, follow=True)

    assert (
        _messages(resp)[-1]
        == "IDEMPOTENCY-KEY-REUSED: 该请求已用于此授权的另一次操作，请刷新页面后重新提交。"
    )
    grant.refresh_from_db()
    assert grant.end_date == today + days(3)


def _revoke_token(client, grant) -> str:
    page = client.get(reverse("authorization:creator-grants")).content.decode()
    url = re.escape(reverse("authorization:grant-revoke", args=[grant.pk]))
    match = re.search(rf'action="{url}".*?name="request_token" value="([0-9a-f]{{32}})"', page)
    assert match, "the revoke form carries its own one-time request token"
    return match.group(1)


def test_grant_4_revocation_sent_again_shows_it_revoked_and_revokes_once(client, creator, today):
    grant = GrantFactory(creator=creator, end_date=today + days(5))
    main_member(grant.organization)  # GRANT-9: the revocation notice goes to the main account
    client.force_login(creator.user)
    token = _revoke_token(client, grant)
    assert token != _token(client)  # not the early-renew form's token: each form spends its own
    url = reverse("authorization:grant-revoke", args=[grant.pk])
    client.post(url, {"request_token": token})
    notices = Notification.objects.count()

    again = client.post(url, {"request_token": token}, follow=True)

    assert again.redirect_chain == [(reverse("authorization:creator-grants"), 302)]
    assert _messages(again)[-1] == "已解除授权，无需重复提交。"
    assert _events(grant, "revoke") == 1
    assert Notification.objects.count() == notices  # the organization is told once
    # A revocation from a new page is refused, naming the rule.
    resp = client.post(url, {"request_token": "b" * 32}, follow=True)
    assert _messages(resp)[-1] == "GRANT-4: 该授权已被解除。"


def test_grant_4_revocation_sent_again_with_htmx_shows_the_revoked_row(client, creator, today):
    grant = GrantFactory(creator=creator, end_date=today + days(5))
    client.force_login(creator.user)
    form = {"request_token": _revoke_token(client, grant)}
    url = reverse("authorization:grant-revoke", args=[grant.pk])
    client.post(url, form, HTTP_HX_REQUEST="true")

    row = client.post(url, form, HTTP_HX_REQUEST="true").content.decode()

    assert "已解除授权，无需重复提交。" in row and 'class="error"' not in row
    assert _events(grant, "revoke") == 1


def test_grant_4_revoke_api_retried_with_its_idempotency_key_returns_the_grant(creator, today):
    grant = GrantFactory(creator=creator, end_date=today + days(5))
    api = APIClient()
    api.force_login(creator.user)
    url = f"/api/v1/authorization/creator/grants/{grant.pk}/revoke"

    first = api.post(url, {"reason": "x"}, format="json", headers={"Idempotency-Key": "v-1"})
    again = api.post(url, {"reason": "x"}, format="json", headers={"Idempotency-Key": "v-1"})
    other = api.post(url, {"reason": "x"}, format="json", headers={"Idempotency-Key": "v-2"})

    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert (other.status_code, other.json()["code"]) == (409, "GRANT-4")
    assert _events(grant, "revoke") == 1


def test_grant_5_an_idempotency_key_over_100_characters_is_refused_not_cut(creator, today):
    # Given two keys that share their first 100 characters
    grant = GrantFactory(creator=creator, end_date=today + days(5))
    api = APIClient()
    api.force_login(creator.user)
    url = f"/api/v1/authorization/creator/grants/{grant.pk}/early-renew"
    body = {"end_date": (today + days(30)).isoformat()}
    # When a client sends the longer one
    resp = api.post(url, body, format="json", headers={"Idempotency-Key": "k" * 100 + "-2"})
    # Then it is refused naming the header (cut, it could be answered with another request's
    # outcome), and nothing is renewed; a key of 100 characters is taken
    assert resp.status_code == 400
    assert (resp.json()["code"], resp.json()["field"]) == ("invalid", "Idempotency-Key")
    assert _events(grant, "early_renew") == 0
    assert api.post(url, body, format="json", headers={"Idempotency-Key": "k" * 100}).status_code == 200
    assert _events(grant, "early_renew") == 1
