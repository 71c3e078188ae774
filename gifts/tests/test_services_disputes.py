"""Gift disputes (GIFT-5.1..5.5)."""

import datetime as dt

import pytest

from gifts import services
from gifts.errors import GiftRuleError, NotFound, TransitionError
from gifts.models import DisputeEvidence, GiftDispute, Order, Violation
from gifts.tests.factories import (
    ELF_BYTES,
    GiftFactory,
    ProductFactory,
    UserFactory,
    approved_gift,
    main_member,
    sub_member,
    upload,
)
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2024, 5, 10, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def owner():
    return main_member()


def _open(gift, kind="not_delivered", *, shop="same", paid=10_000, order_no="D1", now=NOW):
    product = ProductFactory(shop=gift.shop) if not hasattr(gift, "_product") else gift._product
    return services.dispute_open(
        shop=gift.shop if shop == "same" else shop,
        actor=None,
        order_no=order_no,
        paid_amount_fen=paid,
        paid_at=NOW - dt.timedelta(days=5),
        product_id=product.pk,
        gift_id=gift.pk,
        signed_for_at=NOW - dt.timedelta(days=1),
        kind=kind,
        consumer_claim="赠品没收到",
        now=now,
    )


def test_gift_5_3_dispute_opens_with_a_48_hour_deadline_and_a_preview(owner):
    gift = approved_gift(shop=owner.organization)
    dispute, created = _open(gift)
    assert created and dispute.state == "awaiting_merchant"
    assert dispute.response_deadline_at == NOW + dt.timedelta(hours=48)
    assert dispute.calculation["rule"] == "GIFT-5.3" and dispute.calculation["compensation_fen"] == 8_800


def test_gift_5_3_compensation_is_the_value_of_every_unit_due_on_the_order(owner):
    # Given an order whose gift line is due three units of a ¥88 gift, none delivered
    gift = approved_gift(shop=owner.organization, declared_value_fen=8_800, quantity_per_order=1)
    gift._product = ProductFactory(shop=gift.shop)
    services.order_upsert(
        shop=gift.shop,
        order_no="Q3",
        product=gift._product,
        paid_amount_fen=50_000,
        paid_at=NOW - dt.timedelta(days=5),
        gift_lines=[(gift, 3)],
    )

    # When the consumer disputes it and staff uphold the claim
    dispute, _ = _open(gift, order_no="Q3", paid=50_000)
    decided = services.dispute_decide(
        dispute=dispute,
        actor=UserFactory(is_staff=True),
        decision="upheld",
        note="未发赠品",
        now=NOW + dt.timedelta(hours=49),
    )

    # Then the consumer is compensated three units' value, and the figures say so (GIFT-2.4)
    assert decided.compensation_fen == 26_400
    figures = decided.calculation["figures"]
    assert (figures["unit_value_fen"], figures["quantity"], figures["gift_value_fen"]) == (8_800, 3, 26_400)


@pytest.mark.parametrize(("kind", "rule"), [("not_delivered", "GIFT-5.3"), ("lacks_licence", "GIFT-5.2")])
def test_gift_5_without_the_orders_gift_line_the_listings_quantity_per_order_counts(owner, kind, rule):
    gift = approved_gift(shop=owner.organization, declared_value_fen=8_800, quantity_per_order=2)
    dispute, _ = _open(gift, kind=kind)
    assert (dispute.calculation["rule"], dispute.calculation["compensation_fen"]) == (rule, 17_600)
    assert dispute.calculation["figures"]["quantity"] == 2


def test_gift_5_deadline_hours_are_configurable(owner, settings):
    settings.GIFT_DISPUTE_RESPONSE_HOURS = 24
    dispute, _ = _open(approved_gift(shop=owner.organization))
    assert dispute.response_deadline_at == NOW + dt.timedelta(hours=24)


def test_gift_5_opening_twice_returns_the_same_dispute(owner):
    gift = approved_gift(shop=owner.organization)
    gift._product = ProductFactory(shop=gift.shop)
    first, _ = _open(gift)
    again, created = _open(gift)
    assert first == again and not created and GiftDispute.objects.count() == 1


def test_gift_5_another_shops_key_cannot_open_a_dispute_on_this_gift(owner):
    with pytest.raises(NotFound):
        _open(approved_gift(), shop=owner.organization)


