"""FEE-4.2 settlement: money rules, price history, Asia/Shanghai months, exactly once, arrears."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Api, Bill, BillApp, BillLine, LedgerEntry, SettlementChunk, SettlementRun
from billing.services import metering, settlement
from billing.services.gate import ARREARS, gate_check
from billing.services.usage import usage_record_rows
from billing.tests.factories_metering import (
    ApiPriceFactory,
    AppFactory,
    DiscountFactory,
    paid_api,
    race_two_batches,
    record_usage,
    sh,
    top_up,
)
from billing.tests.factories_wallet import ledger_sum
from portal.errors import DomainError
from portal.money import round_half_up
from portal.tests.factories import OrganizationFactory

IN, OUT = "in_cloud", "out_of_cloud"


def settle(year=2026, month=3, **kw):
    return settlement.settlement_run_month(year=year, month=month, **kw)


@pytest.mark.django_db
class TestMoneyRules:
    def test_fee_4_2_each_line_rounds_half_up_to_the_fen(self, app):
        api = paid_api(price_fen_per_1000=1)
        record_usage(
            [
                (app, api, IN, sh(2026, 3, 2, 10), 1500),  # 1.5 fen → 2
                (app, api, OUT, sh(2026, 3, 2, 10), 499),  # 0.499 fen → 0
            ]
        )
        settle()
        bill = Bill.objects.get(organization=app.organization, year=2026, month=3)
        amounts = dict(BillLine.objects.filter(bill=bill).values_list("location", "amount_fen"))
        assert amounts == {IN: 2, OUT: 0}
        assert (bill.subtotal_fen, bill.discount_fen, bill.total_fen) == (2, 0, 2)

    def test_fee_4_2_half_a_fen_rounds_up_and_just_below_rounds_down(self, org):
        api = paid_api(price_fen_per_1000=1)
        a1, a2 = AppFactory(organization=org), AppFactory(organization=org)
        record_usage([(a1, api, IN, sh(2026, 3, 1), 500), (a2, api, IN, sh(2026, 3, 1), 2499)])
        settle()
        per_app = dict(BillApp.objects.values_list("app_id", "subtotal_fen"))
        assert per_app == {a1.id: 1, a2.id: 2}

    def test_fee_5_1_a_discount_that_ended_before_the_month_does_not_apply(self, app):
        api = paid_api(price_fen_per_1000=1000)
        DiscountFactory(
            app=app, rate=Decimal("0.2"), valid_from=dt.date(2025, 1, 1), valid_to=dt.date(2026, 2, 28)
        )
        record_usage([(app, api, IN, sh(2026, 3, 1), 10)])
        settle()
        assert Bill.objects.get().total_fen == 10

    def test_fee_2_1_price_in_force_on_each_usage_day_when_it_changes_mid_month(self, app):
        api = paid_api(price_fen_per_1000=100, since=dt.date(2025, 1, 1))
        ApiPriceFactory(api=api, price_fen_per_1000=200, effective_from=dt.date(2026, 3, 16))
        ApiPriceFactory(api=api, price_fen_per_1000=999, effective_from=dt.date(2026, 4, 1))
        record_usage(
            [
                (app, api, IN, sh(2026, 3, 15, 23), 1000),  # last hour at 100
                (app, api, IN, sh(2026, 3, 16, 0), 1000),  # first hour at 200
                (app, api, IN, sh(2026, 3, 31, 23), 1000),  # still March, 200
            ]
        )
        settle()
        line = BillLine.objects.get()
        assert line.calls == 3000 and line.amount_fen == 100 + 200 + 200
        assert [(p["price"], p["calls"]) for p in line.prices] == [(100, 1000), (200, 2000)]

    def test_fee_2_1_free_apis_are_never_billed(self, app):
        free = paid_api(price_fen_per_1000=500, tier=Api.Tier.FREE)
        paid = paid_api(price_fen_per_1000=1000)
        record_usage([(app, free, IN, sh(2026, 3, 1), 5000), (app, paid, IN, sh(2026, 3, 1), 1000)])
        settle()
        assert list(BillLine.objects.values_list("api_id", flat=True)) == [paid.id]


@pytest.mark.django_db
class TestShanghaiMonths:
    def test_fee_4_2_hour_at_2026_03_31_2300_shanghai_is_march(self, app):
        api = paid_api(price_fen_per_1000=1000)
        record_usage([(app, api, IN, sh(2026, 3, 31, 23), 7)])
        settle(2026, 3)
        assert Bill.objects.get(year=2026, month=3).total_fen == 7

    def test_fee_4_2_2026_04_30_1600z_is_may_1_in_shanghai(self, app):
        api = paid_api(price_fen_per_1000=1000)
        record_usage([(app, api, IN, dt.datetime(2026, 4, 30, 16, tzinfo=dt.UTC), 5)])
        settle(2026, 4)
        settle(2026, 5)
        assert not Bill.objects.filter(month=4).exists()
        assert Bill.objects.get(year=2026, month=5).total_fen == 5


@pytest.mark.django_db
class TestExactlyOnce:
    def test_fee_4_2_rerun_changes_nothing(self, app):
        api = paid_api(price_fen_per_1000=1000)
        record_usage([(app, api, IN, sh(2026, 3, 1), 40)])
        first = settle()
        again = settle()
        assert first.pk == again.pk and again.status == SettlementRun.Status.DONE
        assert Bill.objects.count() == 1
        assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 1
        assert ledger_sum(app.organization_id) == -40
        bill = Bill.objects.get()
        assert LedgerEntry.objects.get(pk=bill.ledger_entry_id).amount_fen == -40

    def test_fee_4_2_database_refuses_a_second_bill_for_the_month(self, org):
        Bill.objects.create(organization=org, year=2026, month=3)
        with pytest.raises(IntegrityError), transaction.atomic():
            Bill.objects.create(organization=org, year=2026, month=3)

    def test_fee_4_2_database_refuses_months_before_2023_03(self, org):
        with pytest.raises(IntegrityError), transaction.atomic():
            Bill.objects.create(organization=org, year=2023, month=2)
        with pytest.raises(IntegrityError), transaction.atomic():
            SettlementRun.objects.create(year=2022, month=12)

    def test_fee_4_2_service_refuses_early_and_unfinished_months(self):
        with pytest.raises(DomainError, match=r"FEE-4\.2"):
            settle(2023, 2)
        with pytest.raises(DomainError, match=r"FEE-4\.2"):
            settle(2026, 3, now=sh(2026, 3, 31, 23))
        assert not SettlementRun.objects.exists()

    def test_fee_4_2_a_month_is_not_settled_before_the_5th_of_the_next(self, app):
        # given March usage, and March's late usage still arriving in early April
        api = paid_api(price_fen_per_1000=1000)
        record_usage([(app, api, IN, sh(2026, 3, 2, 10), 1000)])
        # when settlement is asked for March on 4 April, 23:00 in Shanghai
        with pytest.raises(DomainError, match=r"FEE-4\.2") as refused:
            settle(2026, 3, now=sh(2026, 4, 4, 23))
        # then it is refused naming the 5th, nothing is charged, and late usage is still taken
        assert refused.value.field == "month" and "2026-04-05" in refused.value.message
        assert not SettlementRun.objects.exists() and not Bill.objects.exists()
        record_usage([(app, api, IN, sh(2026, 3, 31, 23), 1000)])
        # and from 00:00 on the 5th it settles both
        settle(2026, 3, now=sh(2026, 4, 5, 0))
        assert Bill.objects.get(organization=app.organization).total_fen == 2000

    def test_fee_4_2_chunk_task_run_twice_bills_once(self, org):
        from billing.tasks_metering import settle_chunk_task

        api = paid_api(price_fen_per_1000=1000)
        apps = [AppFactory() for _ in range(3)]
        record_usage([(a, api, IN, sh(2026, 3, 3), 10) for a in apps])
        run = settlement.settlement_plan_month(year=2026, month=3, chunk_size=2)
        chunks = list(run.chunks.order_by("index"))
        assert [len(c.organization_ids) for c in chunks] == [2, 1]
        assert settle_chunk_task(chunks[0].id) == 2
        assert settle_chunk_task(chunks[0].id) == 0  # redelivered
        run.refresh_from_db()
        assert (run.orgs_done, run.orgs_total, run.status) == (2, 3, SettlementRun.Status.RUNNING)
        settle_chunk_task(chunks[1].id)
        run.refresh_from_db()
        assert run.status == SettlementRun.Status.DONE and run.percent == 100
        assert Bill.objects.count() == 3 == LedgerEntry.objects.filter(kind="settlement_charge").count()

    def test_fee_4_2_killed_between_organizations_then_rerun_gives_same_bills(self, monkeypatch):
        api = paid_api(price_fen_per_1000=1000)
        apps = [AppFactory() for _ in range(5)]
        record_usage([(a, api, IN, sh(2026, 3, 3), 10 * (i + 1)) for i, a in enumerate(apps)])
        real_charge = settlement._charge_batch
        calls = {"n": 0}

        def crashing_charge(**kw):
            calls["n"] += 1
            result = real_charge(**kw)
            if calls["n"] == 2:  # the second chunk: killed after its charges were written
                raise RuntimeError("worker killed")
            return result

        monkeypatch.setattr(settlement, "_charge_batch", crashing_charge)
        with pytest.raises(RuntimeError):
            settle(chunk_size=2)
        run = SettlementRun.objects.get()
        # The first chunk committed; the one that crashed left nothing behind.
        assert Bill.objects.count() == 2 and run.orgs_done == 2 and "worker killed" in run.last_error
        assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 2

        monkeypatch.setattr(settlement, "_charge_batch", real_charge)
        settle(chunk_size=2)
        run.refresh_from_db()
        assert run.status == SettlementRun.Status.DONE and run.orgs_done == 5 and not run.last_error
        assert sorted(Bill.objects.values_list("total_fen", flat=True)) == [10, 20, 30, 40, 50]
        for i, a in enumerate(apps):
            assert ledger_sum(a.organization_id) == -10 * (i + 1)
        assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 5

    def test_fee_4_2_catch_up_lists_missed_months_since_2023_03_only(self):
        assert settlement.settlement_due_months(today=dt.date(2023, 6, 4)) == [(2023, 3), (2023, 4)]
        assert settlement.settlement_due_months(today=dt.date(2023, 6, 5)) == [
            (2023, 3),
            (2023, 4),
            (2023, 5),
        ]
        assert settlement.settlement_due_months(today=dt.date(2023, 3, 20)) == []

    def test_fee_4_2_recheck_reports_a_bill_that_no_longer_matches_usage(self, app, admin_user):
        api = paid_api(price_fen_per_1000=1000)
        record_usage([(app, api, IN, sh(2026, 3, 3), 10)])
        settle()
        assert settlement.settlement_recheck_month(year=2026, month=3, actor=admin_user)["ok"]
        with connection.cursor() as cur:
            cur.execute("UPDATE billing_usage_hourly SET calls = 11")
        report = settlement.settlement_recheck_month(year=2026, month=3)
        assert not report["ok"]
        assert report["mismatches"] == [
            {"organization_id": app.organization_id, "expected_fen": 11, "billed_fen": 10, "uncharged": False}
        ]
        assert SettlementRun.objects.get().recheck["ok"] is False


@pytest.mark.django_db
def test_fee_6_charge_beyond_balance_goes_negative_and_gate_denies_paid_apis_at_once(
    app, django_capture_on_commit_callbacks
):
    api = paid_api(price_fen_per_1000=1000)
    free = paid_api(price_fen_per_1000=0, tier=Api.Tier.FREE)
    with django_capture_on_commit_callbacks(execute=True):
        top_up(app.organization, 100)
    assert gate_check(app_key=app.app_key, api=api.code, location=IN).allow
    record_usage([(app, api, IN, sh(2026, 3, 3), 300)])
    with django_capture_on_commit_callbacks(execute=True):
        settle()
    assert ledger_sum(app.organization_id) == -200
    denied = gate_check(app_key=app.app_key, api=api.code, location=IN)
    assert (denied.allow, denied.code) == (False, ARREARS)
    assert gate_check(app_key=app.app_key, api=free.code, location=OUT).allow
    with django_capture_on_commit_callbacks(execute=True):
        top_up(app.organization, 200)  # FEE-6.1: back to 0 lifts the measures
    assert gate_check(app_key=app.app_key, api=api.code, location=IN).allow


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_4_2_two_workers_racing_on_one_month_bill_and_charge_once(usage_table_cleanup):
    api = paid_api(price_fen_per_1000=1000)
    apps = [AppFactory() for _ in range(6)]
    record_usage([(a, api, IN, sh(2026, 3, 3), 7) for a in apps])
    barrier = threading.Barrier(2)
    errors = []

    def worker():
        try:
            barrier.wait()
            settle(chunk_size=2)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert SettlementRun.objects.get().status == SettlementRun.Status.DONE
    assert Bill.objects.count() == 6
    assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 6
    for a in apps:
        assert ledger_sum(a.organization_id) == -7


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_4_2_a_month_planned_while_a_usage_batch_is_written_bills_that_batch_too(usage_table_cleanup):
    api = paid_api(price_fen_per_1000=1000)
    app = AppFactory()
    record_usage([(app, api, IN, sh(2026, 3, 2), 1000)])
    out = race_two_batches(
        lambda: record_usage([(app, api, IN, sh(2026, 3, 30), 4000)]),  # late usage, still writing
        lambda: settle(),  # the 5th: planning waits for the batch
    )
    assert out["a"].rows_accepted == 1
    assert Bill.objects.get(organization=app.organization).total_fen == 5 * 1000
    assert ledger_sum(app.organization_id) == -5000
    late = usage_record_rows(rows=[(app.app_key, api.code, IN, sh(2026, 3, 31), 1)], batch_id="after")
    assert late.rows_rejected == 1 and "FEE-4.2" in late.errors[0]["reason"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_4_2_the_daily_beat_on_a_month_already_planned_does_not_wait_for_usage_batches(
    usage_table_cleanup,
):
    api = paid_api(price_fen_per_1000=1000)
    app = AppFactory()
    record_usage([(app, api, IN, sh(2026, 3, 2), 1000)])
    settle()  # March is done
    writing, finish = threading.Event(), threading.Event()

    def long_batch():  # a batch of April usage still being written
        try:
            with transaction.atomic():
                record_usage([(app, api, IN, sh(2026, 4, 2), 1)])
                writing.set()
                finish.wait(30)
        finally:
            connection.close()

    batch = threading.Thread(target=long_batch)
    batch.start()
    try:
        assert writing.wait(30)
        planned = []

        def daily_beat():
            try:
                planned.append(settlement.settlement_plan_month(year=2026, month=3))
            finally:
                connection.close()

        beat = threading.Thread(target=daily_beat)
        beat.start()
        beat.join(10)
        assert planned and planned[0].status == SettlementRun.Status.DONE, "the beat waited for the batch"
    finally:
        finish.set()
        batch.join(30)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_4_2_two_workers_on_the_same_chunk_settle_it_once(usage_table_cleanup):
    api = paid_api(price_fen_per_1000=1000)
    apps = [AppFactory() for _ in range(4)]
    record_usage([(a, api, IN, sh(2026, 3, 3), 9) for a in apps])
    run = settlement.settlement_plan_month(year=2026, month=3, chunk_size=10)
    chunk = SettlementChunk.objects.get(run=run)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(settlement.settlement_settle_chunk(chunk_id=chunk.id))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(results) == [0, 4]
    assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 4
    run.refresh_from_db()
    assert run.orgs_done == 4 and run.status == SettlementRun.Status.DONE


# --- property: the bill equals a plain-Python computation of the rules -------------------------

usage_rows = st.lists(
    st.tuples(
        st.integers(0, 2),  # app index
        st.integers(0, 2),  # api index
        st.sampled_from([IN, OUT]),
        st.integers(0, 30 * 24 + 23),  # hour offset from 2026-03-01 00:00 +08 (crosses into April)
        st.integers(0, 50_000),
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda r: (r[0], r[1], r[2], r[3]),
)

RATES = [Decimal("0.15"), Decimal("0.5"), Decimal("0.3333")]
TIERS = ["free", "basic", "value_added"]
DAY0 = dt.date(2026, 2, 25)  # discount validity days are offsets from here (some cross months)

# Per app: None, or up to two back-to-back discounts (rate1 on days a..b, rate2 on b+1..c).
app_discounts = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(RATES),
        st.one_of(st.none(), st.sampled_from(RATES)),
        st.lists(st.integers(0, 42), min_size=3, max_size=3).map(sorted),
    ),
)


def discount_periods(spec):
    """[(rate, first day, last day)] of one app's generated discounts."""
    if spec is None:
        return []
    rate1, rate2, (a, b, c) = spec
    day = lambda n: DAY0 + dt.timedelta(days=n)  # noqa: E731
    periods = [(rate1, day(a), day(b))]
    if rate2 is not None and b < c:
        periods.append((rate2, day(b + 1), day(c)))
    return periods


