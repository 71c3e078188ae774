"""Shipping (GIFT-2.6, 4.1, 4.2), spot checks (GIFT-3) and rule versions (GIFT-6.2)."""

import datetime as dt

import pytest

from gifts import services
from gifts.errors import DomainError
from gifts.models import GiftEvent, GiftShipment, RuleVersion, SpotCheck, Violation, ViolationAnnulment
from gifts.tests.factories import (
    ProductFactory,
    UserFactory,
    approved_gift,
    food_category,
    valid_licence,
)
from portal.models import AuditEntry, Notification

pytestmark = pytest.mark.django_db
PAID = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def shipment():
    gift = approved_gift(declared_value_fen=50_000)  # ¥500 → weight 2
    product = ProductFactory(shop=gift.shop, promised_ship_hours=48)
    order = services.order_upsert(
        shop=gift.shop,
        order_no="A1",
        product=product,
        paid_amount_fen=20_000,
        paid_at=PAID,
        gift_lines=[(gift, 1)],
    )
    return GiftShipment.objects.get(order=order)


def test_gift_4_2_due_time_is_the_products_promised_ship_time(shipment):
    assert shipment.due_by_at == PAID + dt.timedelta(hours=48)


def test_gift_4_2_shipped_on_time_records_nothing(shipment):
    _, outcome = services.gift_shipment_mark_shipped(
        shipment=shipment, shipped_at=PAID + dt.timedelta(hours=47), tracking_no="SF1"
    )
    assert outcome is None and not Violation.objects.exists()


def test_gift_4_2_shipped_late_records_breach_of_promise_weighted_by_value(shipment):
    _, outcome = services.gift_shipment_mark_shipped(
        shipment=shipment, shipped_at=PAID + dt.timedelta(hours=49), tracking_no="SF1"
    )
    v = outcome.violation
    assert (v.rule_id, v.violation_type, v.gift_value_fen, v.weight) == ("GIFT-4.2", "违背承诺", 50_000, 2)
    assert v.rule_version.version == "2022-07-01"


def test_gift_4_2_agreed_later_time_is_honoured(shipment):
    shipment.agreed_ship_by_at = PAID + dt.timedelta(hours=96)
    shipment.save()
    _, outcome = services.gift_shipment_mark_shipped(
        shipment=shipment, shipped_at=PAID + dt.timedelta(hours=60), tracking_no="SF1"
    )
    assert outcome is None


def test_gift_4_2_not_shipped_by_the_deadline_is_judged_once(shipment):
    assert services.gift_shipment_overdue_run(now=PAID + dt.timedelta(hours=47)) == 0
    assert services.gift_shipment_overdue_run(now=PAID + dt.timedelta(hours=49)) == 1
    assert services.gift_shipment_overdue_run(now=PAID + dt.timedelta(hours=50)) == 0
    v = Violation.objects.get()
    assert v.rule_id == "GIFT-4.2" and v.evidence["kind"] == "not_shipped"


def test_gift_4_2_breach_is_weighed_by_the_value_of_every_unit_due_on_the_order():
    # Given an order due two units of a ¥88 gift (¥176 in all), never shipped
    gift = approved_gift(declared_value_fen=8_800, quantity_per_order=1)
    order = services.order_upsert(
        shop=gift.shop,
        order_no="Q2",
        product=ProductFactory(shop=gift.shop),
        paid_amount_fen=20_000,
        paid_at=PAID,
        gift_lines=[(gift, 2)],
    )
    # When the overdue job judges it
    services.gift_shipment_overdue_run(now=PAID + dt.timedelta(days=3))
    # Then it weighs as a ¥176 gift (weight 2), not as one ¥88 unit (weight 1)
    v = Violation.objects.get(gift=gift)
    assert (v.gift_value_fen, v.weight) == (17_600, 2)
    assert v.evidence["gift_value"] == {
        "amount_fen": 17_600,
        "unit_value_fen": 8_800,
        "quantity": 2,
        "quantity_source": "order",
        "basis": "customs_declared",
        "rule": "GIFT-1.2/GIFT-2.4",
    }
    assert order.gift_shipments.get().quantity == 2


@pytest.mark.parametrize(
    ("value_fen", "weight"), [(None, 1), (9_999, 1), (10_000, 2), (99_999, 2), (100_000, 3)]
)
def test_gift_4_2_weight_follows_the_gift_value(value_fen, weight):
    assert services.violation_weight(value_fen) == weight