def test_gift_5_3_undeclared_unassessable_value_falls_back_to_30_percent(owner):
    gift = GiftFactory(shop=owner.organization, state="approved", declared_value_fen=None, value_basis="")
    dispute, _ = _open(gift, paid=100_000)
    assert dispute.calculation["compensation_fen"] == 30_000


def test_gift_5_merchant_responds_with_evidence_before_the_deadline(owner):
    dispute, _ = _open(approved_gift(shop=owner.organization))
    sub = sub_member(owner.organization)  # sub-accounts answer disputes too
    d = services.dispute_respond(
        membership=sub,
        actor=sub.user,
        dispute=dispute,
        response="已发货 见签收单",
        files=[upload("proof.pdf")],
        now=NOW + dt.timedelta(hours=1),
    )
    assert d.state == "merchant_responded" and DisputeEvidence.objects.filter(dispute=d).count() == 1


def test_gift_5_response_after_the_deadline_is_refused(owner):
    dispute, _ = _open(approved_gift(shop=owner.organization))
    with pytest.raises(GiftRuleError) as err:
        services.dispute_respond(
            membership=owner,
            actor=owner.user,
            dispute=dispute,
            response="晚了",
            now=NOW + dt.timedelta(hours=49),
        )
    assert err.value.code == "GIFT-5-DEADLINE"


def test_gift_5_evidence_that_is_an_executable_is_refused(owner):
    dispute, _ = _open(approved_gift(shop=owner.organization))
    with pytest.raises(Exception) as err:
        services.dispute_respond(
            membership=owner,
            actor=owner.user,
            dispute=dispute,
            response="x",
            files=[upload("proof.pdf", ELF_BYTES)],
            now=NOW,
        )
    assert err.value.code == "UPLOAD-TYPE"
    assert not DisputeEvidence.objects.exists()


def test_gift_5_other_shop_cannot_respond(owner):
    dispute, _ = _open(approved_gift())
    with pytest.raises(NotFound):
        services.dispute_respond(membership=owner, actor=owner.user, dispute=dispute, response="x", now=NOW)


def test_gift_5_staff_decide_only_after_response_or_deadline(owner):
    staff = UserFactory(is_staff=True)
    dispute, _ = _open(approved_gift(shop=owner.organization))
    with pytest.raises(GiftRuleError):
        services.dispute_decide(
            dispute=dispute, actor=staff, decision="upheld", note="x", now=NOW + dt.timedelta(hours=1)
        )
    d = services.dispute_decide(
        dispute=dispute, actor=staff, decision="upheld", note="商家未举证", now=NOW + dt.timedelta(hours=49)
    )
    assert (d.state, d.compensation_fen) == ("decided", 8_800)
    assert AuditEntry.objects.filter(action="gifts.dispute_decide", actor=staff).exists()
    with pytest.raises(TransitionError):
        services.dispute_decide(
            dispute=dispute, actor=staff, decision="dismissed", note="x", now=NOW + dt.timedelta(hours=50)
        )


def test_gift_5_1_gift_dispute_never_changes_the_products_dispute(owner):
    staff = UserFactory(is_staff=True)
    dispute, _ = _open(approved_gift(shop=owner.organization))
    Order.objects.filter(pk=dispute.order_id).update(product_dispute_state="open")
    services.dispute_respond(membership=owner, actor=owner.user, dispute=dispute, response="已发", now=NOW)
    services.dispute_decide(
        dispute=dispute, actor=staff, decision="upheld", note="支持", now=NOW + dt.timedelta(hours=1)
    )
    assert Order.objects.get(pk=dispute.order_id).product_dispute_state == "open"


def test_gift_5_3_one_gift_on_one_order_is_compensated_once(owner):
    # Given one undelivered gift (declared ¥88) and two disputes about it on one order
    staff = UserFactory(is_staff=True)
    gift = approved_gift(shop=owner.organization)
    gift._product = ProductFactory(shop=gift.shop)
    not_delivered, _ = _open(gift, kind="not_delivered")
    not_as_described, _ = _open(gift, kind="not_as_described")
    later = NOW + dt.timedelta(hours=49)
    services.dispute_decide(dispute=not_delivered, actor=staff, decision="upheld", note="未发", now=later)

    # When staff uphold the second one as well
    with pytest.raises(GiftRuleError) as err:
        services.dispute_decide(
            dispute=not_as_described, actor=staff, decision="upheld", note="不符", now=later
        )

    # Then it is refused under GIFT-5.3 and the consumer is paid the gift's value once
    assert err.value.code == "GIFT-5.3" and "¥88.00" in err.value.message
    not_as_described.refresh_from_db()
    assert not_as_described.state == "awaiting_merchant" and not_as_described.compensation_fen is None
    assert (
        sum(GiftDispute.objects.values_list("compensation_fen", flat=True).exclude(compensation_fen=None))
        == 8_800
    )
    # dismissing it is still possible, and a further claim of the gift's value is refused at once
    services.dispute_decide(
        dispute=not_as_described, actor=staff, decision="dismissed", note="已赔付", now=later
    )
    with pytest.raises(GiftRuleError) as err:
        _open(gift, kind="lacks_licence")
    assert err.value.code == "GIFT-5.3" and err.value.field == "kind"