def tier_history(spec):
    """[(from date, tier)] of one API's generated tier history: its first tier since the
    beginning, then possibly a change on a day of March."""
    first, change = spec
    rows = [(dt.date(2000, 1, 1), first)]
    if change is not None:
        rows.append((dt.date(2026, 3, change[0]), change[1]))
    return rows


def reference_bills(rows, apps, prices, periods, tiers):
    """Plain Python, written from the rules: a usage day (Asia/Shanghai) on which its API was
    free (the tier in force that day) is not billed; each other usage day is priced with the price
    in force; a line (app, API, location) is round_half_up(sum of calls x price / 1000); a day
    inside a discount's validity is discounted at the highest such rate; per line and rate the
    discountable amount is round_half_up(sum over those days); the app's discount is
    round_half_up(sum of rate x discountable amount)."""
    start = sh(2026, 3, 1)
    line_exact: dict = {}  # (app, api, loc) -> Decimal fen
    band_exact: dict = {}  # (app, api, loc, rate) -> Decimal fen on days at that rate
    for ai, xi, loc, offset, calls in rows:
        day = (start + dt.timedelta(hours=offset)).date()
        if day.month != 3:
            continue
        tier = max((t for t in tiers[xi] if t[0] <= day), key=lambda t: t[0])[1]
        if tier == "free":
            continue
        price = max((p for p in prices[xi] if p[0] <= day), key=lambda p: p[0])[1]
        amount = Decimal(calls) * price / 1000
        key = (ai, xi, loc)
        line_exact[key] = line_exact.get(key, Decimal(0)) + amount
        rates = [r for r, first, last in periods[ai] if first <= day <= last]
        if rates:
            band = (*key, max(rates))
            band_exact[band] = band_exact.get(band, Decimal(0)) + amount
    per_org: dict = {}
    for ai in range(len(apps)):
        if not any(k[0] == ai for k in line_exact):
            continue
        subtotal = sum(round_half_up(v) for k, v in line_exact.items() if k[0] == ai)
        discount = round_half_up(
            sum((k[3] * round_half_up(v) for k, v in band_exact.items() if k[0] == ai), Decimal(0))
        )
        org = apps[ai].organization_id
        per_org[org] = per_org.get(org, 0) + subtotal - discount
    return per_org


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=usage_rows,
    base=st.lists(st.integers(0, 997), min_size=3, max_size=3),
    change=st.lists(st.integers(0, 997), min_size=3, max_size=3),
    change_day=st.integers(2, 31),
    discounts=st.lists(app_discounts, min_size=3, max_size=3),
    tier_specs=st.lists(
        st.tuples(
            st.sampled_from(TIERS),
            st.one_of(st.none(), st.tuples(st.integers(1, 31), st.sampled_from(TIERS))),
        ),
        min_size=3,
        max_size=3,
    ),
)
def test_fee_4_2_property_bill_equals_plain_python_reference(
    rows, base, change, change_day, discounts, tier_specs
):
    with transaction.atomic():
        org_a, org_b = OrganizationFactory(), OrganizationFactory()
        apps = [
            AppFactory(organization=org_a),
            AppFactory(organization=org_a),
            AppFactory(organization=org_b),
        ]
        apis, prices = [], []
        tiers = [tier_history(spec) for spec in tier_specs]
        for i in range(3):
            api = paid_api(price_fen_per_1000=base[i], tier=tiers[i][0][1], since=dt.date(2025, 1, 1))
            for day, tier in tiers[i][1:]:  # a tier change takes effect from the next day
                metering.api_update(api=api, tier=tier, today=day - dt.timedelta(days=1))
            ApiPriceFactory(
                api=api, price_fen_per_1000=change[i], effective_from=dt.date(2026, 3, change_day)
            )
            apis.append(api)
            prices.append([(dt.date(2025, 1, 1), base[i]), (dt.date(2026, 3, change_day), change[i])])
        periods = [discount_periods(spec) for spec in discounts]
        for ai, app_periods in enumerate(periods):
            for rate, first, last in app_periods:
                DiscountFactory(app=apps[ai], rate=rate, valid_from=first, valid_to=last)
        start = sh(2026, 3, 1)
        record_usage(
            [
                (apps[ai], apis[xi], loc, start + dt.timedelta(hours=off), calls)
                for ai, xi, loc, off, calls in rows
            ]
        )
        settle()
        got = dict(Bill.objects.filter(year=2026, month=3).values_list("organization_id", "total_fen"))
        expected = reference_bills(rows, apps, prices, periods, tiers)
        assert got == expected
        for org_id, total in expected.items():
            assert ledger_sum(org_id) == -total
        transaction.set_rollback(True)
