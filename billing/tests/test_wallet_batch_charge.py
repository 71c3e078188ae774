"""FEE-4.2 / FEE-6: the set-based settlement charge ``wallet_charge_for_month_batch``."""

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import LedgerEntry, Wallet
from billing.selectors.wallet import arrears_cache_key
from billing.services.wallet import (
    wallet_charge_for_month,
    wallet_charge_for_month_batch,
    wallet_credit_top_up,
)
from billing.tests.factories_wallet import TopUpOrderFactory, ledger_sum
from billing.tests.test_wallet_concurrency import run_concurrently
from portal.errors import DomainError
from portal.tests.factories import OrganizationFactory


def orgs(n: int) -> list:
    return [OrganizationFactory(kind="service_provider") for _ in range(n)]


def paid_top_up(org, amount_fen: int):
    order = TopUpOrderFactory(organization=org, amount_fen=amount_fen, state="paid", paid_at=timezone.now())
    return wallet_credit_top_up(order=order)


def charges_of(year: int, month: int) -> dict[int, int]:
    return dict(
        LedgerEntry.objects.filter(
            kind="settlement_charge", period_year=year, period_month=month
        ).values_list("wallet__organization_id", "amount_fen")
    )


def assert_chain(org) -> None:
    """balance = Σ entries, and every entry's balance_after continues the previous one."""
    running = 0
    for e in LedgerEntry.objects.filter(wallet__organization=org).order_by("id"):
        running += e.amount_fen
        assert e.balance_after_fen == running
    assert Wallet.objects.get(organization=org).balance_fen == running == ledger_sum(org.id)


