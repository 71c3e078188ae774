"""GIFT-5.2..5.5 compensation calculator: a pure function, table-tested."""

import pytest

from gifts.compensation import compensation_calculate, fallback_compensation_fen


@pytest.mark.parametrize(
    ("paid_fen", "expected_fen"),
    [
        (5_000, 2_000),  # ¥50 → 30% = ¥15 → minimum ¥20
        (10_000, 3_000),  # ¥100 → ¥30
        (100_000, 30_000),  # ¥1,000 → ¥300
        (200_000, 50_000),  # ¥2,000 → ¥600 → maximum ¥500
        (6_666, 2_000),  # ¥66.66 → ¥19.998 → ¥20.00 (half-up), at the minimum
        (166_667, 50_000),  # ¥1,666.67 → ¥500.001 → ¥500.00
        (6_668, 2_000),  # ¥66.68 → ¥20.004 → ¥20.00
        (6_670, 2_001),  # ¥66.70 → ¥20.01
        (6_705, 2_012),  # ¥67.05 → 2011.5 fen → half-up 2012
        (0, 2_000),  # nothing paid still gets the minimum
    ],
)
def test_gift_5_3_fallback_is_30_percent_clamped_20_to_500_half_up(paid_fen, expected_fen):
    assert fallback_compensation_fen(paid_fen) == expected_fen
    calc = compensation_calculate(
        kind="not_delivered", unit_value_fen=None, value_basis="unknown", paid_amount_fen=paid_fen
    )
    assert calc.rule == "GIFT-5.3" and calc.compensation_fen == expected_fen
    assert calc.figures["paid_amount_fen"] == paid_fen and calc.figures["rate"] == "0.30"


@pytest.mark.parametrize("kind", ["not_delivered", "not_as_described"])
def test_gift_5_3_declared_value_present_is_paid_as_is(kind):
    calc = compensation_calculate(
        kind=kind, unit_value_fen=8_800, value_basis="customs_declared", paid_amount_fen=200_000
    )
    assert calc.compensation_fen == 8_800 and calc.rule == "GIFT-5.3"
    assert calc.figures == {
        "gift_value_fen": 8_800,
        "unit_value_fen": 8_800,
        "quantity": 1,
        "value_basis": "customs_declared",
        "paid_amount_fen": 200_000,
    }


@pytest.mark.parametrize(
    ("kind", "rule", "field"),
    [
        ("not_delivered", "GIFT-5.3", "compensation_fen"),
        ("not_as_described", "GIFT-5.3", "compensation_fen"),
        ("lacks_licence", "GIFT-5.2", "compensation_fen"),
        ("return_gift_lost", "GIFT-5.4", "refund_deduction_fen"),
    ],
)
def test_gift_5_the_gift_value_is_the_unit_value_times_the_quantity_promised(kind, rule, field):
    # Given a listing that promised three units of a gift worth ¥88 each
    calc = compensation_calculate(
        kind=kind, unit_value_fen=8_800, quantity=3, value_basis="customs_declared", paid_amount_fen=200_000
    )
    # Then the gift's value, paid or deducted, is all three units' (GIFT-2.4 quantity)
    assert (calc.rule, getattr(calc, field)) == (rule, 26_400)
    assert (calc.figures["unit_value_fen"], calc.figures["quantity"], calc.figures["gift_value_fen"]) == (
        8_800,
        3,
        26_400,
    )


def test_gift_5_3_fallback_for_an_unassessable_value_does_not_multiply_by_quantity():
    """30% of the order's paid amount already covers whatever the order promised."""
    calc = compensation_calculate(
        kind="not_delivered", unit_value_fen=None, quantity=3, value_basis="unknown", paid_amount_fen=10_000
    )
    assert calc.compensation_fen == 3_000 and calc.figures["gift_value_fen"] is None


def test_gift_2_4_a_quantity_below_one_is_an_error():
    with pytest.raises(ValueError, match=r"GIFT-2\.4"):
        compensation_calculate(
            kind="not_delivered",
            unit_value_fen=1,
            quantity=0,
            value_basis="customs_declared",
            paid_amount_fen=1,
        )


def test_gift_5_2_lacking_licence_refunds_the_gift_value():
    calc = compensation_calculate(
        kind="lacks_licence", unit_value_fen=1_234, value_basis="fair_value", paid_amount_fen=9_999
    )
    assert (calc.rule, calc.compensation_fen) == ("GIFT-5.2", 1_234)


