"""FEE-4.2 beat: settlement is scheduled at 02:00 on the 5th, Asia/Shanghai, and the beat task
itself settles every missed month since 2023-03 (never earlier), bill and charge."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from billing.models import Bill, LedgerEntry, SettlementRun
from billing.services import settlement
from billing.tasks_metering import settle_chunk_task, settle_due_months_task
from billing.tests.factories_metering import AppFactory, paid_api, record_usage, sh
from billing.tests.factories_wallet import ledger_sum
from portal.celery import app as celery_app

SH = ZoneInfo("Asia/Shanghai")
IN = "in_cloud"


@pytest.fixture
def eager_celery():
    """Chunk tasks fanned out by the beat task run in-process, errors raised."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


@pytest.mark.django_db
def test_fee_4_2_beat_runs_settlement_daily_at_0200_shanghai_and_the_5th_is_the_first_due_day():
    # given the beat schedule declared in code
    entry = celery_app.conf.beat_schedule["billing-settle-due-months"]
    assert entry["task"] == settle_due_months_task.name == "billing.settle_due_months"
    # when django-celery-beat stores it as its DatabaseScheduler does at start-up
    # (update_from_dict → Entry.from_entry per entry; the scheduler itself is not started here:
    # its sync() closes the database connection, which would end the test's transaction)
    for name, fields in celery_app.conf.beat_schedule.items():
        DatabaseScheduler.Entry.from_entry(name, app=celery_app, **fields)
    # then the stored crontab is 02:00 every day, in Asia/Shanghai (a failed month is finished
    # the next day, not a month later)
    task = PeriodicTask.objects.get(name="billing-settle-due-months")
    cron = task.crontab
    assert (task.task, task.enabled) == ("billing.settle_due_months", True)
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "0",
        "2",
        "*",
        "*",
        "*",
    )
    assert str(cron.timezone) == "Asia/Shanghai"
    # and after the run of 2026-04-04, the next one is 2026-04-05 02:00 +08:00 (= 04-04 18:00Z)
    schedule = cron.schedule
    now = dt.datetime(2026, 4, 4, 12, tzinfo=SH)
    schedule.nowfun = lambda: now
    last_run = dt.datetime(2026, 4, 4, 2, tzinfo=SH)
    next_run = now + schedule.remaining_estimate(last_run)
    assert next_run == dt.datetime(2026, 4, 5, 2, tzinfo=SH) == dt.datetime(2026, 4, 4, 18, tzinfo=dt.UTC)
    # and on days 1-4 the previous month is not yet due, from the 5th it is
    assert settlement.settlement_due_months(today=dt.date(2026, 4, 4))[-1:] != [(2026, 3)]
    assert settlement.settlement_due_months(today=dt.date(2026, 4, 5))[-1] == (2026, 3)


@pytest.mark.django_db
def test_fee_4_2_beat_task_settles_every_missed_month_since_2023_03(eager_celery):
    # given usage from January to May 2023 for two organizations, April already settled
    api = paid_api(price_fen_per_1000=1000, since=dt.date(2022, 1, 1))
    a, b = AppFactory(), AppFactory()
    record_usage(
        [
            (a, api, IN, sh(2023, 1, 20), 50),
            (a, api, IN, sh(2023, 2, 28, 23), 99),  # February 2023: never charged
            (a, api, IN, sh(2023, 3, 1), 3),
            (b, api, IN, sh(2023, 3, 31, 23), 4),
            (a, api, IN, sh(2023, 4, 10), 5),
            (b, api, IN, sh(2023, 5, 31), 6),
            (b, api, IN, sh(2023, 6, 1), 700),  # June: not due on 2023-06-05
        ]
    )
    settlement.settlement_run_month(year=2023, month=4)
    # when the beat task runs on 2023-06-05 (through Celery, chunks fanned out as tasks)
    result = settle_due_months_task.apply(kwargs={"today": "2023-06-05"})
    # then the missed months since 2023-03 were settled, and April was not run again
    assert result.get() == ["2023-03", "2023-05"]
    assert set(SettlementRun.objects.values_list("year", "month", "status")) == {
        (2023, 3, "done"),
        (2023, 4, "done"),
        (2023, 5, "done"),
    }
    bills = set(Bill.objects.values_list("organization_id", "year", "month", "total_fen"))
    assert bills == {
        (a.organization_id, 2023, 3, 3),
        (b.organization_id, 2023, 3, 4),
        (a.organization_id, 2023, 4, 5),
        (b.organization_id, 2023, 5, 6),
    }
    # and each bill was charged once; nothing before March 2023 (and nothing for June)
    for bill in Bill.objects.all():
        assert LedgerEntry.objects.get(pk=bill.ledger_entry_id).amount_fen == -bill.total_fen
    assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 4
    assert ledger_sum(a.organization_id) == -8 and ledger_sum(b.organization_id) == -10
    # and a second beat the same day changes nothing
    assert settle_due_months_task.apply(kwargs={"today": "2023-06-05"}).get() == []
    assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 4


@pytest.mark.django_db
def test_fee_4_2_a_chunk_that_fails_on_a_dropped_connection_is_retried(eager_celery, monkeypatch):
    api = paid_api(price_fen_per_1000=1000, since=dt.date(2023, 1, 1))
    a = AppFactory()
    record_usage([(a, api, IN, sh(2023, 3, 10), 7)])
    run = settlement.settlement_plan_month(year=2023, month=3)
    chunk = run.chunks.get()
    real, calls = settlement._charge_batch, []

    def flaky(**kw):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kw)

    monkeypatch.setattr(settlement, "_charge_batch", flaky)
    # eager, Celery runs the retry in place (a worker would send it again after the back-off)
    assert settle_chunk_task.apply(args=[chunk.pk], throw=False).state == "SUCCESS"
    assert len(calls) == 2
    assert SettlementRun.objects.get(year=2023, month=3).status == "done"
    assert Bill.objects.get(organization_id=a.organization_id, year=2023, month=3).total_fen == 7


@pytest.mark.django_db
def test_fee_4_2_a_month_left_unfinished_by_a_failing_chunk_is_finished_by_the_next_days_beat(
    eager_celery, monkeypatch
):
    api = paid_api(price_fen_per_1000=1000, since=dt.date(2023, 1, 1))
    a = AppFactory()
    record_usage([(a, api, IN, sh(2023, 3, 10), 7)])
    real = settlement._charge_batch

    def broken(**kw):
        raise RuntimeError("a bug in one chunk")

    monkeypatch.setattr(settlement, "_charge_batch", broken)
    with pytest.raises(RuntimeError):
        settle_due_months_task.apply(kwargs={"today": "2023-04-05"}).get()
    assert SettlementRun.objects.get(year=2023, month=3).status == "running"
    assert ledger_sum(a.organization_id) == 0
    monkeypatch.setattr(settlement, "_charge_batch", real)  # fixed and deployed
    assert settle_due_months_task.apply(kwargs={"today": "2023-04-06"}).get() == ["2023-03"]
    assert SettlementRun.objects.get(year=2023, month=3).status == "done"
    assert ledger_sum(a.organization_id) == -7
