"""FEE-4.2 / FEE-2.1: a paid API used on a day without a price in force is never billed at 0:
that organization's month is refused with an error naming the API and days, the others settle,
and a rerun after staff add the price settles it, exactly once."""

import datetime as dt

import pytest
from django.db import OperationalError
from django.utils import translation

from billing.models import Api, Bill, BillLine, LedgerEntry, SettlementRun
from billing.services import metering, settlement
from billing.tests.factories_metering import (
    ApiFactory,
    AppFactory,
    other_session,
    paid_api,
    record_usage,
    sh,
    while_a_month_is_planned,
)
from billing.tests.factories_wallet import ledger_sum
from portal.errors import DomainError

IN = "in_cloud"


def settle(**kw):
    return settlement.settlement_run_month(year=2026, month=3, **kw)


@pytest.mark.django_db
class TestNoPriceInForce:
    def test_fee_4_2_unpriced_day_refuses_that_org_and_others_settle(self):
        # given an API priced only from 2026-03-10, used by app A on the 5th, 6th and 12th,
        # and app B (another organization) using a priced API
        late = paid_api(price_fen_per_1000=1000, since=dt.date(2026, 3, 10), code="api.late")
        priced = paid_api(price_fen_per_1000=1000)
        a, b = AppFactory(app_key="akt-late"), AppFactory()
        record_usage(
            [
                (a, late, IN, sh(2026, 3, 5), 100),
                (a, late, IN, sh(2026, 3, 6), 100),
                (a, late, IN, sh(2026, 3, 12), 100),
                (a, priced, IN, sh(2026, 3, 12), 100),
                (b, priced, IN, sh(2026, 3, 12), 70),
            ]
        )
        # when March is settled
        with translation.override("en"):
            run = settle(chunk_size=1)
        # then A gets no bill and no charge, B is billed and charged
        assert not Bill.objects.filter(organization=a.organization).exists()
        assert ledger_sum(a.organization_id) == 0
        assert Bill.objects.get(organization=b.organization).total_fen == 70
        assert ledger_sum(b.organization_id) == -70
        # and staff see the run failed with the rule, the API and the days
        assert run.status == SettlementRun.Status.FAILED
        assert (run.orgs_done, run.orgs_total) == (1, 2)
        assert "FEE-4.2" in run.last_error and "no price in force" in run.last_error
        assert "api.late" in run.last_error and "akt-late" in run.last_error
        assert "2026-03-05, 2026-03-06" in run.last_error and "2026-03-12" not in run.last_error
        # and the catch-up lists the month again
        assert (2026, 3) in settlement.settlement_due_months(today=dt.date(2026, 4, 5))

    def test_fee_4_2_rerun_after_staff_add_the_price_settles_it_exactly_once(self):
        # given a refused organization next to a settled one
        late = paid_api(price_fen_per_1000=1000, since=dt.date(2026, 3, 10))
        a, b = AppFactory(), AppFactory()
        record_usage(
            [
                (a, late, IN, sh(2026, 3, 5), 100),
                (a, late, IN, sh(2026, 3, 12), 100),
                (b, late, IN, sh(2026, 3, 12), 40),
            ]
        )
        run = settle()
        assert run.status == SettlementRun.Status.FAILED
        # when the rerun happens before the price is fixed, nothing changes
        run = settle()
        assert run.status == SettlementRun.Status.FAILED and "FEE-4.2" in run.last_error
        assert Bill.objects.count() == 1
        # a price that would change days already billed (from the 10th) is still refused
        with pytest.raises(DomainError) as refused:
            metering.api_price_set(api=late, price_fen_per_1000=700, effective_from=dt.date(2026, 3, 10))
        assert refused.value.code == "FEE-4.2"
        # when staff add the missing price from March 1st (as in admin: it only fills the days
        # that had no price, which no bill priced) and the month is run again
        metering.api_price_set(api=late, price_fen_per_1000=500, effective_from=dt.date(2026, 3, 1))
        run = settle()
        # then A is billed with each day's price (500 then 1000 from the 10th) and charged once
        bill = Bill.objects.get(organization=a.organization)
        assert bill.total_fen == 50 + 100
        assert BillLine.objects.get(bill=bill).prices == [
            {"price": 500, "calls": 100, "from": "2026-03-05"},
            {"price": 1000, "calls": 100, "from": "2026-03-12"},
        ]
        assert ledger_sum(a.organization_id) == -150
        # and B keeps its one bill and one charge; the run is done and clean
        assert Bill.objects.filter(organization=b.organization).count() == 1
        assert ledger_sum(b.organization_id) == -40
        assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 2
        assert (run.status, run.orgs_done, run.orgs_total, run.last_error) == (
            SettlementRun.Status.DONE,
            2,
            2,
            "",
        )
        assert settlement.settlement_recheck_month(year=2026, month=3)["ok"]
        # and one more run changes nothing
        settle()
        assert Bill.objects.count() == 2
        assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 2

    def test_fee_2_1_free_api_needs_no_price(self, app):
        # given a free API with no price row at all, next to a priced paid API
        free = ApiFactory(code="api.free.noprice", tier=Api.Tier.FREE)
        paid = paid_api(price_fen_per_1000=1000)
        record_usage([(app, free, IN, sh(2026, 3, 3), 9999), (app, paid, IN, sh(2026, 3, 3), 10)])
        # when settled
        run = settle()
        # then the month is done, the free calls are not billed and nothing is refused
        assert run.status == SettlementRun.Status.DONE and not run.last_error
        assert list(BillLine.objects.values_list("api_id", "amount_fen")) == [(paid.id, 10)]

    def test_fee_4_2_a_price_of_zero_is_a_price(self, app):
        api = paid_api(price_fen_per_1000=0)
        record_usage([(app, api, IN, sh(2026, 3, 3), 1000)])
        run = settle()
        assert run.status == SettlementRun.Status.DONE
        assert Bill.objects.get().total_fen == 0


