"""The contract Billing II builds on: monthly settlement charges and the arrears decision."""

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction

from billing.errors import BillingError
from billing.models import LedgerEntry, Wallet
from billing.selectors.wallet import arrears_cache_key, wallet_get_for_organization, wallet_in_arrears
from billing.services.wallet import wallet_charge_for_month, wallet_credit_top_up
from billing.tests.factories_wallet import TopUpOrderFactory, ledger_sum
from portal.errors import DomainError

pytestmark = pytest.mark.django_db


def test_fee_4_2_charge_creates_wallet_on_demand_and_appends_a_negative_entry(org):
    assert wallet_get_for_organization(organization_id=org.id) is None
    entry = wallet_charge_for_month(organization_id=org.id, year=2024, month=5, amount_fen=1234)
    wallet = Wallet.objects.get(organization=org)
    assert entry.kind == LedgerEntry.Kind.SETTLEMENT_CHARGE
    assert entry.amount_fen == -1234 and entry.balance_after_fen == -1234
    assert wallet.balance_fen == -1234 == ledger_sum(org.id)


def test_fee_4_2_second_call_for_the_same_month_returns_the_first_entry(org):
    first = wallet_charge_for_month(
        organization_id=org.id, year=2024, month=5, amount_fen=500, reference="run 1"
    )
    again = wallet_charge_for_month(
        organization_id=org.id, year=2024, month=5, amount_fen=500, reference="run 2"
    )
    assert again.pk == first.pk
    assert LedgerEntry.objects.count() == 1
    assert Wallet.objects.get(organization=org).balance_fen == -500


def test_fee_4_2_a_different_amount_for_a_charged_month_is_refused(org):
    wallet_charge_for_month(organization_id=org.id, year=2024, month=5, amount_fen=500)
    with pytest.raises(DomainError) as exc:
        wallet_charge_for_month(organization_id=org.id, year=2024, month=5, amount_fen=501)
    assert exc.value.code == "FEE-4.2"
    assert ledger_sum(org.id) == -500


def test_fee_4_2_months_before_2023_03_and_negative_fees_are_refused(org):
    with pytest.raises(BillingError, match=r"FEE-4\.2"):
        wallet_charge_for_month(organization_id=org.id, year=2023, month=2, amount_fen=1)
    with pytest.raises(BillingError, match=r"FEE-4\.2"):
        wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=-1)
    assert not LedgerEntry.objects.exists()


def test_fee_4_2_database_refuses_a_second_charge_for_the_month(org):
    entry = wallet_charge_for_month(organization_id=org.id, year=2024, month=6, amount_fen=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            wallet=entry.wallet,
            kind="settlement_charge",
            amount_fen=-10,
            balance_after_fen=-20,
            period_year=2024,
            period_month=6,
        )


def test_fee_4_2_charge_inside_a_rolled_back_caller_transaction_leaves_nothing(org):
    with pytest.raises(RuntimeError), transaction.atomic():
        wallet_charge_for_month(organization_id=org.id, year=2024, month=7, amount_fen=10)
        raise RuntimeError("settlement crashed")
    assert ledger_sum(org.id) == 0
    assert not Wallet.objects.filter(organization=org).exists()
    # The retry charges it once.
    wallet_charge_for_month(organization_id=org.id, year=2024, month=7, amount_fen=10)
    assert ledger_sum(org.id) == -10


def test_fee_6_arrears_decision_is_served_from_the_cache(org, django_assert_num_queries):
    assert wallet_in_arrears(organization_id=org.id) is False
    with django_assert_num_queries(0):
        assert wallet_in_arrears(organization_id=org.id) is False


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_6_1_charge_and_top_up_clear_the_cached_decision_on_commit(org):
    assert wallet_in_arrears(organization_id=org.id) is False
    assert cache.get(arrears_cache_key(org.id)) is False
    wallet_charge_for_month(organization_id=org.id, year=2024, month=5, amount_fen=100)
    assert cache.get(arrears_cache_key(org.id)) is None
    assert wallet_in_arrears(organization_id=org.id) is True
    order = TopUpOrderFactory(organization=org, amount_fen=100, state="paid", paid_at="2024-06-01T00:00:00Z")
    with transaction.atomic():
        wallet_credit_top_up(order=order)
        # Not committed yet: the gate still sees the old decision.
        assert cache.get(arrears_cache_key(org.id)) is True
    # FEE-6.1: balance back to 0 lifts the measures at once.
    assert cache.get(arrears_cache_key(org.id)) is None
    assert wallet_in_arrears(organization_id=org.id) is False


def test_ledger_rows_cannot_be_updated_or_deleted_in_the_database(org):
    entry = wallet_charge_for_month(organization_id=org.id, year=2024, month=5, amount_fen=100)
    with pytest.raises(Exception, match="Cannot update or delete"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_fen=0)
    with pytest.raises(Exception, match="Cannot update or delete"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        ("settlement_charge", 5),
        ("top_up_credit", -5),
        ("deposit_transfer", -5),
        ("refund", -5),
        ("withdrawal", -5),
    ],
)
def test_fee_4_1_database_refuses_wrong_signs_and_unknown_kinds(org, kind, amount):
    wallet = Wallet.objects.create(organization=org)
    order = TopUpOrderFactory(organization=org)
    fields = {"period_year": 2024, "period_month": 1} if kind == "settlement_charge" else {}
    if kind == "top_up_credit":
        fields["top_up_order"] = order
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            wallet=wallet, kind=kind, amount_fen=amount, balance_after_fen=amount, **fields
        )