def test_gift_5_2_merchant_lacking_licence_refunds_value_and_records_violation(owner):
    staff = UserFactory(is_staff=True)
    dispute, _ = _open(approved_gift(shop=owner.organization), kind="lacks_licence")
    d = services.dispute_decide(
        dispute=dispute,
        actor=staff,
        decision="upheld",
        note="无食品经营许可证",
        now=NOW + dt.timedelta(hours=49),
    )
    assert d.compensation_fen == 8_800 and d.calculation["rule"] == "GIFT-5.2"
    assert Violation.objects.get().violation_type == "扰乱平台秩序"


def test_gift_5_2_unknown_value_must_be_assessed_before_upholding(owner):
    staff = UserFactory(is_staff=True)
    gift = GiftFactory(shop=owner.organization, state="approved", declared_value_fen=None, value_basis="")
    dispute, _ = _open(gift, kind="lacks_licence")
    with pytest.raises(GiftRuleError) as err:
        services.dispute_decide(
            dispute=dispute, actor=staff, decision="upheld", note="x", now=NOW + dt.timedelta(hours=49)
        )
    assert err.value.code == "GIFT-1.2"
    services.gift_fair_value_set(gift=gift, amount_fen=1_500, reason="市场价", actor=staff)
    d = services.dispute_decide(
        dispute=dispute, actor=staff, decision="upheld", note="x", now=NOW + dt.timedelta(hours=49)
    )
    assert d.compensation_fen == 1_500 and d.calculation["figures"]["value_basis"] == "fair_value"


def test_gift_5_4_gift_lost_on_return_deducts_its_value(owner):
    staff = UserFactory(is_staff=True)
    dispute, _ = _open(approved_gift(shop=owner.organization), kind="return_gift_lost")
    d = services.dispute_decide(
        dispute=dispute, actor=staff, decision="upheld", note="赠品遗失", now=NOW + dt.timedelta(hours=49)
    )
    assert (d.refund_deduction_fen, d.return_shipping_payer, d.compensation_fen) == (8_800, "consumer", 0)


def test_gift_5_4_dismissed_gift_lost_claim_deducts_nothing_from_the_refund(owner):
    # Given a merchant's claim that the consumer returned the product without the gift
    staff = UserFactory(is_staff=True)
    dispute, _ = _open(approved_gift(shop=owner.organization), kind="return_gift_lost")

    # When staff dismiss it (the gift came back intact)
    d = services.dispute_decide(
        dispute=dispute,
        actor=staff,
        decision="dismissed",
        note="赠品完好退回",
        now=NOW + dt.timedelta(hours=49),
    )

    # Then the merchant may deduct nothing; the preview's figure stays only in the calculation
    d.refresh_from_db()
    assert (d.decision, d.refund_deduction_fen, d.compensation_fen) == ("dismissed", 0, 0)
    assert d.calculation["refund_deduction_fen"] == 8_800


@pytest.mark.parametrize("kind", ["return_merchant_fault", "gift_not_returnable"])
def test_gift_5_5_cases_are_settled_between_merchant_and_consumer(owner, kind):
    dispute, _ = _open(approved_gift(shop=owner.organization), kind=kind)
    assert dispute.state == "settle_between_parties" and dispute.calculation["settle_between_parties"]
    with pytest.raises(GiftRuleError) as err:
        services.dispute_decide(
            dispute=dispute,
            actor=UserFactory(is_staff=True),
            decision="upheld",
            note="x",
            now=NOW + dt.timedelta(hours=49),
        )
    assert err.value.code == "GIFT-5.5"


