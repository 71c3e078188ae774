"""Payment providers plug in by settings (PAYMENT_PROVIDERS): a provider registered there is
used for new top-ups, sends the browser to its own cashier, and its callbacks credit the
wallet through the same webhook and service as the sandbox's."""

import datetime as dt
import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from billing import errors
from billing.models import TopUpOrder
from billing.payments import PaymentProvider, WebhookEvent, check_payment_providers, get_provider
from billing.services.topup import top_up_create
from billing.tests.factories_wallet import TopUpOrderFactory, ledger_sum
from portal.errors import NotFound

pytestmark = pytest.mark.django_db

FAKE_PATH = "billing.tests.test_wallet_providers.FakePayProvider"
CASHIER = "https://cashier.fakepay.test/pay"


class FakePayProvider(PaymentProvider):
    """A provider with an external cashier and a shared-token callback."""

    def checkout_url(self, *, order) -> str:
        return f"{CASHIER}?trade={order.out_trade_no}"

    def verify_webhook(self, *, headers, body: bytes, now: dt.datetime) -> WebhookEvent:
        if headers.get("X-Fakepay-Token") != "let-me-in":
            raise errors.BillingError(errors.WEBHOOK_SIGNATURE, "Bad token.", status=401)
        data = json.loads(body)
        return WebhookEvent(
            event_id=data["id"],
            out_trade_no=data["trade"],
            status="paid",
            amount_fen=data["fen"],
            currency="CNY",
        )


class NotAProvider:
    pass


@pytest.fixture
def fakepay(settings):
    settings.PAYMENT_PROVIDERS = {**settings.PAYMENT_PROVIDERS, "fakepay": FAKE_PATH}
    settings.PAYMENT_PROVIDER = "fakepay"


def callback(client, order, token="let-me-in"):
    body = json.dumps(
        {"id": f"fp_{order.out_trade_no}", "trade": order.out_trade_no, "fen": order.amount_fen}
    )
    return client.post(
        reverse("billing-api:payment-webhook", args=["fakepay"]),
        body,
        content_type="application/json",
        headers={"X-Fakepay-Token": token},
    )


def test_a_provider_registered_in_settings_takes_new_top_ups_to_its_own_cashier(client, owner, fakepay):
    client.force_login(owner.user)
    resp = client.post(reverse("billing:top-up"), {"preset": "custom", "custom_yuan": "100"})
    order = TopUpOrder.objects.get()
    assert order.provider == "fakepay"
    assert resp.status_code == 302 and resp.url == f"{CASHIER}?trade={order.out_trade_no}"


def test_continue_paying_links_to_the_orders_provider_not_the_sandbox(client, owner, fakepay):
    order = top_up_create(organization_id=owner.organization_id, amount_fen=500)
    client.force_login(owner.user)
    url = reverse("billing:top-up-result", args=[order.out_trade_no])
    sandbox_cashier = reverse("billing:sandbox-cashier", args=[order.out_trade_no])
    for html in (
        client.get(url).content.decode(),
        client.get(url, headers={"HX-Request": "true"}).content.decode(),
    ):
        assert f'href="{CASHIER}?trade={order.out_trade_no}"' in html
        assert sandbox_cashier not in html
    # the sandbox cashier refuses an order of another provider
    assert client.get(sandbox_cashier).status_code == 404


def test_the_providers_callback_credits_once_and_the_pay_link_goes_away(client, owner, fakepay):
    order = top_up_create(organization_id=owner.organization_id, amount_fen=500)
    assert callback(client, order, token="wrong").status_code == 401
    assert ledger_sum(owner.organization_id) == 0
    assert callback(client, order).json() == {"outcome": "credited", "credited": True}
    assert callback(client, order).status_code == 409  # the same event again: a replay
    assert ledger_sum(owner.organization_id) == 500
    client.force_login(owner.user)
    html = client.get(reverse("billing:top-up-result", args=[order.out_trade_no])).content.decode()
    assert 'data-state="paid"' in html and 'data-testid="pay-url"' not in html


def test_api_pay_url_is_the_providers_cashier(client, owner, fakepay):
    client.force_login(owner.user)
    body = client.post(reverse("billing-api:top-ups"), {"amount_fen": 1_000}, content_type="application/json")
    assert body.status_code == 201
    assert body.json()["provider"] == "fakepay"
    assert body.json()["pay_url"] == f"{CASHIER}?trade={body.json()['out_trade_no']}"


