# ruff: noqa: RUF001
"""A closure request sent again after it was made (the browser re-sending the POST, an API
client retrying with its Idempotency-Key) shows the request made instead of the refusal a second
one meets, and nothing is written twice. A new request the rules refuse is still refused, naming
the rule (FEE-6.3)."""

import re

import pytest
from django.urls import reverse

from billing.models import ClosureRequest, DepositEntry, LedgerEntry
from billing.services.wallet import wallet_charge_for_month

pytestmark = pytest.mark.django_db


def _token(client) -> str:
    page = client.get(reverse("billing:deposit")).content.decode()
    match = re.search(r'name="request_token" value="([0-9a-f]{32})"', page)
    assert match, "the closure form carries a one-time request token"
    return match.group(1)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _written() -> tuple[int, int, int]:
    return ClosureRequest.objects.count(), LedgerEntry.objects.count(), DepositEntry.objects.count()


def test_fee_6_3_closure_request_sent_again_shows_it_made_and_requests_once(client, owner):
    client.force_login(owner.user)
    form = {"reason": "停止经营", "request_token": _token(client)}
    first = client.post(reverse("billing:closure-request"), form, follow=True)
    assert _messages(first) == ["注销申请已提交。"]
    written = _written()

    again = client.post(reverse("billing:closure-request"), form, follow=True)

    assert again.redirect_chain == [(reverse("billing:deposit"), 302)]
    assert _messages(again) == ["注销申请已提交，无需重复提交。"]
    assert _written() == written == (1, 0, 0)
    assert ClosureRequest.objects.get().reason == "停止经营"


def test_fee_6_3_a_new_closure_request_is_still_refused_naming_the_rule(client, owner):
    client.force_login(owner.user)
    form = {"reason": "停止经营", "request_token": _token(client)}
    client.post(reverse("billing:closure-request"), form)

    # A request from a new page while the first is open is refused.
    resp = client.post(reverse("billing:closure-request"), {**form, "request_token": _token(client)})
    assert resp.status_code == 409 and resp.context["error"].display == "已有进行中的注销申请。"

    # In arrears, a new request is refused by FEE-6.3, while the first form sent again is
    # still told it was made (it was, before the arrears).
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=3, amount_fen=1)
    resp = client.post(reverse("billing:closure-request"), {**form, "request_token": _token(client)})
    assert resp.status_code == 409 and resp.context["error"].rule == "FEE-6.3"
    again = client.post(reverse("billing:closure-request"), form, follow=True)
    assert _messages(again) == ["注销申请已提交，无需重复提交。"]
    assert ClosureRequest.objects.count() == 1


def test_fee_6_3_closure_api_retried_with_its_idempotency_key_returns_the_request(client, owner):
    client.force_login(owner.user)
    url = reverse("billing-api:closure-requests")

    def post(key, reason="停止经营"):
        return client.post(
            url, {"reason": reason}, content_type="application/json", headers={"Idempotency-Key": key}
        )

    first, again = post("c-1"), post("c-1")

    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and first.json()["id"] == ClosureRequest.objects.get().pk
    # Another request is refused; the same key with another body names the header.
    assert post("c-2").status_code == 409
    reused = post("c-1", reason="另一个原因")
    assert (reused.status_code, reused.json()["field"]) == (409, "Idempotency-Key")
    assert ClosureRequest.objects.count() == 1
