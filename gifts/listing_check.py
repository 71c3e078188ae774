# ruff: noqa: RUF001, RUF002
"""Listing check (GIFT-2.1..2.7, GIFT-4.3): every finding about a product listing and its gifts,
each naming its rule. The shop's pre-check (page and API), publishing and the reviewers' admin
all call ``listing_check`` so they can never disagree.
"""

import re
import unicodedata
from dataclasses import asdict, dataclass

from django.utils.translation import gettext as _

from gifts import selectors
from gifts.models import LOTTERY_VALUE_CAP_FEN, Gift
from gifts.value import PromisedValue, gift_value_promised, gift_value_resolve
from portal import clock
from portal.money import format_fen

BRAND_SEPARATORS = re.compile(r"[/|,，、;；]")


@dataclass(frozen=True)
class Finding:
    rule: str
    code: str
    message: str
    gift_id: int | None = None
    field: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def normalize_text(text: str) -> str:
    """Case-, width- and space-insensitive form: NFKC folds full-width Latin (ＡＢＣ) and
    ideographic spaces to ASCII, casefold() lowers case, then every whitespace is dropped."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return "".join(ch for ch in folded if not ch.isspace())


def brand_aliases(brand: str) -> list[str]:
    """A brand may be registered under several names ("兰蔻/Lancome"); each one counts."""
    names = (normalize_text(part) for part in BRAND_SEPARATORS.split(brand or ""))
    return [name for name in names if name]


def text_names_brand(text: str, brand: str) -> bool:
    haystack = normalize_text(text)
    return any(alias in haystack for alias in brand_aliases(brand))


def gift_findings(gift: Gift, *, today=None) -> list[Finding]:
    """Findings about the gift itself, whatever listing it is on."""
    today = today or clock.today()
    found: list[Finding] = []
    gid = gift.pk

    if gift.state != Gift.State.APPROVED:
        found.append(
            Finding(
                "GIFT-2.1",
                "GIFT-2.1",
                _("赠品「%(name)s」未经报备审核通过（%(state)s）")
                % {"name": gift.name, "state": gift.get_state_display()},
                gid,
                "state",
            )
        )
    if gift.category.is_prohibited:
        found.append(
            Finding(
                "GIFT-2.2",
                "GIFT-2.2",
                _("类目「%(category)s」禁止作为赠品") % {"category": gift.category.name},
                gid,
                "category",
            )
        )
    if gift.category.licence_required and not selectors.shop_has_valid_licence(
        shop_id=gift.shop_id, licence_type=gift.category.licence_type, today=today
    ):
        found.append(
            Finding(
                "GIFT-2.3",
                "GIFT-2.3",
                _("缺少有效的「%(licence_type)s」资质") % {"licence_type": gift.category.licence_type},
                gid,
                "qualification",
            )
        )
    # GIFT-2.4: kind, spec, quantity, value and ship-from must all be stated.
    if not gift.kind.strip():
        found.append(Finding("GIFT-2.4", "GIFT-2.4-KIND", _("未明示赠品品种"), gid, "kind"))
    if not gift.spec.strip():
        found.append(Finding("GIFT-2.4", "GIFT-2.4-SPEC", _("未明示赠品规格"), gid, "spec"))
    if not gift.quantity_per_order:
        found.append(Finding("GIFT-2.4", "GIFT-2.4-QUANTITY", _("未明示赠品数量"), gid, "quantity_per_order"))
    value = gift_value_resolve(gift)
    if not value.known:
        found.append(Finding("GIFT-2.4", "GIFT-2.4-VALUE", _("未明示赠品价值"), gid, "declared_value_fen"))
    if not gift.ship_from:
        found.append(Finding("GIFT-2.4", "GIFT-2.4-SHIP-FROM", _("未明示赠品发货地"), gid, "ship_from"))
    if gift.near_expiry and not gift.expiry_date:
        found.append(Finding("GIFT-2.4", "GIFT-2.4-EXPIRY", _("临保赠品未明示到期日期"), gid, "expiry_date"))
    over_cap = lottery_value_over_cap(gift)
    if over_cap is not None:
        found.append(
            Finding(
                "GIFT-2.7",
                "GIFT-2.7",
                _("抽奖赠品价值超过人民币50000元（%(figures)s）") % {"figures": value_figures_text(over_cap)},
                gid,
                "declared_value_fen",
            )
        )
    if gift.ship_from == Gift.ShipFrom.DOMESTIC and not gift.domestic_shipping_approved:
        found.append(Finding("GIFT-4.3", "GIFT-4.3", _("国内发货未经平台评估通过"), gid, "ship_from"))
    return found


def lottery_value_over_cap(gift: Gift) -> PromisedValue | None:
    """GIFT-2.7: a lottery gift's value, what one winner receives (one unit's value × the quantity
    per order, GIFT-2.4), is at most ¥50,000 inclusive. Returns that value when it is over."""
    if not gift.is_lottery:
        return None
    return lottery_over_cap(gift_value_promised(gift))


def lottery_over_cap(value: PromisedValue) -> PromisedValue | None:
    """``value`` when it is over the GIFT-2.7 cap (¥50,000 inclusive), else None."""
    if value.known and value.amount_fen > LOTTERY_VALUE_CAP_FEN:
        return value
    return None


def lottery_cap_refusal(over_cap: PromisedValue) -> str:
    """GIFT-2.7 as submitting a gift, and saving its draft, word the refusal."""
    return _("抽奖赠品价值不得超过人民币50000元（含）：%(figures)s") % {
        "figures": value_figures_text(over_cap)
    }


def draft_refusals(gift: Gift) -> list[Finding]:
    """What saving a draft refuses, because submitting (GIFT-2.7) or approval (GIFT-2.4) would refuse
    it anyway: a draft never looks ready when it is not. ``gift_register`` and ``gift_update``, which
    the shop's form and the API both go through, refuse the first; the words are ``gift_submit``'s."""
    found: list[Finding] = []
    over_cap = lottery_value_over_cap(gift)
    if over_cap is not None:
        found.append(
            Finding("GIFT-2.7", "GIFT-2.7", lottery_cap_refusal(over_cap), gift.pk, "declared_value_fen")
        )
    if gift.near_expiry and not gift.expiry_date:
        found.append(
            Finding("GIFT-2.4", "GIFT-2.4-EXPIRY", _("临保赠品未明示到期日期"), gift.pk, "expiry_date")
        )
    return found


def value_figures_text(value: PromisedValue) -> str:
    return _("单件价值 %(unit)s × 数量 %(quantity)s = %(total)s") % {
        "unit": format_fen(value.unit.amount_fen),
        "quantity": value.quantity,
        "total": format_fen(value.amount_fen),
    }


def findings_text(findings: list[Finding]) -> str:
    return "；".join(f"{f.rule} {f.message}" for f in findings)


def listing_check(
    *,
    title: str,
    subtitle: str = "",
    main_image_shows_gift_alone: bool = False,
    gift_more_prominent: bool = False,
    gifts: list[Gift],
    today=None,
) -> list[Finding]:
    found: list[Finding] = []
    for gift in gifts:
        found.extend(gift_findings(gift, today=today))
        # GIFT-2.5(一): the title or subtitle may not state the gift's brand.
        for field, text in (("title", title), ("subtitle", subtitle)):
            if text_names_brand(text, gift.brand):
                found.append(
                    Finding(
                        "GIFT-2.5",
                        "GIFT-2.5-BRAND",
                        _("标题中陈述了赠品品牌「%(brand)s」") % {"brand": gift.brand},
                        gift.pk,
                        field,
                    )
                )
    # GIFT-2.5(二): the main image shows the gift alone, or more prominently than the product.
    if gifts and main_image_shows_gift_alone:
        found.append(
            Finding(
                "GIFT-2.5",
                "GIFT-2.5-IMAGE-ALONE",
                _("赠品单独作为商品主图展示"),
                None,
                "main_image_shows_gift_alone",
            )
        )
    if gifts and gift_more_prominent:
        found.append(
            Finding(
                "GIFT-2.5",
                "GIFT-2.5-IMAGE-PROMINENT",
                _("主图中赠品信息的显著性高于售卖商品"),
                None,
                "gift_more_prominent",
            )
        )
    return found


def product_listing_check(product, *, gifts=None, today=None) -> list[Finding]:
    """The product as it is in memory (edits not yet saved count) with its attached gifts, or
    with ``gifts`` instead (a gift about to be attached)."""
    if gifts is None:
        gifts = list(product.gifts.select_related("category").all())
    return listing_check(
        title=product.title,
        subtitle=product.subtitle,
        main_image_shows_gift_alone=product.main_image_shows_gift_alone,
        gift_more_prominent=product.gift_more_prominent,
        gifts=gifts,
        today=today,
    )
