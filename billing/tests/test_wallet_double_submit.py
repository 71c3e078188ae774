"""Double submits with real threads on PostgreSQL: the same form posted twice at once (a
double click, a browser re-sending the POST) or an API client retrying with its
Idempotency-Key creates one top-up order or one invoice request, and both answers name it."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import Invoice, TopUpOrder
from billing.payments.sandbox import SandboxProvider, event_body
from billing.services.topup import top_up_create
from billing.services.wallet import wallet_charge_for_month
from billing.tests.test_wallet_concurrency import run_concurrently
from portal import clock

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
USCC = "91350100M000100Y43"


def _paid_charges(org_id, fen):
    order = top_up_create(organization_id=org_id, amount_fen=fen)
    SandboxProvider().deliver(body=event_body(order=order, status="paid"), host="testserver", now=clock.now())
    wallet_charge_for_month(organization_id=org_id, year=2024, month=5, amount_fen=fen)


def _token(html: str) -> str:
    match = re.search(r'name="request_token" value="([0-9a-f]{32})"', html)
    assert match, "the form carries a one-time request token"
    return match.group(1)


def _post_twice_at_once(user, url, data) -> list:
    def post(i):
        client = Client()
        client.force_login(user)
        return client.post(url, data)

    return run_concurrently(2, post)


def test_fee_4_3_invoice_form_submitted_twice_at_once_requests_one_invoice(owner):
    # Invoiceable ¥100: room for two ¥30 requests, so only the token tells them apart.
    _paid_charges(owner.organization_id, 10_000)
    client = Client()
    client.force_login(owner.user)
    token = _token(client.get(reverse("billing:invoices")).content.decode())
    form = {
        "amount_yuan": "30",
        "title": "星河软件",
        "taxpayer_id": USCC,
        "kind": "general",
        "email": "a@b.cn",
        "request_token": token,
    }
    responses = _post_twice_at_once(owner.user, reverse("billing:invoices"), form)

    invoice = Invoice.objects.get()
    assert invoice.amount_fen == 3_000
    target = reverse("billing:invoice", args=[invoice.pk])
    assert [(r.status_code, r.url) for r in responses] == [(302, target), (302, target)]
    # A new form (a new token) is a new request.
    resp = client.post(reverse("billing:invoices"), {**form, "request_token": "f" * 32})
    assert resp.status_code == 302 and Invoice.objects.count() == 2


def test_top_up_form_submitted_twice_at_once_makes_one_order(owner):
    client = Client()
    client.force_login(owner.user)
    token = _token(client.get(reverse("billing:top-up")).content.decode())
    form = {"preset": "50000", "request_token": token}
    responses = _post_twice_at_once(owner.user, reverse("billing:top-up"), form)

    order = TopUpOrder.objects.get()
    assert order.amount_fen == 50_000
    assert {r.status_code for r in responses} == {302}
    assert len({r.url for r in responses}) == 1 and order.out_trade_no in responses[0].url


def test_fee_4_3_invoice_api_retried_with_one_idempotency_key_requests_one_invoice(owner):
    _paid_charges(owner.organization_id, 10_000)
    body = {
        "amount_fen": 3_000,
        "title": "星河软件",
        "taxpayer_id": USCC,
        "invoice_type": "general",
        "email": "a@b.cn",
    }

    def post(i):
        client = Client()
        client.force_login(owner.user)
        return client.post(
            reverse("billing-api:invoices"),
            body,
            content_type="application/json",
            headers={"Idempotency-Key": "inv-1"},
        )

    responses = run_concurrently(3, post)

    invoice = Invoice.objects.get()
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert {r.json()["id"] for r in responses} == {invoice.pk}
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in responses) == ["", "true", "true"]
    # The same key with another body is refused, naming the header.
    client = Client()
    client.force_login(owner.user)
    resp = client.post(
        reverse("billing-api:invoices"),
        {**body, "amount_fen": 2_000},
        content_type="application/json",
        headers={"Idempotency-Key": "inv-1"},
    )
    assert resp.status_code == 409 and resp.json()["field"] == "Idempotency-Key"
    assert Invoice.objects.count() == 1
