"""GIFT-1.2: the gift's value for every rule is resolved here and nowhere else.

- shipped cross-border (overseas / bonded) → the customs-declared value;
- shipped domestically → the value the merchant declared in advance, unless staff found it
  clearly off the market and set a fair value that overrides it;
- undeclared → the fair market value staff set (with who, when and why);
- otherwise the value is unknown (``amount_fen is None``): it "cannot be assessed".
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from gifts.models import Gift

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


def value_basis_for(ship_from: str, declared_value_fen: int | None) -> str:
    """The basis a declared value has, given where the gift ships from (GIFT-1.2)."""
    if declared_value_fen is None or not ship_from:
        return Gift.ValueBasis.NONE
    if ship_from in Gift.CROSS_BORDER:
        return Gift.ValueBasis.CUSTOMS_DECLARED
    return Gift.ValueBasis.MERCHANT_DECLARED
