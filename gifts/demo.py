# ruff: noqa: RUF001
"""Gifts demo data for seed_demo (idempotent: keyed by names and order numbers)."""

import datetime as dt

from django.db import transaction

from gifts import services
from gifts.models import (
    Gift,
    GiftCategory,
    GiftDispute,
    GiftShipment,
    Order,
    Product,
    ProductGift,
    RuleVersion,
)
from portal import clock
from portal import demo as portal_demo

CATEGORIES = [
    # name, prohibited, licence type
    ("食品", False, "食品经营许可证"),
    ("化妆品", False, ""),
    ("母婴用品", False, ""),
    ("电子烟", True, ""),
    ("处方药", True, ""),
]


@transaction.atomic
def seed() -> None:
    cats = {}
    for name, prohibited, licence in CATEGORIES:
        cats[name], _ = GiftCategory.objects.get_or_create(
            name=name,
            defaults={
                "is_prohibited": prohibited,
                "licence_required": bool(licence),
                "licence_type": licence,
            },
        )
    RuleVersion.objects.get_or_create(
        code="GIFT",
        version="2022-07-01",
        defaults={"title": "【全球购】赠品管理规范", "effective_from": dt.date(2022, 7, 1)},
    )
    shop = portal_demo.organization("shop")
    owner = portal_demo.user("shop")
    now = clock.now()

    def gift(name, **fields):
        defaults = {
            "brand": "Lancome/兰蔻",
            "category": cats["化妆品"],
            "kind": "护肤品",
            "spec": "15ml",
            "quantity_per_order": 1,
            "ship_from": Gift.ShipFrom.BONDED,
            "declared_value_fen": 8_800,
            "value_basis": Gift.ValueBasis.CUSTOMS_DECLARED,
            "created_by": owner,
            **fields,
        }
        obj, _ = Gift.objects.get_or_create(shop=shop, name=name, defaults=defaults)
        return obj

    approved = gift(
        "兰蔻小黑瓶旅行装 7ml", state=Gift.State.APPROVED, submitted_at=now - dt.timedelta(days=3)
    )
    gift(
        "雅诗兰黛眼霜小样 5ml",
        brand="Estee Lauder/雅诗兰黛",
        state=Gift.State.SUBMITTED,
        submitted_at=now - dt.timedelta(hours=20),
    )
    gift(
        "澳洲坚果礼盒",
        brand="Macadamia/澳坚",
        category=cats["食品"],
        kind="坚果",
        spec="200g",
        declared_value_fen=5_900,
        near_expiry=True,
        expiry_date=clock.today() + dt.timedelta(days=40),
        state=Gift.State.SUBMITTED,
        submitted_at=now - dt.timedelta(hours=2),
    )
    gift(
        "国内仓化妆棉",
        brand="Muji/无印良品",
        spec="80片",
        ship_from=Gift.ShipFrom.DOMESTIC,
        value_basis=Gift.ValueBasis.MERCHANT_DECLARED,
        declared_value_fen=1_500,
        state=Gift.State.DRAFT,
    )

    product, _ = Product.objects.get_or_create(
        shop=shop,
        title="法国进口修护精华液 50ml",
        defaults={
            "subtitle": "保税仓直发 正品保障",
            "promised_ship_hours": 48,
            "state": Product.State.LISTED,
        },
    )
    if not ProductGift.objects.filter(product=product, gift=approved).exists():
        ProductGift.objects.create(product=product, gift=approved, attached_by=owner)

    order, created = Order.objects.get_or_create(
        shop=shop,
        order_no="DY-DEMO-0001",
        defaults={
            "product": product,
            "paid_amount_fen": 39_900,
            "paid_at": now - dt.timedelta(days=4),
            "ship_by_at": now - dt.timedelta(days=2),
            "signed_for_at": now - dt.timedelta(days=1),
        },
    )
    GiftShipment.objects.get_or_create(order=order, gift=approved, defaults={"quantity": 1})
    dispute, created = GiftDispute.objects.get_or_create(
        order=order,
        gift=approved,
        kind=GiftDispute.Kind.NOT_DELIVERED,
        defaults={
            "shop": shop,
            "consumer_claim": "下单页面写明赠送旅行装，签收后未见赠品。",
            "state": GiftDispute.State.AWAITING_MERCHANT,
            "opened_at": now,
            "response_deadline_at": now + dt.timedelta(hours=48),
        },
    )
    if created:
        calc = services.dispute_preview(dispute)
        dispute.calculation = calc.as_dict()
        dispute.return_shipping_payer = calc.return_shipping_payer
        dispute.save(update_fields=["calculation", "return_shipping_payer"])
