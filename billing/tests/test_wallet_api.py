"""Wallet API: balance, ledger (filters, query count), invoices (FEE-4.3), PDF, deposit."""

import pytest
from django.urls import reverse

from billing.models import Invoice
from billing.payments.sandbox import SandboxProvider, event_body
from billing.services.deposit import deposit_pay_in
from billing.services.invoice import invoice_issue, invoice_request
from billing.services.topup import top_up_create
from billing.services.wallet import wallet_charge_for_month
from billing.tests.test_wallet_pdf import pdf_text
from portal import clock
from portal.models import ApiKey
from portal.services import api_key_create

pytestmark = pytest.mark.django_db
USCC = "91350100M000100Y43"


def paid(org_id, fen):
    order = top_up_create(organization_id=org_id, amount_fen=fen)
    SandboxProvider().deliver(body=event_body(order=order, status="paid"), host="testserver", now=clock.now())


def test_wallet_api_shows_balance_arrears_and_invoiceable(client, owner, teammate, outsider):
    paid(owner.organization_id, 10_000)
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=1, amount_fen=15_000)
    for member in (owner, teammate):
        client.force_login(member.user)
        body = client.get(reverse("billing-api:wallet")).json()
        assert body == {
            "organization_id": owner.organization_id,
            "balance_fen": -5_000,
            "in_arrears": True,
            "invoiceable_fen": 10_000,
        }
    client.force_login(outsider.user)
    assert client.get(reverse("billing-api:wallet")).json()["balance_fen"] == 0


def test_wallet_api_with_an_api_key(client, owner):
    _key, raw = api_key_create(membership=owner, name="ci", actor=owner.user)
    paid(owner.organization_id, 700)
    resp = client.get(reverse("billing-api:wallet"), headers={"Authorization": f"Api-Key {raw}"})
    assert resp.status_code == 200 and resp.json()["balance_fen"] == 700
    assert ApiKey.objects.count() == 1
    assert client.get(reverse("billing-api:wallet")).status_code == 401


def test_ledger_api_filters_and_constant_queries(client, owner, django_assert_max_num_queries):
    for month in range(1, 8):
        wallet_charge_for_month(
            organization_id=owner.organization_id, year=2024, month=month, amount_fen=month
        )
    paid(owner.organization_id, 100)
    client.force_login(owner.user)
    with django_assert_max_num_queries(8):
        body = client.get(reverse("billing-api:ledger")).json()
    assert body["count"] == 8 and body["results"][0]["kind"] == "top_up_credit"
    assert body["results"][0]["top_up_order"].startswith("T")
    body = client.get(reverse("billing-api:ledger"), {"kind": "settlement_charge"}).json()
    assert body["count"] == 7
    today = clock.today().isoformat()
    assert (
        client.get(reverse("billing-api:ledger"), {"date_from": today, "date_to": today}).json()["count"] == 8
    )
    bad = client.get(reverse("billing-api:ledger"), {"kind": "refund"})
    assert bad.status_code == 400 and bad.json()["field"] == "kind"


def test_fee_4_3_invoice_api_request_limits_and_visibility(client, owner, teammate, outsider):
    paid(owner.organization_id, 10_000)
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=1, amount_fen=6_000)
    client.force_login(owner.user)
    url = reverse("billing-api:invoices")
    data = {
        "amount_fen": 6_000,
        "title": "星河软件",
        "taxpayer_id": USCC,
        "invoice_type": "special_vat",
        "email": "a@b.cn",
    }
    # Unspent top-up (4,000 of the 10,000) is never invoiceable.
    over = client.post(url, {**data, "amount_fen": 6_001}, content_type="application/json")
    assert (
        over.status_code == 400 and over.json()["code"] == "FEE-4.3" and over.json()["field"] == "amount_fen"
    )
    bad_id = client.post(url, {**data, "taxpayer_id": "91350100M000100Y4I"}, content_type="application/json")
    assert bad_id.status_code == 400 and bad_id.json()["field"] == "taxpayer_id"
    created = client.post(url, data, content_type="application/json")
    assert created.status_code == 201 and created.json()["state"] == "requested"
    again = client.post(url, {**data, "amount_fen": 1}, content_type="application/json")
    assert again.status_code == 400 and again.json()["code"] == "FEE-4.3"  # never twice for the same money
    client.force_login(teammate.user)
    assert client.post(url, data, content_type="application/json").status_code == 403
    assert client.get(url).json()["count"] == 1
    client.force_login(outsider.user)
    assert client.get(url).json()["count"] == 0
    assert client.get(reverse("billing-api:invoice", args=[created.json()["id"]])).status_code == 404


def test_invoice_pdf_api_owner_only_and_renders_cjk(client, owner, outsider, admin_user):
    paid(owner.organization_id, 10_000)
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=1, amount_fen=6_000)
    invoice = invoice_request(
        organization_id=owner.organization_id,
        amount_fen=100,
        title="星河软件服务商",
        taxpayer_id=USCC,
        kind="general",
        email="a@b.cn",
    )
    url = reverse("billing-api:invoice-pdf", args=[invoice.pk])
    client.force_login(owner.user)
    assert client.get(url).status_code == 404
    invoice_issue(invoice_id=invoice.pk, actor=admin_user)
    pdf = b"".join(client.get(url).streaming_content)
    assert pdf.startswith(b"%PDF") and b"/FontFile2" in pdf  # the CJK font travels with it
    assert "星河软件服务商" in pdf_text(pdf)
    client.force_login(outsider.user)
    assert client.get(url).status_code == 404
    assert Invoice.objects.get().state == "issued"


def test_deposit_api(client, owner, outsider):
    deposit_pay_in(organization_id=owner.organization_id, amount_fen=5_000, actor=None)
    client.force_login(owner.user)
    body = client.get(reverse("billing-api:deposit")).json()
    assert body["balance_fen"] == 5_000 and body["entries"][0]["kind"] == "paid_in"
    client.force_login(outsider.user)
    assert client.get(reverse("billing-api:deposit")).json() == {
        "balance_fen": 0,
        "count": 0,
        "next": None,
        "previous": None,
        "entries": [],
    }


def test_user_without_organization_gets_404_from_wallet_api(client):
    from portal.tests.factories import UserFactory

    client.force_login(UserFactory())
    assert client.get(reverse("billing-api:wallet")).status_code == 404
    assert client.get(reverse("billing-api:ledger")).status_code == 404


def test_ledger_top_up_order_is_documented_nullable_for_charges(client, owner):
    # A settlement charge has no top-up order; the schema must allow the null it returns.
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=1, amount_fen=100)
    client.force_login(owner.user)
    body = client.get(reverse("billing-api:ledger")).json()
    assert body["results"][0]["top_up_order"] is None
    schema = client.get("/api/schema/", {"format": "json"}).json()
    prop = schema["components"]["schemas"]["LedgerEntryOut"]["properties"]["top_up_order"]
    assert prop["type"] == "string" and prop["nullable"] is True
