"""GRANT-11 webhook settings of an organization: only its main account (a sub-account gets 403
(GRANT-9), anyone else 404) sets the URL (validated, https in production), rotates the signing
secret (shown once) and sends a test event; every delivery is recorded and signed with the
secret current at send time."""

import http.server
import json
import threading

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from authorization import services, services_webhooks, tasks, webhooks
from authorization.models import OrganizationWebhook, WebhookDelivery
from authorization.tests.conftest import days
from authorization.tests.factories import GrantFactory
from portal import clock
from portal.models import AuditEntry
from portal.tests.factories import CreatorFactory, main_member

pytestmark = pytest.mark.django_db
API = "/api/v1/authorization/org/webhook"
GOOD_URL = "https://hooks.example.com/grants"


def api_as(user):
    api = APIClient()
    api.force_login(user)
    return api


@pytest.fixture
def http_allowed(settings):
    """A developer's setting: plain http to a local receiver (production is https only)."""
    settings.AUTHORIZATION_WEBHOOK_HTTPS_ONLY = False


class _Receiver(http.server.BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.calls.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.calls = []
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.calls
    server.shutdown()


# --- who may ------------------------------------------------------------------------------------


def test_grant_9_only_the_main_account_has_the_settings_page(client, shop_main, shop_sub):
    client.force_login(shop_main.user)
    assert client.get(reverse("authorization:webhook-settings")).status_code == 200
    client.force_login(shop_sub.user)
    assert client.get(reverse("authorization:webhook-settings")).status_code == 403
    resp = client.post(reverse("authorization:webhook-settings"), {"url": GOOD_URL, "is_active": "on"})
    assert resp.status_code == 403 and not OrganizationWebhook.objects.exists()
    assert client.post(reverse("authorization:webhook-rotate")).status_code == 403
    assert client.post(reverse("authorization:webhook-test")).status_code == 403
    client.force_login(CreatorFactory().user)
    assert client.get(reverse("authorization:webhook-settings")).status_code == 404


def test_grant_9_only_the_main_account_uses_the_api(shop_main, shop_sub):
    sub = api_as(shop_sub.user)
    assert sub.put(API, {"url": GOOD_URL}, format="json").status_code == 403
    assert sub.get(API).status_code == 403
    assert sub.post(f"{API}/rotate-secret").status_code == 403
    assert sub.post(f"{API}/test").status_code == 403
    assert sub.get(f"{API}/deliveries").status_code == 403
    assert sub.put(API, {"url": GOOD_URL}, format="json").json()["code"] == "GRANT-9"
    assert api_as(CreatorFactory().user).get(API).status_code == 404
    assert not OrganizationWebhook.objects.exists()
    assert api_as(shop_main.user).put(API, {"url": GOOD_URL}, format="json").status_code == 201


def test_another_organizations_main_account_changes_only_its_own(shop, shop_main):
    services_webhooks.webhook_configure(membership=shop_main, url=GOOD_URL, actor=shop_main.user)
    other = main_member()
    api = api_as(other.user)
    assert api.get(API).status_code == 404  # it has none; ours is not visible
    api.put(API, {"url": "https://other.example.com/h"}, format="json")
    assert OrganizationWebhook.objects.get(organization=shop).url == GOOD_URL


def test_nav_and_dashboard_link_for_the_main_account_only(client, shop_main, shop_sub):
    url = reverse("authorization:webhook-settings")
    client.force_login(shop_main.user)
    assert url in client.get(reverse("dashboard")).content.decode()
    client.force_login(shop_sub.user)
    assert url not in client.get(reverse("dashboard")).content.decode()


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/grants", "https"),
        ("ftp://hooks.example.com/grants", "https"),
        ("not a url", "格式"),
        ("", "请填写"),
        ("https://127.0.0.1/h", "内网"),
        ("https://10.1.2.3/h", "内网"),
        ("https://[::1]/h", "内网"),
        ("https://169.254.169.254/latest/meta-data", "内网"),
        ("https://localhost/h", "内网"),
    ],
)
def test_grant_11_webhook_url_is_validated_in_production(shop_main, url, why):
    resp = api_as(shop_main.user).put(API, {"url": url}, format="json")
    assert resp.status_code == 400
    body = resp.json()
    assert body["field"] == "url" and why in body["message"], body
    assert not OrganizationWebhook.objects.exists()


def test_grant_11_page_shows_the_url_error_on_the_field(client, shop_main):
    client.force_login(shop_main.user)
    resp = client.post(reverse("authorization:webhook-settings"), {"url": "http://hooks.example.com/h"})
    assert resp.status_code == 400
    assert 'data-field="url"' in resp.content.decode() and "https" in resp.content.decode()


def test_grant_11_plain_http_only_where_https_is_not_required(shop_main, http_allowed):
    resp = api_as(shop_main.user).put(API, {"url": "http://127.0.0.1:8001/h"}, format="json")
    assert resp.status_code == 201


# --- secret -------------------------------------------------------------------------------------


def test_grant_11_secret_is_shown_once_and_rotation_replaces_it(shop, shop_main):
    api = api_as(shop_main.user)
    first = api.put(API, {"url": GOOD_URL}, format="json").json()["secret"]
    assert first == OrganizationWebhook.objects.get(organization=shop).secret
    assert "secret" not in api.get(API).json()
    assert "secret" not in api.put(API, {"url": GOOD_URL, "is_active": True}, format="json").json()
    rotated = api.post(f"{API}/rotate-secret").json()
    hook = OrganizationWebhook.objects.get(organization=shop)
    assert rotated["secret"] == hook.secret != first
    assert hook.secret_rotated_at is not None
    assert AuditEntry.objects.filter(action="grant_webhook.rotate_secret", actor=shop_main.user).exists()


