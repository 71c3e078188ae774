import datetime as dt
import io

import factory
from django.core.files.uploadedfile import SimpleUploadedFile
from factory.django import DjangoModelFactory

from gifts.models import Gift, GiftCategory, Order, Product, Qualification, RuleVersion
from portal.models import Organization
from portal.tests.factories import OrganizationFactory, UserFactory, main_member, sub_member  # noqa: F401


class CategoryFactory(DjangoModelFactory):
    class Meta:
        model = GiftCategory
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"类目{n}")


def food_category():
    return CategoryFactory(name="食品", licence_required=True, licence_type="食品经营许可证")


def prohibited_category():
    return CategoryFactory(name="电子烟", is_prohibited=True)


class GiftFactory(DjangoModelFactory):
    """A complete cross-border gift (every GIFT-2.4 element stated), in draft."""

    class Meta:
        model = Gift

    shop = factory.SubFactory(OrganizationFactory, kind=Organization.Kind.SHOP)
    name = factory.Sequence(lambda n: f"旅行装面霜{n}")
    brand = "Lancome/兰蔻"
    category = factory.SubFactory(CategoryFactory)
    kind = "护肤品"
    spec = "15ml"
    quantity_per_order = 1
    ship_from = Gift.ShipFrom.BONDED
    declared_value_fen = 8_800
    value_basis = Gift.ValueBasis.CUSTOMS_DECLARED
    created_by = factory.SubFactory(UserFactory)


def approved_gift(**kwargs) -> Gift:
    return GiftFactory(state=Gift.State.APPROVED, **kwargs)


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    shop = factory.SubFactory(OrganizationFactory, kind=Organization.Kind.SHOP)
    title = factory.Sequence(lambda n: f"进口精华液 30ml 第{n}款")
    subtitle = "保税仓发货"
    promised_ship_hours = 48


def open_dispute(gift: Gift, *, now=None):
    """A 'not delivered' dispute on the gift's order P<gift id>, through the service (GIFT-5)."""
    from gifts import services

    dispute, _ = services.dispute_open(
        shop=gift.shop,
        actor=None,
        order_no=f"P{gift.pk}",
        paid_amount_fen=10_000,
        paid_at=None,
        product_id=ProductFactory(shop=gift.shop).pk,
        gift_id=gift.pk,
        signed_for_at=None,
        kind="not_delivered",
        now=now,
    )
    return dispute


class QualificationFactory(DjangoModelFactory):
    class Meta:
        model = Qualification

    shop = factory.SubFactory(OrganizationFactory, kind=Organization.Kind.SHOP)
    licence_type = "食品经营许可证"
    storage_name = factory.Sequence(lambda n: f"gifts/qualifications/test/{n}.pdf")
    original_name = "licence.pdf"
    content_type = "application/pdf"
    size_bytes = 100
    sha256 = "0" * 64
    uploaded_by = factory.SubFactory(UserFactory)


def valid_licence(shop, *, valid_until=None, licence_type="食品经营许可证") -> Qualification:
    return QualificationFactory(
        shop=shop,
        licence_type=licence_type,
        state=Qualification.State.APPROVED,
        licence_number="JY13101010000001",
        valid_until=valid_until or dt.date(2099, 12, 31),
    )


def order_for(product, *, paid_amount_fen=10_000, paid_at=None, order_no=None, **kwargs) -> Order:
    paid_at = paid_at or dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
    return Order.objects.create(
        order_no=order_no or f"O{Order.objects.count() + 1:08d}",
        shop=product.shop,
        product=product,
        paid_amount_fen=paid_amount_fen,
        paid_at=paid_at,
        ship_by_at=paid_at + dt.timedelta(hours=product.promised_ship_hours),
        **kwargs,
    )


def annulled_not_shipped_violation(shop):
    """A gift the overdue job judged 'not shipped' whose shipment, recorded afterwards, left by its
    due time: the violation is annulled (GIFT-4.2). Returns the violation."""
    from gifts import services

    paid = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
    gift = GiftFactory(shop=shop, state=Gift.State.APPROVED, declared_value_fen=50_000)
    order = services.order_upsert(
        shop=shop,
        order_no=f"AN{gift.pk}",
        product=ProductFactory(shop=shop, promised_ship_hours=48),
        paid_amount_fen=20_000,
        paid_at=paid,
        gift_lines=[(gift, 1)],
    )
    services.gift_shipment_overdue_run(now=paid + dt.timedelta(hours=50))
    services.gift_shipment_mark_shipped(
        shipment=order.gift_shipments.get(), shipped_at=paid + dt.timedelta(hours=47), tracking_no="SF9"
    )
    return gift.violations.select_related("annulment").get()


def rule_version() -> RuleVersion:
    return RuleVersion.objects.get(code="GIFT", version="2022-07-01")


def pdf_bytes() -> bytes:
    """A small, real PDF made with reportlab."""
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.drawString(72, 720, "Food business licence JY13101010000001")
    c.save()
    return buf.getvalue()


PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82"
)
ELF_BYTES = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200


def upload(name="licence.pdf", content=None, content_type="application/pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(
        name, content if content is not None else pdf_bytes(), content_type=content_type
    )