def test_gift_5_4_merchant_fault_return_shipping_is_the_merchants(owner):
    dispute, _ = _open(approved_gift(shop=owner.organization), kind="return_merchant_fault")
    assert dispute.return_shipping_payer == "merchant"


def test_gift_5_deadline_hours_come_from_settings_with_48_by_default(settings):
    from portal.settings import env

    assert env.int("GIFT_DISPUTE_RESPONSE_HOURS", default=48) == 48
    settings.GIFT_DISPUTE_RESPONSE_HOURS = 72
    assert services.dispute_response_hours() == 72


def _return_of_three(owner, *, kind="return_gift_lost", intact, order_no="R3"):
    """A return on an order whose gift line was due three ¥88 units, ``intact`` of them back intact."""
    gift = approved_gift(shop=owner.organization, declared_value_fen=8_800, quantity_per_order=1)
    product = ProductFactory(shop=gift.shop)
    services.order_upsert(
        shop=gift.shop,
        order_no=order_no,
        product=product,
        paid_amount_fen=50_000,
        paid_at=NOW - dt.timedelta(days=5),
        gift_lines=[(gift, 3)],
    )
    return services.dispute_open(
        shop=gift.shop,
        actor=None,
        order_no=order_no,
        paid_amount_fen=50_000,
        paid_at=NOW - dt.timedelta(days=5),
        product_id=product.pk,
        gift_id=gift.pk,
        signed_for_at=NOW - dt.timedelta(days=1),
        kind=kind,
        units_returned_intact=intact,
        now=NOW,
    )


@pytest.mark.parametrize(
    ("intact", "deduction_fen"),
    [(2, 8_800), (0, 26_400), (3, 0), (None, 26_400)],
    ids=["2-of-3-intact", "none-intact", "all-intact", "not-stated"],
)
def test_gift_5_4_partial_return_deducts_only_the_units_not_returned_intact(owner, intact, deduction_fen):
    # Given a return of three units promised, ``intact`` of them back intact (consumer's fault)
    dispute, created = _return_of_three(owner, intact=intact)
    assert created and (dispute.units_promised, dispute.units_returned_intact) == (3, intact)

    # When staff uphold the merchant's claim
    d = services.dispute_decide(
        dispute=dispute,
        actor=UserFactory(is_staff=True),
        decision="upheld",
        note="部分赠品遗失",
        now=NOW + dt.timedelta(hours=49),
    )

    # Then only the value of the units not returned intact is deducted, and the figures say so
    d.refresh_from_db()
    assert (d.refund_deduction_fen, d.return_shipping_payer) == (deduction_fen, "consumer")
    assert (d.units_promised, d.units_returned_intact) == (3, intact)
    figures = d.calculation["figures"]
    assert (figures["quantity"], figures["units_returned_intact"]) == (3, intact)
    opened = d.events.get(kind="dispute_opened")
    assert opened.details == {
        "kind": "return_gift_lost",
        "units_promised": 3,
        "units_returned_intact": intact,
    }


@pytest.mark.parametrize("intact", [-1, 4])
def test_gift_5_4_units_returned_intact_outside_0_to_the_quantity_is_refused(owner, intact):
    with pytest.raises(GiftRuleError) as err:
        _return_of_three(owner, intact=intact, order_no="R-OUT")
    assert (err.value.code, err.value.field) == ("GIFT-5.4", "units_returned_intact")
    assert "3" in err.value.message and str(intact) in err.value.message
    assert not GiftDispute.objects.exists()


def test_gift_5_4_units_returned_intact_only_on_a_return(owner):
    with pytest.raises(GiftRuleError) as err:
        _return_of_three(owner, kind="not_delivered", intact=1)
    assert (err.value.code, err.value.field) == ("GIFT-5.4", "units_returned_intact")
    assert not GiftDispute.objects.exists()


def test_gift_5_4_merchant_fault_return_is_unaffected_by_units_returned_intact(owner):
    # Given a return through the merchant's fault with one of three units back intact
    dispute, _ = _return_of_three(owner, kind="return_merchant_fault", intact=1)

    # Then nothing is deducted, the merchant pays return shipping and the gift is settled between them
    assert (dispute.state, dispute.return_shipping_payer, dispute.refund_deduction_fen) == (
        "settle_between_parties",
        "merchant",
        None,
    )
    assert dispute.calculation["refund_deduction_fen"] is None
    assert (dispute.units_promised, dispute.units_returned_intact) == (3, 1)
