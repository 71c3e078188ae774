"""Metering, settlement and gate messages follow the reader's language; the rule codes (and the
gate's JSON ``code``, an API contract) do not change with it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import translation

from billing.models import Api
from billing.services import metering as svc
from billing.services.gate import ARREARS, OUT_OF_CLOUD, gate_check
from billing.services.settlement import settlement_run_month
from billing.services.wallet import wallet_charge_for_month
from billing.tests.factories_metering import ApiFactory, DiscountFactory
from portal.errors import DomainError

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _catalogues(settings, _compiled):
    # Changing LOCALE_PATHS makes Django drop its cached catalogues and read the fresh .mo files.
    settings.LOCALE_PATHS = list(django_settings.LOCALE_PATHS)


@pytest.fixture(scope="module")
def _compiled():
    call_command("compile_catalogs", verbosity=0)


def test_fee_3_1_gate_denial_reads_in_english_and_keeps_its_code(app):
    va = ApiFactory(tier=Api.Tier.VALUE_ADDED)
    with translation.override("en"):
        english = gate_check(app_key=app.app_key, api=va.code, location="out_of_cloud")
    chinese = gate_check(app_key=app.app_key, api=va.code, location="out_of_cloud")
    assert english.code == chinese.code == OUT_OF_CLOUD == "FEE-3.1-OUT-OF-CLOUD"
    assert english.message == (
        "Value-added APIs may not be called from outside the Doudian cloud unless permission "
        "has been granted (FEE-3.1)."
    )
    assert chinese.message == "增值API不得在抖店云外调用, 除非已获授权 (FEE-3.1)。"


def test_fee_6_1_arrears_denial_reads_in_english_and_keeps_its_code(app, org):
    basic = ApiFactory(tier=Api.Tier.BASIC)
    wallet_charge_for_month(organization_id=org.pk, year=2024, month=3, amount_fen=100)
    with translation.override("en"):
        decision = gate_check(app_key=app.app_key, api=basic.code, location="in_cloud")
    assert not decision.allow and decision.code == ARREARS == "FEE-6.1-ARREARS"
    assert decision.message == "The account is in arrears; paid API calls are suspended (FEE-6.1)."


def test_fee_4_2_settlement_refusal_reads_in_english_and_keeps_its_rule():
    with translation.override("en"), pytest.raises(DomainError) as err:
        settlement_run_month(year=2023, month=2)
    assert err.value.code == "FEE-4.2"
    assert str(err.value) == "FEE-4.2: Months before March 2023 are not charged."
    with pytest.raises(DomainError) as err:
        settlement_run_month(year=2023, month=2)
    assert err.value.message == "2023年3月之前的月份不收费。"


def test_fee_5_1_overlapping_discount_refusal_reads_in_english(app):
    DiscountFactory(app=app, valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2026, 12, 31))
    with translation.override("en"), pytest.raises(DomainError) as err:
        svc.discount_set(
            app=app, rate=Decimal("0.2"), valid_from=dt.date(2026, 6, 1), valid_to=dt.date(2026, 6, 30)
        )
    assert err.value.code == "FEE-5.1" and err.value.status == 409
    assert err.value.message == (
        "This app already has a discount in that period (discount periods may not overlap)."
    )


def test_usage_api_rejects_a_bad_month_in_the_readers_language(client, owner, settings):
    client.force_login(owner.user)
    chinese = client.get("/api/v1/billing/usage/daily", {"month": "March"})
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get("/api/v1/billing/usage/daily", {"month": "March"})
    assert chinese.status_code == english.status_code == 400
    assert chinese.json() == {"code": "invalid", "message": "月份格式须为 YYYY-MM。", "field": "month"}
    assert english.json() == {
        "code": "invalid",
        "message": "The month must be in YYYY-MM format.",
        "field": "month",
    }