def test_gift_4_2_fake_shipping_found_by_staff(shipment):
    services.gift_shipment_mark_shipped(shipment=shipment, shipped_at=PAID, tracking_no="FAKE")
    outcome = services.gift_shipment_mark_fake(
        shipment=shipment, actor=UserFactory(is_staff=True), note="运单无揽收记录"
    )
    assert outcome.violation.rule_id == "GIFT-4.2" and outcome.violation.evidence["tracking_no"] == "FAKE"


def test_gift_4_1_late_for_missing_customs_registration_is_shipping_overtime(shipment):
    _, outcome = services.gift_shipment_mark_shipped(
        shipment=shipment,
        shipped_at=PAID + dt.timedelta(days=5),
        tracking_no="SF1",
        late_cause="customs_unregistered",
    )
    assert (outcome.violation.rule_id, outcome.violation.violation_type) == ("GIFT-4.1", "发货超时")


@pytest.mark.parametrize(
    ("shipped_at", "field"),
    [(PAID - dt.timedelta(hours=1), "shipped_at"), (dt.datetime(2099, 1, 1, tzinfo=dt.UTC), "shipped_at")],
    ids=["before-the-payment", "in-the-future"],
)
def test_gift_4_2_a_shipping_time_that_cannot_be_is_refused(shipment, shipped_at, field):
    with pytest.raises(DomainError) as exc:
        services.gift_shipment_mark_shipped(shipment=shipment, shipped_at=shipped_at, tracking_no="SF1")
    assert exc.value.field == field
    shipment.refresh_from_db()
    assert shipment.shipped_at is None and not Violation.objects.exists()


def test_gift_4_1_customs_registration_is_no_cause_for_a_gift_shipped_domestically():
    gift = approved_gift(
        ship_from="domestic", value_basis="merchant_declared", domestic_shipping_approved=True
    )
    order = services.order_upsert(
        shop=gift.shop,
        order_no="D1",
        product=ProductFactory(shop=gift.shop),
        paid_amount_fen=1,
        paid_at=PAID,
        gift_lines=[(gift, 1)],
    )
    with pytest.raises(DomainError) as exc:
        services.gift_shipment_mark_shipped(
            shipment=order.gift_shipments.get(),
            shipped_at=PAID + dt.timedelta(days=5),
            tracking_no="SF1",
            late_cause="customs_unregistered",
        )
    assert (exc.value.code, exc.value.field) == ("GIFT-4.1", "late_cause")


def test_gift_4_2_a_gift_never_shipped_is_not_fake_shipping(shipment):
    with pytest.raises(DomainError) as exc:
        services.gift_shipment_mark_fake(shipment=shipment, actor=UserFactory(is_staff=True), note="无运单")
    assert exc.value.code == "GIFT-4.2" and not Violation.objects.exists()


def test_gift_2_3_shipping_a_licence_gift_without_licence_disturbs_platform_order():
    gift = approved_gift(category=food_category())
    order = services.order_upsert(
        shop=gift.shop,
        order_no="B1",
        product=ProductFactory(shop=gift.shop),
        paid_amount_fen=1,
        paid_at=PAID,
        gift_lines=[(gift, 1)],
    )
    services.gift_shipment_mark_shipped(
        shipment=order.gift_shipments.get(), shipped_at=PAID, tracking_no="SF"
    )
    assert Violation.objects.get().violation_type == "扰乱平台秩序"


def test_gift_2_3_shipping_with_valid_licence_is_fine():
    gift = approved_gift(category=food_category())
    valid_licence(gift.shop)
    order = services.order_upsert(
        shop=gift.shop,
        order_no="B2",
        product=ProductFactory(shop=gift.shop),
        paid_amount_fen=1,
        paid_at=PAID,
        gift_lines=[(gift, 1)],
    )
    services.gift_shipment_mark_shipped(
        shipment=order.gift_shipments.get(), shipped_at=PAID, tracking_no="SF"
    )
    assert not Violation.objects.exists()


@pytest.mark.parametrize(
    ("outcome", "rule", "vtype"),
    [
        ("unqualified_maker", "GIFT-3.1", "商品质量不合格"),
        ("substandard", "GIFT-3.1", "商品质量不合格"),
        ("not_as_described", "GIFT-3.2", "商品发布违规"),
        ("missing_info", "GIFT-3.2", "商品发布违规"),
    ],
)
def test_gift_3_spot_check_outcomes_record_their_violation(outcome, rule, vtype):
    check, _result = services.spot_check_record(
        gift=approved_gift(), actor=UserFactory(is_staff=True), outcome=outcome, checked_at=PAID
    )
    check.refresh_from_db()
    assert (check.violation.rule_id, check.violation.violation_type) == (rule, vtype)


