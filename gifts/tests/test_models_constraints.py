"""Every database constraint of the gifts app refuses a bad row with IntegrityError, whatever
wrote it (admin, shell, a task): the services only make the error friendlier."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from gifts.models import (
    DisputeEvidence,
    DocumentRequest,
    GiftCategory,
    GiftDispute,
    GiftEvent,
    GiftShipment,
    Order,
    ProductGift,
    RuleVersion,
    SpotCheck,
    Violation,
    ViolationAnnulment,
)
from gifts.tests.factories import (
    GiftFactory,
    ProductFactory,
    QualificationFactory,
    UserFactory,
    approved_gift,
    order_for,
    rule_version,
)

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)


def refused(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_gift_2_3_category_needing_a_licence_names_it():
    refused(lambda: GiftCategory.objects.create(name="食品X", licence_required=True, licence_type=""))


def test_gift_6_2_rule_versions_never_overlap():
    refused(
        lambda: RuleVersion.objects.create(
            code="GIFT", version="dup", title="x", effective_from=dt.date(2023, 1, 1)
        )
    )


def test_rule_version_dates_ordered_and_unique():
    refused(
        lambda: RuleVersion.objects.create(
            code="OTHER",
            version="v1",
            title="x",
            effective_from=dt.date(2023, 1, 1),
            effective_to=dt.date(2022, 1, 1),
        )
    )
    refused(
        lambda: RuleVersion.objects.create(
            code="GIFT",
            version="2022-07-01",
            title="x",
            effective_from=dt.date(2001, 1, 1),
            effective_to=dt.date(2002, 1, 1),
        )
    )


def test_gift_state_and_ship_from_valid():
    refused(lambda: GiftFactory(state="bogus"))
    refused(lambda: GiftFactory(ship_from="moon", declared_value_fen=None, value_basis=""))


def test_gift_1_2_value_basis_follows_ship_from():
    refused(lambda: GiftFactory(ship_from="bonded", value_basis="merchant_declared"))
    refused(lambda: GiftFactory(ship_from="domestic", value_basis="customs_declared"))
    refused(lambda: GiftFactory(declared_value_fen=None, value_basis="customs_declared"))
    refused(lambda: GiftFactory(declared_value_fen=-1))


def test_gift_1_2_fair_value_records_who_when_why():
    refused(lambda: GiftFactory(fair_value_fen=100))
    refused(lambda: GiftFactory(fair_value_overrides_declared=True))


def test_gift_2_4_approved_near_expiry_gift_has_its_date():
    refused(lambda: GiftFactory(state="approved", near_expiry=True, expiry_date=None))


def test_gift_quantity_positive():
    refused(lambda: GiftFactory(quantity_per_order=0))


def test_gift_4_3_domestic_approval_only_on_domestic_gifts():
    refused(lambda: GiftFactory(domestic_shipping_approved=True))


def test_product_state_and_ship_hours():
    refused(lambda: ProductFactory(state="bogus"))
    refused(lambda: ProductFactory(promised_ship_hours=0))


def test_gift_2_1_trigger_refuses_attaching_a_gift_not_approved():
    gift = GiftFactory(state="submitted")
    product = ProductFactory(shop=gift.shop)
    refused(lambda: ProductGift.objects.create(product=product, gift=gift, attached_by=gift.created_by))


def test_gift_2_1_trigger_refuses_attaching_another_shops_gift():
    gift = approved_gift()
    product = ProductFactory()
    refused(lambda: ProductGift.objects.create(product=product, gift=gift, attached_by=gift.created_by))


def test_product_gift_attached_once():
    gift = approved_gift()
    product = ProductFactory(shop=gift.shop)
    ProductGift.objects.create(product=product, gift=gift, attached_by=gift.created_by)
    refused(lambda: ProductGift.objects.create(product=product, gift=gift, attached_by=gift.created_by))


def test_qualification_constraints():
    refused(
        lambda: QualificationFactory(state="approved", licence_number="", valid_until=dt.date(2030, 1, 1))
    )
    refused(lambda: QualificationFactory(state="approved", licence_number="X1", valid_until=None))
    refused(lambda: QualificationFactory(state="rejected", reject_reason=""))
    refused(lambda: QualificationFactory(state="bogus"))
    # GIFT-2.3: a revoked licence says when and why
    refused(lambda: QualificationFactory(state="revoked", revoke_reason="吊销", revoked_at=None))
    refused(lambda: QualificationFactory(state="revoked", revoke_reason="", revoked_at=T0))
    QualificationFactory(state="revoked", revoke_reason="吊销", revoked_at=T0)
    refused(lambda: QualificationFactory(content_type="application/x-executable"))
    q = QualificationFactory()
    refused(lambda: QualificationFactory(storage_name=q.storage_name))


def test_gift_3_one_open_document_request_per_gift_and_fulfilled_has_document():
    gift = approved_gift()
    user = UserFactory()
    DocumentRequest.objects.create(gift=gift, reason="r", deadline_at=T0, requested_by=user)
    refused(lambda: DocumentRequest.objects.create(gift=gift, reason="r2", deadline_at=T0, requested_by=user))
    refused(
        lambda: DocumentRequest.objects.create(
            gift=approved_gift(), reason="r", deadline_at=T0, requested_by=user, state="fulfilled"
        )
    )


def test_order_constraints():
    product = ProductFactory()
    refused(lambda: order_for(product, paid_amount_fen=-1))
    refused(
        lambda: Order.objects.create(
            order_no="X",
            shop=product.shop,
            product=product,
            paid_amount_fen=1,
            paid_at=T0,
            ship_by_at=T0 - dt.timedelta(hours=1),
        )
    )
    order_for(product, order_no="SAME")
    refused(lambda: order_for(product, order_no="SAME"))


def test_shipment_constraints():
    gift = approved_gift()
    order = order_for(ProductFactory(shop=gift.shop))
    refused(lambda: GiftShipment.objects.create(order=order, gift=gift, quantity=0))
    refused(lambda: GiftShipment.objects.create(order=order, gift=gift, shipped_at=T0, tracking_no=""))
    GiftShipment.objects.create(order=order, gift=gift)
    refused(lambda: GiftShipment.objects.create(order=order, gift=gift))


def _violation(**kw):
    gift = kw.pop("gift") if "gift" in kw else approved_gift()
    defaults = {
        "shop": gift.shop if gift else None,
        "rule_id": "GIFT-4.2",
        "rule_version": rule_version(),
        "violation_type": "违背承诺",
        "gift": gift,
        "occurred_at": T0,
        "source_key": f"k{Violation.objects.count()}",
    }
    defaults.update(kw)
    return Violation.objects.create(**defaults)


def test_gift_4_2_violation_annulment_constraints_and_append_only():
    gift = approved_gift()
    shipment = GiftShipment.objects.create(order=order_for(ProductFactory(shop=gift.shop)), gift=gift)
    v = _violation(gift=gift)

    def annul(**kw):
        row = {
            "violation": v,
            "cause": "shipped_in_time",
            "reason": "按时发货",
            "shipment": shipment,
            "annulled_at": T0,
        }
        row.update(kw)
        return ViolationAnnulment.objects.create(**row)

    refused(lambda: annul(cause="mercy"))
    refused(lambda: annul(reason=""))
    refused(lambda: annul(shipment=None))  # shipped in time: names the shipment
    a = annul()
    refused(lambda: annul())  # a violation is annulled once
    with pytest.raises(Exception), transaction.atomic():  # pgtrigger Protect: append-only
        ViolationAnnulment.objects.filter(pk=a.pk).update(reason="edited")
    with pytest.raises(Exception), transaction.atomic():
        ViolationAnnulment.objects.filter(pk=a.pk).delete()


def test_violation_constraints_and_append_only():
    refused(lambda: _violation(gift=None, shop=approved_gift().shop, source_key="no-subject"))
    refused(lambda: _violation(weight=4))
    v = _violation(source_key="once")
    refused(lambda: _violation(source_key="once"))
    with pytest.raises(Exception), transaction.atomic():  # pgtrigger Protect: append-only
        Violation.objects.filter(pk=v.pk).update(penalty_note="edited")
    with pytest.raises(Exception), transaction.atomic():
        Violation.objects.filter(pk=v.pk).delete()


def test_spot_check_constraints():
    gift = approved_gift()
    user = UserFactory()
    refused(lambda: SpotCheck.objects.create(gift=gift, outcome="bogus", checked_by=user, checked_at=T0))
    v = _violation(gift=gift, rule_id="GIFT-3.1")
    refused(
        lambda: SpotCheck.objects.create(
            gift=gift, outcome="qualified", checked_by=user, checked_at=T0, violation=v
        )
    )


def _dispute(**kw):
    gift = kw.pop("gift", None) or approved_gift()
    order = kw.pop("order", None) or order_for(ProductFactory(shop=gift.shop))
    defaults = {
        "order": order,
        "gift": gift,
        "shop": gift.shop,
        "kind": "not_delivered",
        "state": "awaiting_merchant",
        "opened_at": T0,
        "response_deadline_at": T0 + dt.timedelta(hours=48),
    }
    defaults.update(kw)
    return GiftDispute.objects.create(**defaults)


def test_dispute_constraints():
    refused(lambda: _dispute(kind="bogus"))
    refused(lambda: _dispute(state="bogus"))
    refused(lambda: _dispute(state="decided", decision=""))
    refused(lambda: _dispute(compensation_fen=-1))
    refused(lambda: _dispute(response_deadline_at=T0))
    d = _dispute()
    refused(lambda: _dispute(order=d.order, gift=d.gift))
    refused(
        lambda: DisputeEvidence.objects.create(
            dispute=d,
            storage_name="x",
            original_name="a.exe",
            content_type="application/x-dosexec",
            size_bytes=1,
            sha256="0",
            uploaded_by=UserFactory(),
        )
    )


def test_gift_5_3_one_gift_on_one_order_is_compensated_once_in_the_database():
    upheld = {"state": "decided", "decision": "upheld", "decided_at": T0}
    paid = _dispute(**upheld, compensation_fen=8_800)
    same = {"order": paid.order, "gift": paid.gift}
    refused(lambda: _dispute(**same, kind="not_as_described", **upheld, compensation_fen=8_800))
    # dismissed, or upheld without payment (a ¥0 gift), is no second compensation
    _dispute(
        **same,
        kind="not_as_described",
        state="decided",
        decision="dismissed",
        decided_at=T0,
        compensation_fen=0,
    )
    _dispute(**same, kind="return_gift_lost", **upheld, compensation_fen=0, refund_deduction_fen=8_800)


def test_gift_5_3_the_constraints_migration_names_gifts_already_paid_twice_instead_of_failing_bare():
    import importlib

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("gifts.migrations.0005_dispute_compensated_once")
    constraint = next(
        c for c in GiftDispute._meta.constraints if c.name == "gifts_giftdispute_compensated_once"
    )
    upheld = {"state": "decided", "decision": "upheld", "decided_at": T0}
    paid = _dispute(**upheld, compensation_fen=8_800)
    migration.refuse_gifts_paid_twice(apps, None)  # one payment: nothing to say
    with connection.schema_editor() as editor:  # the database as the old code left it
        editor.remove_constraint(GiftDispute, constraint)
    _dispute(order=paid.order, gift=paid.gift, kind="not_as_described", **upheld, compensation_fen=8_800)
    with pytest.raises(RuntimeError, match=rf"GIFT-5\.3.*\({paid.order_id}, {paid.gift_id}\)"):
        migration.refuse_gifts_paid_twice(apps, None)


def test_gift_5_4_only_an_upheld_dispute_deducts_from_the_refund_in_the_database():
    decided = {"kind": "return_gift_lost", "state": "decided", "decided_at": T0}
    refused(lambda: _dispute(**decided, decision="dismissed", refund_deduction_fen=8_800))
    _dispute(**decided, decision="dismissed", refund_deduction_fen=0)
    _dispute(**decided, decision="upheld", refund_deduction_fen=8_800)


def test_gift_5_4_units_returned_intact_are_0_to_the_units_promised_in_the_database():
    ret = {"kind": "return_gift_lost"}
    refused(lambda: _dispute(**ret, units_promised=3, units_returned_intact=4))
    refused(lambda: _dispute(**ret, units_promised=3, units_returned_intact=-1))
    refused(lambda: _dispute(**ret, units_promised=None, units_returned_intact=1))
    refused(lambda: _dispute(**ret, units_promised=0))
    refused(lambda: _dispute(kind="not_delivered", units_promised=3, units_returned_intact=1))
    _dispute(**ret, units_promised=3, units_returned_intact=3)
    _dispute(**ret, units_promised=3, units_returned_intact=0)
    _dispute(kind="return_merchant_fault", units_promised=3, units_returned_intact=2)
    _dispute(**ret)  # not stated, as on every dispute recorded before the columns


def test_gift_events_are_append_only_and_have_a_subject():
    gift = approved_gift()
    refused(lambda: GiftEvent.objects.create(shop=gift.shop, kind="x", at=T0))
    e = GiftEvent.objects.create(shop=gift.shop, gift=gift, kind="x", at=T0)
    with pytest.raises(Exception), transaction.atomic():
        GiftEvent.objects.filter(pk=e.pk).update(kind="y")
    with pytest.raises(Exception), transaction.atomic():
        GiftEvent.objects.filter(pk=e.pk).delete()


def test_every_kind_of_gift_event_the_services_write_has_a_label():
    """The shop's event log shows labels; a kind the services write without one shows as code."""
    import ast
    from pathlib import Path

    import gifts.services

    tree = ast.parse(Path(gifts.services.__file__).read_text(encoding="utf-8"))
    written = {
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("_event", "_move")
        for kw in node.keywords
        if kw.arg == "kind" and isinstance(kw.value, ast.Constant)
    }
    assert {"gift_detached", "shipment_ship_by_agreed"} <= written  # the walk finds the calls
    assert sorted(written - set(GiftEvent.KIND_LABELS)) == []


