# ruff: noqa: RUF001
"""Listing check (GIFT-2.1, 2.3, 2.4, 2.5, 2.7, 4.3): every finding names its rule."""

import pytest

from gifts import services
from gifts.errors import GiftRuleError, ListingBreach
from gifts.listing_check import listing_check, normalize_text, product_listing_check, text_names_brand
from gifts.models import ProductGift
from gifts.tests.factories import (
    GiftFactory,
    ProductFactory,
    approved_gift,
    food_category,
    main_member,
    valid_licence,
)

pytestmark = pytest.mark.django_db


def rules(findings):
    return sorted({f.code for f in findings})


def test_normalize_folds_case_width_and_spaces():
    assert normalize_text("ＬＡＮ　ｃｏｍｅ  兰 蔻") == "lancome兰蔻"


@pytest.mark.parametrize(
    "title",
    [
        "送ＬＡＮＣＯＭＥ旅行装",  # full-width Latin
        "送 lAnCoMe 小样",  # mixed case
        "送L a n c o m e",  # spaced out
        "限时送兰 蔻面霜",  # Chinese with a space
        "送ｌａｎｃｏｍｅ　面霜",  # full-width lower case and ideographic space
    ],
)
def test_gift_2_5_brand_in_title_is_found_whatever_the_width_case_or_spacing(title):
    assert text_names_brand(title, "Lancome/兰蔻")


def test_gift_2_5_brand_absent_is_not_found():
    assert not text_names_brand("进口精华液 30ml", "Lancome/兰蔻")


def test_gift_2_5_brand_in_title_or_subtitle_is_a_finding():
    gift = approved_gift()
    found = listing_check(title="精华液", subtitle="加赠ＬＡＮＣＯＭＥ面霜", gifts=[gift])
    assert [(f.rule, f.field) for f in found] == [("GIFT-2.5", "subtitle")]


def test_gift_2_5_main_image_showing_gift_alone_or_more_prominent():
    gift = approved_gift()
    found = listing_check(
        title="精华液", main_image_shows_gift_alone=True, gift_more_prominent=True, gifts=[gift]
    )
    assert rules(found) == ["GIFT-2.5-IMAGE-ALONE", "GIFT-2.5-IMAGE-PROMINENT"]


def test_gift_2_4_every_missing_element_is_a_finding():
    gift = GiftFactory(
        state="approved",
        kind="",
        spec="",
        quantity_per_order=None,
        ship_from="",
        declared_value_fen=None,
        value_basis="",
    )
    found = listing_check(title="精华液", gifts=[gift])
    assert rules(found) == [
        "GIFT-2.4-KIND",
        "GIFT-2.4-QUANTITY",
        "GIFT-2.4-SHIP-FROM",
        "GIFT-2.4-SPEC",
        "GIFT-2.4-VALUE",
    ]
    assert all(f.rule == "GIFT-2.4" for f in found)


def test_gift_2_4_near_expiry_without_date_is_a_finding():
    gift = GiftFactory(near_expiry=True)
    assert "GIFT-2.4-EXPIRY" in rules(listing_check(title="x", gifts=[gift]))


def test_gift_2_7_lottery_over_the_cap_is_a_finding():
    assert "GIFT-2.7" in rules(
        listing_check(title="x", gifts=[GiftFactory(is_lottery=True, declared_value_fen=5_000_001)])
    )
    assert "GIFT-2.7" not in rules(
        listing_check(title="x", gifts=[GiftFactory(is_lottery=True, declared_value_fen=5_000_000)])
    )


def test_gift_2_7_lottery_cap_finding_counts_the_quantity_per_order():
    over = GiftFactory(is_lottery=True, declared_value_fen=2_000_000, quantity_per_order=3)
    found = [f for f in listing_check(title="x", gifts=[over]) if f.rule == "GIFT-2.7"]
    assert len(found) == 1 and "¥60,000.00" in found[0].message
    within = GiftFactory(is_lottery=True, declared_value_fen=2_500_000, quantity_per_order=2)
    assert "GIFT-2.7" not in rules(listing_check(title="x", gifts=[within]))


def test_gift_2_1_unapproved_gift_is_a_finding():
    assert rules(listing_check(title="x", gifts=[GiftFactory(state="submitted")])) == ["GIFT-2.1"]


def test_gift_2_3_missing_licence_is_a_finding_and_a_valid_one_clears_it():
    gift = approved_gift(category=food_category())
    assert rules(listing_check(title="x", gifts=[gift])) == ["GIFT-2.3"]
    valid_licence(gift.shop)
    assert listing_check(title="x", gifts=[gift]) == []


