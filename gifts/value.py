"""GIFT-1.2: the gift's value for every rule is resolved here and nowhere else.

- shipped cross-border (overseas / bonded) → the customs-declared value;
- shipped domestically → the value the merchant declared in advance, unless staff found it
  clearly off the market and set a fair value that overrides it;
- undeclared → the fair market value staff set (with who, when and why);
- otherwise the value is unknown (``amount_fen is None``): it "cannot be assessed".

Quantity (GIFT-2.4). The listing states the gift's kind, spec, quantity and value as separate
elements, and a customs declaration values one unit of a spec; the declared and fair values are
therefore the value of one unit (``gift_value_resolve``). What a consumer is promised is that
unit as many times as the quantity promised, so every rule that weighs "the gift's value" uses
``gift_value_promised``: the lottery cap (GIFT-2.7, the quantity per order a winner receives),
compensation and refund deductions (GIFT-5.2..5.4, the quantity due on that order) and the
weight of a shipping breach (GIFT-4.2). Reading the stated value as one unit's is also the
reading in the consumer's favour that GIFT-2.4 asks for when a listing is ambiguous.
"""

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext_lazy as _

from gifts.models import Gift, GiftShipment

# What pages and admin show for a basis (the codes are for the API and stored figures).
BASIS_LABELS = {
    "customs_declared": Gift.ValueBasis.CUSTOMS_DECLARED.label,
    "merchant_declared": Gift.ValueBasis.MERCHANT_DECLARED.label,
    "fair_value": _("市场公允价值"),
    "unknown": _("无法评估"),
}


def value_basis_label(basis: str) -> str:
    return BASIS_LABELS.get(basis, basis)


@dataclass(frozen=True)
class ResolvedValue:
    amount_fen: int | None
    basis: str  # customs_declared | merchant_declared | fair_value | unknown
    rule: str = "GIFT-1.2"

    @property
    def known(self) -> bool:
        return self.amount_fen is not None

    @property
    def basis_label(self) -> str:
        return value_basis_label(self.basis)

    def as_dict(self) -> dict:
        return {"amount_fen": self.amount_fen, "basis": self.basis, "rule": self.rule}


def gift_value_resolve(gift: Gift) -> ResolvedValue:
    declared = gift.declared_value_fen
    if declared is not None and gift.value_basis == Gift.ValueBasis.CUSTOMS_DECLARED:
        return ResolvedValue(declared, "customs_declared")
    if declared is not None and gift.value_basis == Gift.ValueBasis.MERCHANT_DECLARED:
        if gift.fair_value_overrides_declared and gift.fair_value_fen is not None:
            return ResolvedValue(gift.fair_value_fen, "fair_value")
        return ResolvedValue(declared, "merchant_declared")
    if gift.fair_value_fen is not None:
        return ResolvedValue(gift.fair_value_fen, "fair_value")
    return ResolvedValue(None, "unknown")


@dataclass(frozen=True)
class PromisedValue:
    """The value of what was promised: one unit's value (GIFT-1.2) times the quantity (GIFT-2.4)."""

    unit: ResolvedValue
    quantity: int
    quantity_source: str  # order (the order's gift line) | listing (quantity per order) | unstated

    @property
    def amount_fen(self) -> int | None:
        return None if self.unit.amount_fen is None else self.unit.amount_fen * self.quantity

    @property
    def known(self) -> bool:
        return self.unit.known

    @property
    def basis(self) -> str:
        return self.unit.basis

    def as_dict(self) -> dict:
        return {
            "amount_fen": self.amount_fen,
            "unit_value_fen": self.unit.amount_fen,
            "quantity": self.quantity,
            "quantity_source": self.quantity_source,
            "basis": self.unit.basis,
            "rule": "GIFT-1.2/GIFT-2.4",
        }


def gift_value_promised(gift: Gift, *, quantity: int | None = None) -> PromisedValue:
    """``quantity`` is what one order is due (its gift line); without it, the listing's quantity
    per order. A quantity never stated counts as one unit: a gift was promised, no more is known."""
    if quantity is not None:
        return PromisedValue(gift_value_resolve(gift), quantity, "order")
    if gift.quantity_per_order:
        return PromisedValue(gift_value_resolve(gift), gift.quantity_per_order, "listing")
    return PromisedValue(gift_value_resolve(gift), 1, "unstated")


LOOK_UP = object()


def gift_line_quantity(*, order_field: str = "order_id", gift_field: str = "gift_id") -> Subquery:
    """The quantity of the gift line (shipment) of a row's order and gift, as an annotation: a
    list computes every row's value in its one query (see ``gift_value_on_order``)."""
    lines = GiftShipment.objects.filter(order_id=OuterRef(order_field), gift_id=OuterRef(gift_field))
    return Subquery(lines.values("quantity")[:1])


def gift_value_on_order(gift: Gift, *, order_id: int, line_quantity=LOOK_UP) -> PromisedValue:
    """The gift's value on one order: the quantity its gift line (shipment) is due, else the
    listing's quantity per order (a dispute may arrive before the order system posts the line).
    ``line_quantity`` is that line's quantity when the caller has read it already (``None``: the
    order has no line for the gift)."""
    if line_quantity is LOOK_UP:
        line_quantity = (
            GiftShipment.objects.filter(order_id=order_id, gift_id=gift.pk)
            .values_list("quantity", flat=True)
            .first()
        )
    return gift_value_promised(gift, quantity=line_quantity)


def value_basis_for(ship_from: str, declared_value_fen: int | None) -> str:
    """The basis a declared value has, given where the gift ships from (GIFT-1.2)."""
    if declared_value_fen is None or not ship_from:
        return Gift.ValueBasis.NONE
    if ship_from in Gift.CROSS_BORDER:
        return Gift.ValueBasis.CUSTOMS_DECLARED
    return Gift.ValueBasis.MERCHANT_DECLARED