@pytest.mark.django_db  # the other session only holds an advisory lock: no data to commit
def test_fee_4_2_a_price_change_waits_for_a_month_being_planned():
    """Planning reads prices under a shared lock; a price change takes it exclusively, so it
    cannot slip in between the plan's price read and its run becoming visible."""
    api = paid_api(price_fen_per_1000=1000)
    with while_a_month_is_planned(), pytest.raises(OperationalError, match="lock timeout"):
        metering.api_price_set(api=api, price_fen_per_1000=900, effective_from=dt.date(2099, 1, 1))
    # once the plan has finished, the change goes through
    assert metering.api_price_set(api=api, price_fen_per_1000=900, effective_from=dt.date(2099, 1, 1)).pk


def _other_session_can_lock(fn: str) -> bool:
    """Whether another session gets the price lock at once with ``fn`` (pg_try_advisory_*)."""
    from billing.locks_metering import NS_PRICES

    with other_session() as other:
        return other.execute(f"SELECT {fn}(%s, 0)", [NS_PRICES]).fetchone()[0]


@pytest.mark.django_db
def test_fee_4_2_planning_a_month_holds_the_price_lock_until_it_commits(app):
    """The real planning path: while its transaction is open a price change cannot start
    (exclusive refused), other plans can (shared granted)."""
    api = paid_api(price_fen_per_1000=1000)
    record_usage([(app, api, IN, sh(2026, 3, 3), 10)])
    settlement.settlement_plan_month(year=2026, month=3)  # the test's transaction stays open
    assert not _other_session_can_lock("pg_try_advisory_xact_lock")
    assert _other_session_can_lock("pg_try_advisory_xact_lock_shared")


@pytest.mark.django_db
def test_fee_4_2_a_price_change_holds_the_price_lock_until_it_commits():
    api = paid_api(price_fen_per_1000=1000)
    metering.api_price_set(api=api, price_fen_per_1000=900, effective_from=dt.date(2099, 1, 1))
    assert not _other_session_can_lock("pg_try_advisory_xact_lock_shared")  # a plan would wait