def test_sandbox_orders_still_link_to_the_sandbox_cashier(client, owner, fakepay):
    order = TopUpOrderFactory(organization=owner.organization, provider="sandbox")
    client.force_login(owner.user)
    html = client.get(reverse("billing:top-up-result", args=[order.out_trade_no])).content.decode()
    assert f'href="{reverse("billing:sandbox-cashier", args=[order.out_trade_no])}"' in html


def test_an_order_whose_provider_was_removed_shows_no_pay_link_and_no_error(client, owner, settings):
    order = TopUpOrderFactory(organization=owner.organization, provider="retired")
    client.force_login(owner.user)
    resp = client.get(reverse("billing:top-up-result", args=[order.out_trade_no]))
    assert resp.status_code == 200 and 'data-testid="pay-url"' not in resp.content.decode()
    api = client.get(reverse("billing-api:top-up", args=[order.out_trade_no]))
    assert api.status_code == 200 and api.json()["pay_url"] is None


def test_unknown_provider_is_404_and_a_bad_path_is_a_configuration_error(client, settings):
    resp = client.post(
        reverse("billing-api:payment-webhook", args=["nosuch"]), "{}", content_type="application/json"
    )
    assert resp.status_code == 404
    with pytest.raises(NotFound):
        get_provider("nosuch")
    settings.PAYMENT_PROVIDERS = {
        "sandbox": "billing.payments.sandbox.SandboxProvider",
        "broken": "billing.tests.nowhere.Provider",
        "plain": "billing.tests.test_wallet_providers.NotAProvider",
    }
    for name in ("broken", "plain"):
        with pytest.raises(ImproperlyConfigured):
            get_provider(name)
    settings.PAYMENT_PROVIDER = "alipay"
    ids = sorted(e.id for e in check_payment_providers())
    assert ids == ["billing.E101", "billing.E101", "billing.E102"]


def test_the_settings_key_is_the_providers_name(fakepay, settings):
    settings.PAYMENT_PROVIDERS = {**settings.PAYMENT_PROVIDERS, "fakepay2": FAKE_PATH}
    assert get_provider("fakepay2").name == "fakepay2"
    assert get_provider().name == "fakepay"
    assert check_payment_providers() == []


def test_fee_4_1_production_has_no_sandbox_cashier_unless_a_staging_site_turns_it_on():
    """The sandbox's "pay" button credits a wallet with no money moving: production settings
    leave it out, and the deploy check says what to configure instead."""
    import subprocess
    import sys

    from django.conf import settings as django_settings

    env = {
        "DJANGO_SETTINGS_MODULE": "portal.settings_production",
        "DJANGO_SECRET_KEY": "x" * 60,
        "BILLING_GATEWAY_TOKEN": "t",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        "PATH": "/usr/bin:/bin",
    }
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "from billing.payments import check_payment_providers as c; "
        "print(sorted(settings.PAYMENT_PROVIDERS), [e.id for e in c()])"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[] ['billing.E102']"
    staging = {**env, "PAYMENT_SANDBOX_ENABLED": "true", "SANDBOX_WEBHOOK_SECRET": "s"}
    run = subprocess.run([sys.executable, "-c", code], env=staging, capture_output=True, text=True)
    assert run.stdout.strip() == "['sandbox'] []", run.stderr
    # development and tests keep the sandbox
    assert "sandbox" in django_settings.PAYMENT_PROVIDERS


def test_fee_4_1_with_the_sandbox_off_its_cashier_and_callback_are_not_found(client, settings):
    from billing.services.topup import top_up_create
    from portal.tests.factories import main_member

    owner = main_member()
    order = top_up_create(organization_id=owner.organization_id, amount_fen=10_000)
    settings.PAYMENT_PROVIDERS = {k: v for k, v in settings.PAYMENT_PROVIDERS.items() if k != "sandbox"}
    client.force_login(owner.user)
    client.raise_request_exception = False
    assert (
        client.post(f"/billing/cashier/sandbox/{order.out_trade_no}/", {"action": "pay"}).status_code == 404
    )
    callback = client.post("/api/v1/billing/webhooks/sandbox", b"{}", content_type="application/json")
    assert callback.status_code == 404
    order.refresh_from_db()
    assert order.state == "pending"