def test_gift_3_qualified_spot_check_records_no_violation():
    check, result = services.spot_check_record(
        gift=approved_gift(), actor=UserFactory(is_staff=True), outcome="qualified"
    )
    assert result is None and check.violation is None and not Violation.objects.exists()


def test_gift_6_2_conduct_before_2022_07_01_is_not_judged_and_the_skip_is_visible():
    before = dt.datetime(2022, 6, 30, 15, 0, tzinfo=dt.UTC)  # 2022-06-30 23:00 in Shanghai
    check, result = services.spot_check_record(
        gift=approved_gift(), actor=UserFactory(is_staff=True), outcome="substandard", checked_at=before
    )
    assert not result.recorded and "GIFT-6.2" in result.skipped_reason
    assert not Violation.objects.exists() and SpotCheck.objects.get().violation is None
    assert GiftEvent.objects.filter(kind="violation_not_judged", gift=check.gift).exists()


def test_gift_6_2_effective_date_is_a_shanghai_date():
    on_day = dt.datetime(2022, 6, 30, 16, 0, tzinfo=dt.UTC)  # 2022-07-01 00:00 in Shanghai
    _, result = services.spot_check_record(
        gift=approved_gift(), actor=UserFactory(is_staff=True), outcome="substandard", checked_at=on_day
    )
    assert result.recorded


def test_gift_6_2_conduct_is_judged_by_the_version_then_in_force():
    old = RuleVersion.objects.get(version="2022-07-01")
    old.effective_to = dt.date(2025, 1, 1)
    old.save()
    new = RuleVersion.objects.create(
        code="GIFT", version="2025-01-01", title="修订版", effective_from=dt.date(2025, 1, 1)
    )
    staff = UserFactory(is_staff=True)
    _, r1 = services.spot_check_record(
        gift=approved_gift(),
        actor=staff,
        outcome="substandard",
        checked_at=dt.datetime(2024, 12, 31, 12, tzinfo=dt.UTC),
    )
    _, r2 = services.spot_check_record(
        gift=approved_gift(),
        actor=staff,
        outcome="substandard",
        checked_at=dt.datetime(2025, 1, 2, 12, tzinfo=dt.UTC),
    )
    assert r1.violation.rule_version == old and r2.violation.rule_version == new


def test_violation_record_is_idempotent_on_its_source_key():
    gift = approved_gift()
    a = services.violation_record(
        shop_id=gift.shop_id, rule_id="GIFT-4.2", occurred_at=PAID, source_key="same", gift=gift
    )
    b = services.violation_record(
        shop_id=gift.shop_id, rule_id="GIFT-4.2", occurred_at=PAID, source_key="same", gift=gift
    )
    assert a.violation == b.violation and Violation.objects.count() == 1


def test_gift_2_6_a_gift_stated_in_the_listing_must_be_delivered():
    """The listing's gifts become shipments of every order; one never shipped is a breach."""
    gift = approved_gift()
    product = ProductFactory(shop=gift.shop)
    from gifts.models import ProductGift

    ProductGift.objects.create(product=product, gift=gift, attached_by=gift.created_by)
    order = services.order_upsert(
        shop=gift.shop, order_no="L1", product=product, paid_amount_fen=1, paid_at=PAID
    )
    assert [s.gift for s in order.gift_shipments.all()] == [gift]
    services.gift_shipment_overdue_run(now=PAID + dt.timedelta(days=30))
    assert Violation.objects.get(gift=gift).evidence["kind"] == "not_shipped"


def test_gift_4_2_a_dispute_creates_no_shipping_duty_so_no_false_late_shipping(migration_data):
    # Given a consumer who signed for the gift and returns the product without it, on an order the
    # order system has not posted (the dispute is the first we hear of it)
    gift = approved_gift()
    product = ProductFactory(shop=gift.shop, promised_ship_hours=48)
    now = PAID + dt.timedelta(days=10)
    services.dispute_open(
        shop=gift.shop,
        actor=None,
        order_no="RET-1",
        paid_amount_fen=20_000,
        paid_at=PAID,
        product_id=product.pk,
        gift_id=gift.pk,
        signed_for_at=PAID + dt.timedelta(days=4),
        kind="return_gift_lost",
        now=now,
    )

    # When the hourly overdue job runs
    judged = services.gift_shipment_overdue_run(now=now)

    # Then no shipment was fabricated and nothing is judged late (GIFT-4.1 / 4.2)
    assert judged == 0 and not GiftShipment.objects.exists()
    assert not Violation.objects.filter(rule_id__in=["GIFT-4.1", "GIFT-4.2"]).exists()
    # and the order system's own posting of the order still makes its gifts due
    services.order_upsert(
        shop=gift.shop,
        order_no="RET-1",
        product=product,
        paid_amount_fen=20_000,
        paid_at=PAID,
        gift_lines=[(gift, 1)],
    )
    assert GiftShipment.objects.filter(order__order_no="RET-1", gift=gift).count() == 1