def test_grant_11_page_shows_a_rotated_secret_once(client, shop, shop_main):
    services_webhooks.webhook_configure(membership=shop_main, url=GOOD_URL, actor=shop_main.user)
    client.force_login(shop_main.user)
    shown = client.post(reverse("authorization:webhook-rotate")).content.decode()
    secret = OrganizationWebhook.objects.get(organization=shop).secret
    assert secret in shown
    assert secret not in client.get(reverse("authorization:webhook-settings")).content.decode()


def test_grant_11_rotate_or_test_without_a_url_names_the_field(shop_main):
    api = api_as(shop_main.user)
    assert api.post(f"{API}/rotate-secret").json()["field"] == "url"
    assert api.post(f"{API}/test").json()["field"] == "url"


# --- deliveries ---------------------------------------------------------------------------------


def test_grant_11_test_event_is_signed_with_the_current_secret(
    shop, shop_main, http_allowed, receiver, webhook_calls, django_capture_on_commit_callbacks
):
    url, calls = receiver
    api = api_as(shop_main.user)
    old = api.put(API, {"url": url}, format="json").json()["secret"]
    new = api.post(f"{API}/rotate-secret").json()["secret"]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"{API}/test").status_code == 202
    ((args, kwargs),) = webhook_calls
    assert tasks.webhook_deliver.apply(args=args, kwargs=kwargs).get() == 204
    headers, body = calls[-1]
    ts, signature = int(headers["X-Portal-Timestamp"]), headers["X-Portal-Signature"]
    assert webhooks.verify(new, ts, body, signature)
    assert not webhooks.verify(old, ts, body, signature)
    assert json.loads(body)["event"] == "webhook.test"
    (delivery,) = api.get(f"{API}/deliveries").json()
    assert (delivery["status"], delivery["response_status"], delivery["attempts"]) == ("delivered", 204, 1)


def test_grant_11_a_revocation_delivery_is_recorded_and_signed_with_the_current_secret(
    creator, shop, shop_main, http_allowed, receiver, webhook_calls, django_capture_on_commit_callbacks
):
    url, calls = receiver
    services_webhooks.webhook_configure(membership=shop_main, url=url, actor=shop_main.user)
    _hook, secret = services_webhooks.webhook_secret_rotate(membership=shop_main, actor=shop_main.user)
    today = clock.today()
    grant = GrantFactory(creator=creator, organization=shop, start_date=today, end_date=today + days(5))
    with django_capture_on_commit_callbacks(execute=True):
        services.grant_revoke(grant=grant, actor=creator.user)
    # Rotating again after the event was queued: the retry/first send uses the newest secret.
    _hook, newest = services_webhooks.webhook_secret_rotate(membership=shop_main, actor=shop_main.user)
    ((args, kwargs),) = webhook_calls
    tasks.webhook_deliver.apply(args=args, kwargs=kwargs).get()
    headers, body = calls[-1]
    ts, signature = int(headers["X-Portal-Timestamp"]), headers["X-Portal-Signature"]
    assert webhooks.verify(newest, ts, body, signature)
    assert not webhooks.verify(secret, ts, body, signature)
    assert json.loads(body)["grants"][0]["grant_id"] == grant.pk
    delivery = WebhookDelivery.objects.get(organization=shop)
    assert (delivery.event, delivery.status) == ("grant.access_revoked", WebhookDelivery.Status.DELIVERED)


def test_grant_11_a_failed_delivery_shows_its_error(
    client, shop, shop_main, monkeypatch, webhook_calls, django_capture_on_commit_callbacks
):
    services_webhooks.webhook_configure(membership=shop_main, url=GOOD_URL, actor=shop_main.user)

    def refuse(**kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(webhooks, "post", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        services_webhooks.webhook_send_test(membership=shop_main, actor=shop_main.user)
    ((args, kwargs),) = webhook_calls
    tasks.webhook_deliver.apply(args=args, kwargs=kwargs, retries=tasks.webhook_deliver.max_retries)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED and "refused" in delivery.error
    client.force_login(shop_main.user)
    page = client.get(reverse("authorization:webhook-settings")).content.decode()
    assert f'data-delivery="{delivery.pk}"' in page and 'data-status="failed"' in page


def test_grant_9_deliveries_of_another_organization_are_not_listed(shop_main):
    other = main_member()
    services_webhooks.webhook_configure(membership=other, url=GOOD_URL, actor=other.user)
    services_webhooks.webhook_send_test(membership=other, actor=other.user)
    services_webhooks.webhook_configure(membership=shop_main, url=GOOD_URL, actor=shop_main.user)
    assert api_as(shop_main.user).get(f"{API}/deliveries").json() == []


def test_grant_11_no_delivery_to_a_name_that_resolves_inside(
    shop_main, monkeypatch, webhook_calls, django_capture_on_commit_callbacks
):
    """Saved with a public name that now resolves to a private address: refused before any
    connection is made, and not retried."""
    import socket

    services_webhooks.webhook_configure(membership=shop_main, url=GOOD_URL, actor=shop_main.user)
    monkeypatch.setattr(webhooks, "_resolve", lambda host, port: ["10.0.0.7"])
    dialled = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: dialled.append(a))
    with django_capture_on_commit_callbacks(execute=True):
        services_webhooks.webhook_send_test(membership=shop_main, actor=shop_main.user)
    ((args, kwargs),) = webhook_calls
    assert tasks.webhook_deliver.apply(args=args, kwargs=kwargs).get() is None
    assert dialled == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED and "内网" in delivery.error