def test_gift_5_2_unknown_value_needs_a_fair_value_first():
    calc = compensation_calculate(
        kind="lacks_licence", unit_value_fen=None, value_basis="unknown", paid_amount_fen=9_999
    )
    assert calc.needs_fair_value and calc.compensation_fen is None


def test_gift_5_4_gift_lost_by_consumer_deducts_its_value_and_consumer_pays_shipping():
    calc = compensation_calculate(
        kind="return_gift_lost", unit_value_fen=3_000, value_basis="merchant_declared", paid_amount_fen=50_000
    )
    assert (calc.rule, calc.refund_deduction_fen, calc.return_shipping_payer) == (
        "GIFT-5.4",
        3_000,
        "consumer",
    )
    assert calc.compensation_fen is None


def test_gift_5_4_merchant_fault_return_merchant_pays_shipping_and_5_5_settle():
    calc = compensation_calculate(
        kind="return_merchant_fault",
        unit_value_fen=3_000,
        value_basis="merchant_declared",
        paid_amount_fen=50_000,
    )
    assert (
        calc.return_shipping_payer == "merchant" and calc.settle_between_parties and calc.rule == "GIFT-5.5"
    )


def test_gift_5_5_gift_not_returnable_is_settled_between_the_parties():
    calc = compensation_calculate(
        kind="gift_not_returnable", unit_value_fen=None, value_basis="unknown", paid_amount_fen=1
    )
    assert calc.settle_between_parties and calc.compensation_fen is None


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError):
        compensation_calculate(kind="x", unit_value_fen=None, value_basis="unknown", paid_amount_fen=1)


@pytest.mark.parametrize(
    ("intact", "deduction_fen", "not_intact"),
    [(2, 8_800, 1), (0, 26_400, 3), (3, 0, 0), (None, 26_400, 3)],
    ids=["2-of-3-intact", "none-intact", "all-intact", "not-stated"],
)
def test_gift_5_4_only_the_units_not_returned_intact_are_deducted(intact, deduction_fen, not_intact):
    # Given a return of an order due three ¥88 units, the consumer's fault (gift lost or damaged)
    calc = compensation_calculate(
        kind="return_gift_lost",
        unit_value_fen=8_800,
        quantity=3,
        value_basis="customs_declared",
        paid_amount_fen=50_000,
        units_returned_intact=intact,
    )
    # Then the merchant may deduct the value of the units that did not come back intact, no more
    # (not stated: none intact, the whole gift's value, as before units were recorded)
    assert (calc.rule, calc.refund_deduction_fen, calc.return_shipping_payer) == (
        "GIFT-5.4",
        deduction_fen,
        "consumer",
    )
    assert (calc.figures["units_returned_intact"], calc.figures["units_not_returned_intact"]) == (
        intact,
        not_intact,
    )
    assert calc.figures["gift_value_fen"] == 26_400


def test_gift_5_4_all_units_intact_deduct_nothing_even_when_the_value_is_unknown():
    calc = compensation_calculate(
        kind="return_gift_lost",
        unit_value_fen=None,
        quantity=2,
        value_basis="unknown",
        paid_amount_fen=1,
        units_returned_intact=2,
    )
    assert calc.refund_deduction_fen == 0 and not calc.needs_fair_value


@pytest.mark.parametrize("intact", [-1, 4])
def test_gift_5_4_units_returned_intact_outside_0_to_the_quantity_is_an_error(intact):
    with pytest.raises(ValueError, match=r"GIFT-5\.4"):
        compensation_calculate(
            kind="return_gift_lost",
            unit_value_fen=8_800,
            quantity=3,
            value_basis="customs_declared",
            paid_amount_fen=1,
            units_returned_intact=intact,
        )


def test_gift_5_4_merchant_fault_return_deducts_nothing_whatever_came_back_intact():
    calc = compensation_calculate(
        kind="return_merchant_fault",
        unit_value_fen=8_800,
        quantity=3,
        value_basis="customs_declared",
        paid_amount_fen=50_000,
        units_returned_intact=1,
    )
    assert (calc.refund_deduction_fen, calc.return_shipping_payer, calc.settle_between_parties) == (
        None,
        "merchant",
        True,
    )
    assert calc.figures["units_returned_intact"] == 1 and "units_not_returned_intact" not in calc.figures
