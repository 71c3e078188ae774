# ruff: noqa: RUF001
"""GIFT-5 compensation calculator: a pure function of the dispute kind, the gift's resolved value
(GIFT-1.2) and the order's actual paid amount. It names the rule and every figure it used, so the
reviewer, the merchant and the consumer read the same reasoning.

The gift's value is one unit's value times the quantity due on the order (GIFT-2.4, ``gifts.value``):
a listing that promises three units and delivers none owes three units' value.

- GIFT-5.2 merchant lacks the licence → the consumer gets the gift's value back.
- GIFT-5.3 gift not provided as agreed → the gift's value; value undeclared and unassessable →
  30% of the order's actual paid amount, rounded half-up to the fen, clamped to ¥20..¥500.
- GIFT-5.4 return with the gift lost or damaged through the consumer → the return goes ahead and
  the merchant may deduct the gift's declared or fair value from the refund; consumer's fault, so
  the consumer pays return shipping. A return caused by the merchant → the merchant pays it.
  Of a gift of several units some may come back intact: only the units not returned intact are
  deducted (``units_returned_intact``; not stated → none, the whole gift's value).
- GIFT-5.5 product refunded through the merchant's fault, or a gift that by nature cannot be
  returned → the gift's return is settled between merchant and consumer (协商处理).
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext as _

from gifts.models import GiftDispute
from portal.money import round_half_up

FALLBACK_RATE = Decimal("0.30")
FALLBACK_MIN_FEN = 2_000  # ¥20
FALLBACK_MAX_FEN = 50_000  # ¥500


@dataclass(frozen=True)
class Compensation:
    rule: str
    kind: str
    compensation_fen: int | None = None  # paid to the consumer
    refund_deduction_fen: int | None = None  # the merchant may keep back from the refund
    return_shipping_payer: str = ""  # merchant | consumer | ""
    settle_between_parties: bool = False
    needs_fair_value: bool = False  # GIFT-1.2: staff must assess the value first
    figures: dict = field(default_factory=dict)
    explanation: str = ""

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "compensation_fen": self.compensation_fen,
            "refund_deduction_fen": self.refund_deduction_fen,
            "return_shipping_payer": self.return_shipping_payer,
            "settle_between_parties": self.settle_between_parties,
            "needs_fair_value": self.needs_fair_value,
            "figures": self.figures,
            "explanation": self.explanation,
        }


def fallback_compensation_fen(paid_amount_fen: int) -> int:
    """GIFT-5.3: 30% of the actual paid amount, half-up to the fen, then clamped to ¥20..¥500."""
    raw = round_half_up(Decimal(paid_amount_fen) * FALLBACK_RATE)
    return max(FALLBACK_MIN_FEN, min(FALLBACK_MAX_FEN, raw))


def units_returned_intact_in_range(units_returned_intact: int | None, quantity: int) -> bool:
    """GIFT-5.4: a return counts 0 up to the units due on the order as intact (None: not stated)."""
    return units_returned_intact is None or 0 <= units_returned_intact <= quantity


def compensation_calculate(
    *,
    kind: str,
    unit_value_fen: int | None,
    value_basis: str,
    paid_amount_fen: int,
    quantity: int = 1,
    units_returned_intact: int | None = None,
) -> Compensation:
    """``unit_value_fen`` is one unit's value (None: cannot be assessed), ``quantity`` the units
    due on the order; the gift's value is their product (GIFT-2.4). ``units_returned_intact`` is,
    for a return, how many of those units came back intact (None: not stated)."""
    if quantity < 1:
        raise ValueError(f"GIFT-2.4: a gift is promised in a quantity of at least 1, not {quantity}")
    if units_returned_intact is not None and kind not in GiftDispute.RETURN_KINDS:
        raise ValueError(f"GIFT-5.4: units returned intact only apply to a return, not {kind!r}")
    if not units_returned_intact_in_range(units_returned_intact, quantity):
        raise ValueError(
            f"GIFT-5.4: {units_returned_intact} units returned intact is outside 0..{quantity} promised"
        )
    gift_value_fen = None if unit_value_fen is None else unit_value_fen * quantity
    figures = {
        "gift_value_fen": gift_value_fen,
        "unit_value_fen": unit_value_fen,
        "quantity": quantity,
        "value_basis": value_basis,
        "paid_amount_fen": paid_amount_fen,
    }
    if kind in ("not_delivered", "not_as_described"):
        if gift_value_fen is not None:
            return Compensation(
                rule="GIFT-5.3",
                kind=kind,
                compensation_fen=gift_value_fen,
                figures=figures,
                explanation=_("按赠品价值赔付 (gift value)"),
            )
        raw = round_half_up(Decimal(paid_amount_fen) * FALLBACK_RATE)
        amount = fallback_compensation_fen(paid_amount_fen)
        return Compensation(
            rule="GIFT-5.3",
            kind=kind,
            compensation_fen=amount,
            figures={
                **figures,
                "rate": str(FALLBACK_RATE),
                "thirty_percent_fen": raw,
                "min_fen": FALLBACK_MIN_FEN,
                "max_fen": FALLBACK_MAX_FEN,
            },
            explanation=_("赠品价值未声明且无法评估：订单实付金额的30%，最低20元，最高500元"),
        )
    if kind == "lacks_licence":
        if gift_value_fen is None:
            return Compensation(
                rule="GIFT-5.2",
                kind=kind,
                needs_fair_value=True,
                figures=figures,
                explanation=_("需先由平台评估赠品市场公允价值 (GIFT-1.2)"),
            )
        return Compensation(
            rule="GIFT-5.2",
            kind=kind,
            compensation_fen=gift_value_fen,
            figures=figures,
            explanation=_("按赠品价值退还相应价款"),
        )
    if kind in GiftDispute.RETURN_KINDS:
        figures["units_returned_intact"] = units_returned_intact
    if kind == "return_gift_lost":
        # Consumer's fault: only the units that did not come back intact are deducted; not stated
        # counts as none intact (the whole gift's value), as before units were recorded.
        units_not_intact = quantity - (units_returned_intact or 0)
        figures["units_not_returned_intact"] = units_not_intact
        if units_not_intact == 0:
            deduction = 0  # all came back intact: nothing to deduct, whatever the value
        else:
            deduction = None if unit_value_fen is None else unit_value_fen * units_not_intact
        return Compensation(
            rule="GIFT-5.4",
            kind=kind,
            refund_deduction_fen=deduction,
            return_shipping_payer="consumer",
            needs_fair_value=deduction is None,
            figures=figures,
            explanation=_("商家不得拒绝退货，可在退款时扣除赠品声明价值或市场公允价值"),
        )
    if kind == "return_merchant_fault":
        return Compensation(
            rule="GIFT-5.5",
            kind=kind,
            return_shipping_payer="merchant",
            settle_between_parties=True,
            figures=figures,
            explanation=_("因商家原因退货：退货运费由商家承担 (GIFT-5.4)，赠品退货由商家与消费者协商处理"),
        )
    if kind == "gift_not_returnable":
        return Compensation(
            rule="GIFT-5.5",
            kind=kind,
            settle_between_parties=True,
            figures=figures,
            explanation=_("赠品依其性质不适宜退货：由商家与消费者协商处理"),
        )
    raise ValueError(f"unknown dispute kind {kind!r}")