# --- GIFT-4.2: a shipment recorded after the overdue judgement ---------------------------------------

DUE = PAID + dt.timedelta(hours=48)


def _judged_not_shipped(shipment) -> Violation:
    assert services.gift_shipment_overdue_run(now=DUE + dt.timedelta(hours=1)) == 1
    return Violation.objects.get(source_key=f"shipment:{shipment.pk}:not_shipped")


@pytest.mark.parametrize("before_due", [dt.timedelta(hours=3), dt.timedelta(0)], ids=["before", "at-due"])
def test_gift_4_2_shipped_in_time_but_recorded_after_the_judgement_annuls_the_violation(shipment, before_due):
    # Given the hourly job judged the gift "not shipped" after its due time
    violation = _judged_not_shipped(shipment)
    assert violation.weight == 2 and violation.counted_weight == 2
    staff = UserFactory(is_staff=True)

    # When the shipment is recorded, with a shipping time not after the due time
    _, outcome = services.gift_shipment_mark_shipped(
        shipment=shipment, shipped_at=DUE - before_due, tracking_no="SF1", actor=staff
    )

    # Then the violation is kept as evidence but annulled, naming the shipment, when, why and who
    assert outcome is None and Violation.objects.count() == 1
    violation = Violation.objects.select_related("annulment").get(pk=violation.pk)
    annulment = violation.annulment
    assert (annulment.cause, annulment.shipment_id, annulment.annulled_by) == (
        "shipped_in_time",
        shipment.pk,
        staff,
    )
    assert annulment.reason.startswith("GIFT-4.2") and annulment.details["tracking_no"] == "SF1"
    assert annulment.details["due_by_at"] == DUE.isoformat()
    # and it counts for nothing: its weight is not counted
    assert violation.is_annulled and violation.counted_weight == 0 and violation.weight == 2
    # and the gift's history, the audit trail and the shop's inbox say so
    event = GiftEvent.objects.get(gift=shipment.gift, kind="violation_annulled")
    assert event.rule_id == "GIFT-4.2" and event.details["violation_id"] == violation.pk
    assert AuditEntry.objects.filter(
        action="gifts.violation_annul", object_id=str(violation.pk), actor=staff
    ).exists()
    note = Notification.objects.get(dedupe_key=f"gifts:violation-annulled:{violation.pk}")
    assert note.organization_id == shipment.gift.shop_id and "GIFT-4.2" in note.title


def test_gift_4_2_shipped_after_the_due_time_and_recorded_after_the_judgement_keeps_the_violation(shipment):
    violation = _judged_not_shipped(shipment)
    _, outcome = services.gift_shipment_mark_shipped(
        shipment=shipment, shipped_at=DUE + dt.timedelta(minutes=1), tracking_no="SF1"
    )
    assert outcome is None  # judged once: no second violation for the same lateness
    violation = Violation.objects.get()
    assert not violation.is_annulled and violation.counted_weight == 2
    assert not ViolationAnnulment.objects.exists()
    assert not GiftEvent.objects.filter(kind="violation_annulled").exists()


def test_gift_4_2_a_late_shipping_violation_is_not_annulled_by_anything_recorded_later(shipment):
    # Given a gift recorded as shipped late (the violation is about the shipping time itself)
    services.gift_shipment_mark_shipped(
        shipment=shipment, shipped_at=DUE + dt.timedelta(hours=5), tracking_no="SF1"
    )
    # When the overdue job runs afterwards, nothing changes
    assert services.gift_shipment_overdue_run(now=DUE + dt.timedelta(hours=6)) == 0
    assert not Violation.objects.get().is_annulled


def test_gift_4_2_annulment_when_the_judgement_recorded_no_violation_is_a_no_op(shipment):
    """GIFT-6.2: a not-shipped judgement before the rules took effect recorded nothing to annul."""
    RuleVersion.objects.all().delete()
    assert services.gift_shipment_overdue_run(now=DUE + dt.timedelta(hours=1)) == 1
    shipment, outcome = services.gift_shipment_mark_shipped(
        shipment=shipment, shipped_at=DUE - dt.timedelta(hours=1), tracking_no="SF1"
    )
    assert shipment.shipped_at and outcome is None and not ViolationAnnulment.objects.exists()