def test_gift_4_3_unapproved_domestic_shipping_is_a_finding():
    gift = approved_gift(ship_from="domestic", value_basis="merchant_declared")
    assert rules(listing_check(title="x", gifts=[gift])) == ["GIFT-4.3"]


def test_clean_listing_has_no_findings_and_can_be_published():
    owner = main_member()
    gift = approved_gift(shop=owner.organization)
    product = ProductFactory(shop=owner.organization)
    services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
    assert product_listing_check(product) == []
    assert services.product_publish(membership=owner, actor=owner.user, product=product).state == "listed"


def test_gift_2_5_listing_with_findings_cannot_be_published_and_staff_take_down_records_violation():
    owner = main_member()
    gift = approved_gift(shop=owner.organization)
    product = ProductFactory(shop=owner.organization, title="精华液 送兰蔻面霜")
    ProductGift.objects.create(product=product, gift=gift, attached_by=owner.user)
    with pytest.raises(GiftRuleError) as err:
        services.product_publish(membership=owner, actor=owner.user, product=product)
    assert err.value.code == "GIFT-2.5"
    from portal.tests.factories import UserFactory

    staff = UserFactory(is_staff=True)
    product, outcomes = services.product_take_down(product=product, actor=staff, reason="标题陈述赠品品牌")
    assert product.state == "taken_down"
    assert [o.violation.rule_id for o in outcomes] == ["GIFT-2.5"]


def _listed(owner, *, gifts=(), **product_fields):
    product = ProductFactory(shop=owner.organization, **product_fields)
    for gift in gifts:
        services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
    return services.product_publish(membership=owner, actor=owner.user, product=product)


def test_gift_2_5_listed_product_cannot_be_edited_to_name_the_gifts_brand():
    # Given a listed product with a Lancome gift
    owner = main_member()
    gift = approved_gift(shop=owner.organization, brand="Lancome/兰蔻")
    product = _listed(owner, gifts=[gift], title="进口精华液 30ml")

    # When the shop edits the title to name the gift's brand
    with pytest.raises(ListingBreach) as err:
        services.product_update(
            membership=owner, actor=owner.user, product=product, data={"title": "精华液 送Lancome面霜"}
        )

    # Then the edit is refused with the finding's rule, and the listing stays as it was
    assert err.value.code == "GIFT-2.5" and "GIFT-2.5" in err.value.message
    assert [(f.code, f.field) for f in err.value.findings] == [("GIFT-2.5-BRAND", "title")]
    assert err.value.as_body()["findings"][0]["rule"] == "GIFT-2.5"
    product.refresh_from_db()
    assert (product.title, product.state) == ("进口精华液 30ml", "listed")
    # an edit that keeps it clean goes through
    services.product_update(
        membership=owner, actor=owner.user, product=product, data={"title": "精华液 50ml"}
    )
    product.refresh_from_db()
    assert product.title == "精华液 50ml" and product_listing_check(product) == []


def test_gift_2_5_gift_cannot_be_attached_to_a_listed_product_whose_main_image_shows_the_gift_alone():
    # Given a listed product without gifts whose main image shows a gift alone
    owner = main_member()
    product = _listed(owner, main_image_shows_gift_alone=True)
    gift = approved_gift(shop=owner.organization)

    # When the shop attaches a gift
    with pytest.raises(ListingBreach) as err:
        services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)

    # Then it is refused under GIFT-2.5 and the listing keeps no gift
    assert err.value.code == "GIFT-2.5" and "GIFT-2.5" in err.value.message
    assert not ProductGift.objects.filter(product=product).exists()


def test_gift_2_4_gift_missing_its_spec_cannot_be_attached_to_a_listed_product():
    owner = main_member()
    product = _listed(owner)
    gift = GiftFactory(shop=owner.organization, state="approved", spec="")
    with pytest.raises(ListingBreach) as err:
        services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
    assert err.value.code == "GIFT-2.4" and not ProductGift.objects.filter(product=product).exists()


def test_gift_2_listed_product_already_in_breach_can_still_be_edited_without_adding_a_breach():
    # Given a listed product whose gift's licence lapsed after it was listed (a GIFT-2.3 finding)
    owner = main_member()
    licence = valid_licence(owner.organization)
    gift = approved_gift(shop=owner.organization, category=food_category())
    product = _listed(owner, gifts=[gift])
    licence.delete()
    assert rules(product_listing_check(product)) == ["GIFT-2.3"]

    # When the shop edits the subtitle without adding a breach, the edit is saved
    services.product_update(membership=owner, actor=owner.user, product=product, data={"subtitle": "现货"})
    product.refresh_from_db()
    assert product.subtitle == "现货" and product.state == "listed"