@pytest.mark.django_db
class TestBatchCharge:
    def test_fee_4_2_batch_creates_wallets_and_appends_one_charge_per_organization(self):
        a, b, c = orgs(3)
        paid_top_up(b, 5_000)
        result = wallet_charge_for_month_batch(
            year=2026, month=3, charges=[(c.id, 300, "bill #3"), (a.id, 100, "bill #1"), (b.id, 0, "")]
        )
        assert set(result) == {a.id, b.id, c.id}
        entries = {e.pk: e for e in LedgerEntry.objects.filter(pk__in=result.values())}
        assert {org: entries[pk].amount_fen for org, pk in result.items()} == {
            a.id: -100,
            b.id: 0,
            c.id: -300,
        }
        assert entries[result[a.id]].reference == "bill #1"
        assert entries[result[b.id]].reference == "settlement 2026-03"
        assert entries[result[b.id]].balance_after_fen == 5_000
        assert {e.kind for e in entries.values()} == {"settlement_charge"}
        for org, balance in ((a, -100), (b, 5_000), (c, -300)):
            assert Wallet.objects.get(organization=org).balance_fen == balance
            assert_chain(org)
        call_command("verify_ledger")  # raises CommandError when a wallet disagrees

    def test_fee_4_2_batch_statements_do_not_grow_with_the_number_of_organizations(self):
        few, many = orgs(2), orgs(12)
        with CaptureQueriesContext(connection) as q_few:
            wallet_charge_for_month_batch(year=2026, month=3, charges=[(o.id, 10, "") for o in few])
        with CaptureQueriesContext(connection) as q_many:
            wallet_charge_for_month_batch(year=2026, month=3, charges=[(o.id, 10, "") for o in many])
        assert len(q_many.captured_queries) == len(q_few.captured_queries) <= 6
        assert len(charges_of(2026, 3)) == 14

    def test_fee_4_2_rerun_of_the_same_batch_changes_nothing_and_returns_the_same_entries(self):
        a, b = orgs(2)
        first = wallet_charge_for_month_batch(year=2026, month=3, charges=[(a.id, 100, ""), (b.id, 200, "")])
        again = wallet_charge_for_month_batch(year=2026, month=3, charges=[(a.id, 100, ""), (b.id, 200, "")])
        assert again == first
        assert LedgerEntry.objects.count() == 2
        assert ledger_sum(a.id) == -100 and ledger_sum(b.id) == -200

    def test_fee_4_2_partly_charged_batch_charges_only_the_rest(self):
        a, b, c = orgs(3)
        single = wallet_charge_for_month(organization_id=b.id, year=2026, month=3, amount_fen=200)
        result = wallet_charge_for_month_batch(
            year=2026, month=3, charges=[(a.id, 100, ""), (b.id, 200, ""), (c.id, 300, "")]
        )
        assert result[b.id] == single.pk
        assert charges_of(2026, 3) == {a.id: -100, b.id: -200, c.id: -300}
        for org in (a, b, c):
            assert_chain(org)

    def test_fee_4_2_a_different_amount_is_refused_and_nothing_of_the_batch_is_kept(self):
        a, b = orgs(2)
        wallet_charge_for_month_batch(year=2026, month=3, charges=[(a.id, 100, "")])
        with pytest.raises(DomainError) as exc:
            wallet_charge_for_month_batch(year=2026, month=3, charges=[(b.id, 50, ""), (a.id, 101, "")])
        assert exc.value.code == "FEE-4.2" and exc.value.status == 409
        assert charges_of(2026, 3) == {a.id: -100}
        assert not Wallet.objects.filter(organization=b).exists()  # the savepoint rolled back
        # Other months of the same organization are independent.
        wallet_charge_for_month_batch(year=2026, month=4, charges=[(a.id, 101, "")])
        assert ledger_sum(a.id) == -201

    @pytest.mark.parametrize(
        ("year", "month", "charges"),
        [
            (2023, 2, [(0, 1, "")]),  # before 2023-03: never charged
            (2026, 13, [(0, 1, "")]),
            (2026, 3, [(0, -1, "")]),  # a fee is never negative
            (2026, 3, [(0, 1, ""), (0, 1, "")]),  # one organization twice in one batch
        ],
    )
    def test_fee_4_2_invalid_batches_are_refused_before_any_write(self, year, month, charges):
        (org,) = orgs(1)
        charges = [(org.id, amount, ref) for _, amount, ref in charges]
        with pytest.raises(DomainError, match=r"FEE-4\.2"):
            wallet_charge_for_month_batch(year=year, month=month, charges=charges)
        assert not Wallet.objects.exists() and not LedgerEntry.objects.exists()

    def test_fee_4_2_empty_batch_is_a_no_op(self, django_assert_num_queries):
        with django_assert_num_queries(0):
            assert wallet_charge_for_month_batch(year=2026, month=3, charges=[]) == {}

    def test_fee_4_2_batch_in_a_rolled_back_caller_transaction_leaves_nothing(self):
        a, b = orgs(2)
        with pytest.raises(RuntimeError), transaction.atomic():
            wallet_charge_for_month_batch(year=2026, month=3, charges=[(a.id, 10, ""), (b.id, 20, "")])
            raise RuntimeError("settlement crashed")
        assert not LedgerEntry.objects.exists() and not Wallet.objects.exists()
        wallet_charge_for_month_batch(year=2026, month=3, charges=[(a.id, 10, ""), (b.id, 20, "")])
        assert charges_of(2026, 3) == {a.id: -10, b.id: -20}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_6_1_batch_clears_the_arrears_decision_of_organizations_it_puts_in_arrears_on_commit():
    rich, poor, broke = orgs(3)
    paid_top_up(rich, 10_000)
    paid_top_up(poor, 150)
    for org in (rich, poor, broke):
        cache.set(arrears_cache_key(org.id), False)
    with transaction.atomic():
        wallet_charge_for_month_batch(
            year=2026, month=3, charges=[(rich.id, 100, ""), (poor.id, 200, ""), (broke.id, 1, "")]
        )
        # Not committed yet: the gate still sees the old decisions.
        assert cache.get(arrears_cache_key(poor.id)) is False
        assert cache.get(arrears_cache_key(broke.id)) is False
    # FEE-6: the charges that made a balance negative are seen on the gate's next call.
    assert cache.get(arrears_cache_key(poor.id)) is None
    assert cache.get(arrears_cache_key(broke.id)) is None
    # Still 9,900 fen: the decision did not change and stays cached.
    assert cache.get(arrears_cache_key(rich.id)) is False
    from billing.selectors.wallet import wallet_in_arrears

    assert [wallet_in_arrears(organization_id=o.id) for o in (rich, poor, broke)] == [False, True, True]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_4_2_concurrent_top_ups_during_batch_charges_lose_nothing():
    """Batches for several months race with top-ups on the same wallets (real threads)."""
    organizations = orgs(4)
    amounts = {o.id: 100 * (i + 1) for i, o in enumerate(organizations)}
    orders = [
        TopUpOrderFactory(organization=o, amount_fen=1_000 + i, state="paid", paid_at=timezone.now())
        for o in organizations
        for i in range(3)
    ]

    def work(i):
        if i < len(orders):
            return wallet_credit_top_up(order=orders[i])
        month = i - len(orders) + 1  # 1..6: one batch per month, reversed org order on odd months
        items = [(o.id, amounts[o.id], "") for o in organizations]
        return wallet_charge_for_month_batch(year=2026, month=month, charges=items[:: 1 if month % 2 else -1])

    results = run_concurrently(len(orders) + 6, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    for o in organizations:
        expected = sum(1_000 + i for i in range(3)) - 6 * amounts[o.id]
        assert Wallet.objects.get(organization=o).balance_fen == expected
        assert LedgerEntry.objects.filter(wallet__organization=o).count() == 9
        assert_chain(o)
    call_command("verify_ledger")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_4_2_concurrent_batches_for_one_month_charge_each_organization_once():
    """Two settlement workers racing on one month (wallets created on demand by both)."""
    organizations = orgs(5)
    items = [(o.id, 70 + i, f"bill {i}") for i, o in enumerate(organizations)]
    results = run_concurrently(
        6, lambda i: wallet_charge_for_month_batch(year=2026, month=3, charges=items[:: 1 if i % 2 else -1])
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert all(r == results[0] for r in results)  # every worker sees the same entries
    assert Wallet.objects.count() == 5
    assert charges_of(2026, 3) == {o.id: -(70 + i) for i, o in enumerate(organizations)}
    for o in organizations:
        assert_chain(o)
