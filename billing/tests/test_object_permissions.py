"""Object permissions of the billing URLs: another organization's order, invoice, app or bill is
404 with no side effect, and no list answers another organization's rows whatever the query
says. Cases already proven elsewhere (pages and detail APIs of another tenant, the sub-account's
refusals, Idempotency-Key per organization, FEE-4.1 money-out walk) are not repeated here."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from billing.models import ClosureRequest, LedgerEntry, TopUpOrder
from billing.payments.sandbox import SandboxProvider, event_body
from billing.services.deposit import deposit_pay_in
from billing.services.invoice import invoice_request
from billing.services.topup import top_up_create
from billing.services.wallet import wallet_charge_for_month
from billing.tests.factories_metering import AppFactory
from portal import clock

pytestmark = pytest.mark.django_db
USCC = "91350100M000100Y43"


@pytest.fixture
def a_rows(owner):
    """Organization A with a row in every list: ledger, order, invoice, deposit, closure, app."""
    org_id = owner.organization_id
    paid = top_up_create(organization_id=org_id, amount_fen=50_000)
    SandboxProvider().deliver(body=event_body(order=paid, status="paid"), host="testserver", now=clock.now())
    wallet_charge_for_month(organization_id=org_id, year=2024, month=1, amount_fen=10_000)
    deposit_pay_in(organization_id=org_id, amount_fen=10_000, actor=None)
    invoice_request(
        organization_id=org_id, amount_fen=100, title="A", taxpayer_id=USCC, kind="general", email="a@b.cn"
    )
    ClosureRequest.objects.create(organization_id=org_id, state="pending")
    AppFactory(organization=owner.organization)
    return {"pending": top_up_create(organization_id=org_id, amount_fen=700)}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/billing/ledger",
        "/api/v1/billing/top-ups",
        "/api/v1/billing/invoices",
        "/api/v1/billing/closure-requests",
        "/api/v1/billing/apps",
    ],
)
def test_api_lists_never_answer_another_organizations_rows(owner, outsider, a_rows, path):
    api = APIClient()
    api.force_login(outsider.user)
    org = owner.organization_id
    resp = api.get(path, {"organization": org, "organization_id": org, "org": org, "wallet": org})
    assert resp.status_code == 200
    assert resp.json()["results"] == []


def test_fee_6_3_deposit_api_ignores_an_organization_query_parameter(owner, outsider, a_rows):
    api = APIClient()
    api.force_login(outsider.user)
    body = api.get("/api/v1/billing/deposit", {"organization": owner.organization_id}).json()
    assert body["balance_fen"] == 0 and body["entries"] == []


def test_wallet_api_ignores_an_organization_query_parameter(owner, outsider, a_rows):
    api = APIClient()
    api.force_login(outsider.user)
    body = api.get("/api/v1/billing/wallet", {"organization": owner.organization_id}).json()
    assert body["organization_id"] == outsider.organization_id and body["balance_fen"] == 0


def test_fee_4_1_another_organization_cannot_pay_this_organizations_order_in_the_sandbox(
    client, owner, outsider, a_rows
):
    order = a_rows["pending"]
    entries = LedgerEntry.objects.count()
    client.force_login(outsider.user)
    url = reverse("billing:sandbox-cashier", args=[order.out_trade_no])
    for action in ("pay", "fail"):
        assert client.post(url, {"action": action}).status_code == 404
    assert TopUpOrder.objects.get(pk=order.pk).state == TopUpOrder.State.PENDING
    assert LedgerEntry.objects.count() == entries


def test_top_up_result_partial_of_another_organization_is_404(client, outsider, a_rows):
    client.force_login(outsider.user)
    url = reverse("billing:top-up-result", args=[a_rows["pending"].out_trade_no])
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 404


def test_fee_3_1_api_key_of_another_organization_cannot_rotate_this_organizations_app(owner, outsider):
    from portal.services import api_key_create

    app = AppFactory(organization=owner.organization)
    old = app.secret_hash
    _, raw = api_key_create(membership=outsider, name="k", actor=outsider.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.post(f"/api/v1/billing/apps/{app.pk}/rotate-secret").status_code == 404
    app.refresh_from_db()
    assert app.secret_hash == old
