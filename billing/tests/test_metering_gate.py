"""The gate (FEE-3.1(1), FEE-6.1): decisions, cache invalidation, the HTTP endpoint."""

import datetime as dt
import time

import pytest
from django.core.cache import cache

from billing.models import Api, OutOfCloudPermission
from billing.services import metering as svc
from billing.services.gate import ARREARS, OUT_OF_CLOUD, UnknownTarget, app_cache_key, gate_check
from billing.services.wallet import wallet_charge_for_month
from billing.tests.factories_metering import ApiFactory, sh, top_up

pytestmark = pytest.mark.django_db
URL = "/api/v1/billing/gate"


def decide(app, api, location="in_cloud", now=None):
    d = gate_check(app_key=app.app_key, api=api.code, location=location, now=now)
    return d.allow, d.code


@pytest.fixture
def va(db):
    return ApiFactory(tier=Api.Tier.VALUE_ADDED, code="va.order.detail")


@pytest.fixture
def oncommit(django_capture_on_commit_callbacks):
    """Run on_commit callbacks (cache invalidation) as a real commit would."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


def test_fee_3_1_value_added_out_of_cloud_is_denied_without_permission(app, va):
    assert decide(app, va, "out_of_cloud") == (False, OUT_OF_CLOUD)
    assert decide(app, va, "in_cloud") == (True, None)


def test_fee_3_1_basic_and_free_apis_may_be_called_out_of_cloud(app):
    basic = ApiFactory(tier=Api.Tier.BASIC)
    free = ApiFactory(tier=Api.Tier.FREE)
    assert decide(app, basic, "out_of_cloud") == (True, None)
    assert decide(app, free, "out_of_cloud") == (True, None)


def test_fee_3_1_granting_and_revoking_a_permission_is_seen_on_the_next_call(app, va, oncommit, admin_user):
    assert decide(app, va, "out_of_cloud") == (False, OUT_OF_CLOUD)  # cached "no permission"
    perm = oncommit(svc.permission_grant, app=app, api=va, actor=admin_user)
    assert decide(app, va, "out_of_cloud") == (True, None)
    oncommit(svc.permission_revoke, permission=perm, actor=admin_user)
    assert decide(app, va, "out_of_cloud") == (False, OUT_OF_CLOUD)
    assert not OutOfCloudPermission.objects.exists()


def test_fee_3_1_permission_only_for_value_added_apis(app):
    from portal.errors import DomainError

    with pytest.raises(DomainError, match=r"FEE-3\.1"):
        svc.permission_grant(app=app, api=ApiFactory(tier=Api.Tier.BASIC))


def test_fee_3_1_a_permission_may_be_granted_the_day_before_an_api_becomes_value_added(app, admin_user):
    basic = ApiFactory(tier=Api.Tier.BASIC)
    day = dt.date(2026, 3, 14)
    svc.api_update(api=basic, tier=Api.Tier.VALUE_ADDED, actor=admin_user, today=day)
    perm = svc.permission_grant(app=app, api=basic, actor=admin_user, today=day)
    assert perm.pk and OutOfCloudPermission.objects.filter(app=app, api=basic).exists()
    # the day after the change took effect, the permission is what the gate reads
    svc.api_tiers_apply_due(today=day + dt.timedelta(days=1))
    assert decide(app, basic, "out_of_cloud", now=sh(2026, 3, 15, 12)) == (True, None)


def test_fee_2_1_tier_change_is_seen_on_the_next_call_after_the_midnight_job(app, oncommit):
    day14, day15, day16 = dt.date(2026, 3, 14), dt.date(2026, 3, 15), dt.date(2026, 3, 16)
    noon = {day: sh(day.year, day.month, day.day, 12) for day in (day14, day15, day16)}
    api = ApiFactory(tier=Api.Tier.BASIC)
    assert decide(app, api, "out_of_cloud", noon[day14]) == (True, None)
    oncommit(svc.api_update, api=api, tier=Api.Tier.VALUE_ADDED, today=day14)
    assert decide(app, api, "out_of_cloud", noon[day14]) == (True, None)  # scheduled for the 15th
    oncommit(svc.api_tiers_apply_due, today=day15)
    assert decide(app, api, "out_of_cloud", noon[day15]) == (False, OUT_OF_CLOUD)
    oncommit(svc.api_update, api=api, tier=Api.Tier.FREE, today=day15)
    oncommit(svc.api_tiers_apply_due, today=day16)
    assert decide(app, api, "out_of_cloud", noon[day16]) == (True, None)


def test_fee_6_1_arrears_deny_paid_apis_and_a_top_up_lifts_them_on_the_next_call(app, va, oncommit):
    basic, free = ApiFactory(tier=Api.Tier.BASIC), ApiFactory(tier=Api.Tier.FREE)
    assert decide(app, basic) == (True, None)  # caches "not in arrears"
    oncommit(wallet_charge_for_month, organization_id=app.organization_id, year=2026, month=3, amount_fen=500)
    assert decide(app, basic) == (False, ARREARS)
    assert decide(app, va) == (False, ARREARS)
    assert decide(app, free, "out_of_cloud") == (True, None)  # free APIs always pass
    oncommit(top_up, app.organization, 400)
    assert decide(app, basic) == (False, ARREARS)  # still -100 fen
    oncommit(top_up, app.organization, 100)
    assert decide(app, basic) == (True, None)


def test_gate_caches_static_facts_and_a_new_app_is_seen_at_once(org, oncommit):
    from billing.services.gate import _facts

    assert _facts("ak-not-yet", "x", time.time())[0] == 0  # a cached "unknown app"
    basic = ApiFactory(tier=Api.Tier.BASIC)
    app, _raw = oncommit(svc.app_create_for_organization, organization_id=org.id, name="n")
    assert cache.get(app_cache_key(app.app_key)) is None
    assert decide(app, basic) == (True, None)
    assert cache.get(app_cache_key(app.app_key)) == [app.id, org.id]


def test_gate_hot_path_uses_no_query_once_cached(app, va, django_assert_num_queries):
    decide(app, va, "out_of_cloud")
    decide(app, va, "in_cloud")
    with django_assert_num_queries(0):
        assert decide(app, va, "out_of_cloud") == (False, OUT_OF_CLOUD)
        assert decide(app, va, "in_cloud") == (True, None)


def test_unknown_app_or_api_raise(app, va):
    with pytest.raises(UnknownTarget):
        gate_check(app_key="nope", api=va.code, location="in_cloud")
    with pytest.raises(UnknownTarget):
        gate_check(app_key=app.app_key, api="nope", location="in_cloud")


class TestGateEndpoint:
    def post(self, client, body, token="gw-test-token", raw=None):
        return client.post(
            URL,
            raw if raw is not None else body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    def test_fee_3_1_endpoint_answers_allow_or_deny_with_the_rule(self, client, app, va, gateway_token):
        resp = self.post(client, {"app_key": app.app_key, "api": va.code, "location": "out_of_cloud"})
        assert resp.status_code == 200
        assert resp.json() | {"message": ""} == {
            "allow": False,
            "code": OUT_OF_CLOUD,
            "message": "",
            "tier": "value_added",
        }
        ok = self.post(client, {"app_key": app.app_key, "api": va.code, "location": "in_cloud"})
        assert ok.json()["allow"] is True and ok.json()["code"] is None

    def test_gateway_token_is_required(self, client, app, va, gateway_token):
        body = {"app_key": app.app_key, "api": va.code, "location": "in_cloud"}
        assert self.post(client, body, token="wrong").status_code == 401
        assert client.post(URL, body, content_type="application/json").status_code == 401
        assert client.get(URL).status_code == 405

    def test_bad_input_is_400_and_unknown_targets_404(self, client, app, va, gateway_token):
        assert self.post(client, None, raw="not json").status_code == 400
        assert self.post(client, None, raw="[1]").status_code == 400
        resp = self.post(client, {"app_key": app.app_key, "api": va.code, "location": "mars"})
        assert resp.status_code == 400 and resp.json()["field"] == "location"
        assert self.post(client, {"app_key": app.app_key, "location": "in_cloud"}).json()["field"] == "api"
        resp = self.post(client, {"app_key": "nope", "api": va.code, "location": "in_cloud"})
        assert resp.status_code == 404 and resp.json()["field"] == "app_key"

    @pytest.mark.parametrize("field", ["app_key", "api"])
    def test_a_nul_character_is_a_400_naming_the_field(self, client, app, va, gateway_token, field):
        body = {"app_key": app.app_key, "api": va.code, "location": "in_cloud"}
        body[field] += "\x00"
        client.raise_request_exception = False
        resp = self.post(client, body)
        assert resp.status_code == 400 and resp.json()["field"] == field


def test_gate_warm_check_makes_no_redis_round_trip(app, va, redis_commands_sent):
    """Static facts and the arrears answer are served from process memory once read
    (portal.hotcache); Redis pushes their changes, see the invalidation tests above."""
    basic = ApiFactory(tier=Api.Tier.BASIC)
    for _ in range(2):  # the first call fills the cache (and its own writes invalidate the reads)
        decide(app, basic)
        decide(app, va, "out_of_cloud")
    redis_commands_sent.clear()

    assert decide(app, basic) == (True, None)
    assert decide(app, va, "out_of_cloud") == (False, OUT_OF_CLOUD)
    assert redis_commands_sent == []


def test_gate_sees_arrears_set_by_another_process_on_the_next_call(app, va, cache_set_from_another_process):
    """FEE-6.1: the arrears key written elsewhere (a settlement worker) is seen at once."""
    from billing.selectors.wallet import arrears_cache_key

    basic = ApiFactory(tier=Api.Tier.BASIC)
    assert decide(app, basic) == (True, None)
    assert decide(app, basic) == (True, None)  # now from process memory

    cache_set_from_another_process(arrears_cache_key(app.organization_id), True)

    assert decide(app, basic) == (False, "FEE-6.1-ARREARS")


def test_an_unset_gateway_token_refuses_every_gateway_call(client, settings):
    settings.BILLING_GATEWAY_TOKEN = ""
    resp = client.post(
        "/api/v1/billing/gate",
        {"app_key": "x", "api": "y", "location": "in_cloud"},
        content_type="application/json",
        headers={"authorization": "Bearer "},
    )
    assert resp.status_code == 401


def test_production_settings_require_the_gateway_token():
    import subprocess
    import sys

    env = {
        "DJANGO_SETTINGS_MODULE": "portal.settings_production",
        "DJANGO_SECRET_KEY": "x" * 60,
        "SANDBOX_WEBHOOK_SECRET": "s",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        "PATH": "/usr/bin:/bin",
    }
    code = "import django; django.setup()"
    missing = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert missing.returncode != 0 and "BILLING_GATEWAY_TOKEN" in missing.stderr
    present = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "BILLING_GATEWAY_TOKEN": "t"},
        capture_output=True,
        text=True,
    )
    assert present.returncode == 0, present.stderr
