# ruff: noqa: RUF001
"""GIFT rule messages follow the active language and keep naming their rule id."""

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from gifts import services
from gifts.compensation import compensation_calculate
from gifts.errors import GiftRuleError
from gifts.tests.factories import GiftFactory, approved_gift, main_member, open_dispute

pytestmark = pytest.mark.django_db


def _lottery_gift_over_the_cap(owner):
    # A draft saved before drafts were checked on save (GIFT-2.7): submitting still refuses it.
    return GiftFactory(
        shop=owner.organization, ship_from="bonded", declared_value_fen=5_000_001, is_lottery=True
    )


def test_gift_rule_error_is_english_under_english_and_names_its_rule():
    owner = main_member()
    gift = _lottery_gift_over_the_cap(owner)
    with translation.override("en"), pytest.raises(GiftRuleError) as err:
        services.gift_submit(membership=owner, actor=owner.user, gift=gift)
    assert err.value.code == "GIFT-2.7"
    assert err.value.message == (
        "A lottery gift's value may not exceed RMB 50,000 (inclusive): "
        "unit value ¥50,000.01 × quantity 1 = ¥50,000.01"
    )
    assert str(err.value).startswith("GIFT-2.7: A lottery gift's value")
    assert err.value.as_body()["code"] == "GIFT-2.7"


def test_gift_rule_error_stays_chinese_by_default():
    owner = main_member()
    gift = _lottery_gift_over_the_cap(owner)
    with pytest.raises(GiftRuleError) as err:
        services.gift_submit(membership=owner, actor=owner.user, gift=gift)
    assert err.value.message == (
        "抽奖赠品价值不得超过人民币50000元（含）：单件价值 ¥50,000.01 × 数量 1 = ¥50,000.01"
    )


def test_compensation_explanation_is_english_and_keeps_the_rule_id_in_the_text():
    with translation.override("en"):
        calc = compensation_calculate(
            kind="lacks_licence", unit_value_fen=None, value_basis="unknown", paid_amount_fen=1
        )
    assert calc.rule == "GIFT-5.2"
    assert calc.explanation == "The platform must first assess the gift's fair market value (GIFT-1.2)"


def test_dispute_calculation_is_stored_in_chinese_and_shown_in_english(client):
    owner = main_member()
    gift = approved_gift(shop=owner.organization)
    with translation.override("en"):
        dispute = open_dispute(gift)
    dispute.refresh_from_db()
    assert dispute.calculation["explanation"] == "按赠品价值赔付 (gift value)"
    client.force_login(owner.user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(reverse("gifts:dispute-detail", args=[dispute.pk])).content.decode()
    assert "Compensation at the gift&#x27;s value" in html and "按赠品价值赔付" not in html