def test_order_number_is_unique_per_shop_only():
    """gifts_order_no_unique_per_shop: one shop never records a number twice; two shops may."""
    product = ProductFactory()
    order_for(product, order_no="DY-7")
    order_for(ProductFactory(), order_no="DY-7")  # another shop's order with the same number
    with pytest.raises(IntegrityError), transaction.atomic():
        order_for(ProductFactory(shop=product.shop), order_no="DY-7")


def test_gift_2_1_one_gift_per_shop_and_request_key():
    first = GiftFactory(request_key="k-1")
    GiftFactory(request_key="k-1")  # another shop: its own keys
    GiftFactory(shop=first.shop, request_key=None)
    GiftFactory(shop=first.shop, request_key=None)  # no key: no limit
    refused(lambda: GiftFactory(shop=first.shop, request_key="k-1"))


def test_one_product_per_shop_and_request_key():
    first = ProductFactory(request_key="k-1")
    ProductFactory(request_key="k-1")  # another shop: its own keys
    ProductFactory(shop=first.shop, request_key=None)
    ProductFactory(shop=first.shop, request_key=None)  # no key: no limit
    refused(lambda: ProductFactory(shop=first.shop, request_key="k-1"))


def test_gift_2_3_one_licence_per_shop_and_request_key():
    first = QualificationFactory(request_key="k-1")
    QualificationFactory(request_key="k-1")  # another shop: its own keys
    QualificationFactory(shop=first.shop, request_key=None)
    QualificationFactory(shop=first.shop, request_key=None)  # no key: no limit
    refused(lambda: QualificationFactory(shop=first.shop, request_key="k-1"))
