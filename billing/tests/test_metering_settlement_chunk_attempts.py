"""FEE-4.2 exactly once, and finished: a settlement chunk counts its attempts before its work
starts, so a chunk that kills its worker every time (out of memory, a segfault) is failed after
``BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS`` instead of being redelivered for ever; an ordinary
error counts the same attempts; staff see failed chunks and reset them from admin; the month
then completes, and nobody is charged twice."""

import datetime as dt
import os
import signal
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, Permission
from django.db import OperationalError, connection
from django.urls import reverse

from billing import tasks_metering
from billing.models import Bill, LedgerEntry, SettlementChunk, SettlementRun
from billing.services import settlement
from billing.tasks_metering import settle_chunk_task
from billing.tests.factories_metering import AppFactory, paid_api, record_usage, sh
from billing.tests.factories_wallet import ledger_sum
from portal.celery import app as celery_app
from portal.errors import Conflict
from portal.models import AuditEntry
from portal.tests.factories import UserFactory

IN = "in_cloud"


class WorkerLost(BaseException):
    """The worker process dying mid-chunk: no ``except Exception`` sees it, nothing more is
    written by the process, and the chunk's transaction is rolled back (as PostgreSQL does
    when the connection of a killed process drops)."""


@pytest.fixture
def limit(settings):
    settings.BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS = 3
    return 3


@pytest.fixture
def month(db):
    """March 2026 planned in two chunks: ``good`` (7 fen) and ``bad`` (5 fen)."""
    api = paid_api(price_fen_per_1000=1000, since=dt.date(2026, 1, 1))
    good_app, bad_app = AppFactory(), AppFactory()
    record_usage([(good_app, api, IN, sh(2026, 3, 10), 7), (bad_app, api, IN, sh(2026, 3, 11), 5)])
    run = settlement.settlement_plan_month(year=2026, month=3, chunk_size=1)
    good, bad = run.chunks.order_by("index")
    assert (good.organization_ids, bad.organization_ids) == (
        [good_app.organization_id],
        [bad_app.organization_id],
    )
    return run, good, bad


@pytest.fixture
def deadly(monkeypatch, month):
    """The ``bad`` chunk's work kills its worker every time; returns the list of its attempts."""
    _run, _good, bad = month
    real, calls = settlement._charge_batch, []

    def charge(**kw):
        if any(org_id in bad.organization_ids for org_id, _total, _memo in kw["charges"]):
            calls.append(1)
            raise WorkerLost
        return real(**kw)

    monkeypatch.setattr(settlement, "_charge_batch", charge)
    return calls


def _chunk(chunk):
    return SettlementChunk.objects.get(pk=chunk.pk)


def _run(run):
    return SettlementRun.objects.get(pk=run.pk)


def _deliver(chunk_id):
    """A (re)delivery of the chunk task to a worker that dies with it (or survives it)."""
    try:
        return settle_chunk_task(chunk_id)
    except WorkerLost:
        return "lost"


@pytest.mark.django_db
def test_fee_4_2_a_chunk_that_kills_its_worker_every_time_is_failed_after_the_limit(
    limit, month, deadly, monkeypatch
):
    run, good, bad = month
    # given the good chunk settled
    assert _deliver(good.pk) == 1
    # when the bad chunk is delivered again and again, its worker dying each time
    for attempt in range(1, limit + 1):
        assert _deliver(bad.pk) == "lost"
        # then each attempt was counted although its worker died, and nothing of it is left
        chunk = _chunk(bad)
        assert (chunk.attempts, chunk.done_at, chunk.failed_at) == (attempt, None, None)
        assert not Bill.objects.filter(organization_id=bad.organization_ids[0]).exists()
        assert _run(run).status == SettlementRun.Status.RUNNING
    # when it is delivered once more (the broker requeues a lost worker's task at once)
    assert _deliver(bad.pk) == 0
    # then its work did not start again: the chunk is failed, with the reason, and not done
    assert len(deadly) == limit
    chunk = _chunk(bad)
    assert chunk.failed_at is not None and chunk.done_at is None and chunk.attempts == limit
    assert chunk.last_error == "" and "FEE-4.2" in chunk.failure_reason
    # and the month says it needs attention instead of "running" for ever
    run = _run(run)
    assert run.status == SettlementRun.Status.FAILED and (run.orgs_done, run.orgs_total) == (1, 2)
    assert ledger_sum(bad.organization_ids[0]) == 0 and ledger_sum(good.organization_ids[0]) == -7
    # and later deliveries, the daily beat and staff's "continue" leave it alone
    assert _deliver(bad.pk) == 0 and _chunk(bad).attempts == limit
    sent = []
    monkeypatch.setattr(tasks_metering.settle_chunk_task, "delay", sent.append)
    assert settlement.settlement_run_month(year=2026, month=3, fan_out=True).status == "failed"
    assert settlement.settlement_run_month(year=2026, month=3).status == "failed"
    assert sent == [] and len(deadly) == limit


@pytest.mark.django_db
def test_fee_4_2_an_ordinary_error_counts_the_same_attempts_and_fails_the_chunk_with_its_error(
    limit, month, monkeypatch
):
    run, good, bad = month
    settle_chunk_task(good.pk)
    calls = []

    def broken(**kw):
        calls.append(1)
        raise RuntimeError("a bug in one chunk")

    monkeypatch.setattr(settlement, "_charge_batch", broken)
    # when the chunk raises on every attempt (the daily beat sends it again each day)
    for attempt in range(1, limit + 1):
        with pytest.raises(RuntimeError):
            settle_chunk_task(bad.pk)
        chunk = _chunk(bad)
        assert (chunk.attempts, chunk.last_error) == (attempt, "RuntimeError: a bug in one chunk")
    # then the chunk is failed at its last attempt, at once, keeping the error as its reason
    chunk = _chunk(bad)
    assert chunk.failed_at is not None and chunk.failure_reason == "RuntimeError: a bug in one chunk"
    assert _run(run).status == SettlementRun.Status.FAILED
    # and it is not worked again
    assert settle_chunk_task(bad.pk) == 0 and len(calls) == limit


@pytest.fixture
def eager_celery():
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


@pytest.mark.django_db
def test_fee_4_2_back_off_retries_of_a_dropped_connection_stop_at_the_chunks_limit(
    limit, month, eager_celery, monkeypatch
):
    _, _good, bad = month
    calls = []

    def dropped(**kw):
        calls.append(1)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(settlement, "_charge_batch", dropped)
    # (eager retries run nested in place; an error they propagate would end the chain early;
    # the fixture restores the setting)
    celery_app.conf.task_eager_propagates = False
    # when every attempt loses its connection (the task retries with back-off)
    result = settle_chunk_task.apply(args=[bad.pk], throw=False)
    # then the retries are attempts of the chunk too: after the limit it is failed, not retried
    assert len(calls) == limit
    chunk = _chunk(bad)
    assert chunk.failed_at is not None and chunk.attempts == limit
    assert chunk.last_error.startswith("OperationalError: server closed the connection")
    assert result.state == "SUCCESS" and result.result == 0


@pytest.mark.django_db
def test_fee_4_2_back_off_retries_of_a_dropped_connection_go_on_up_to_a_limit_set_higher(
    settings, month, eager_celery, monkeypatch
):
    """The chunk's attempts limit is the one limit: the task has no retry count of its own that
    would end the retries first and leave the chunk open (neither done nor failed) for a day."""
    settings.BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS = 10
    _, _good, bad = month
    calls = []

    def dropped(**kw):
        calls.append(1)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(settlement, "_charge_batch", dropped)
    celery_app.conf.task_eager_propagates = False
    # when every attempt loses its connection, ten attempts allowed
    result = settle_chunk_task.apply(args=[bad.pk], throw=False)
    # then the task retried until the chunk's tenth attempt failed it, not fewer times
    assert len(calls) == 10
    chunk = _chunk(bad)
    assert chunk.failed_at is not None and chunk.attempts == 10
    assert result.state == "SUCCESS" and result.result == 0


@pytest.mark.django_db
def test_fee_4_2_a_chunk_done_before_its_worker_died_is_neither_charged_again_nor_failed(
    limit, month, monkeypatch
):
    run, good, bad = month
    settle_chunk_task(good.pk)
    real = settlement._charge_batch
    # given the bad chunk's first attempts lost their worker, and its last one settled it
    monkeypatch.setattr(settlement, "_charge_batch", lambda **kw: (_ for _ in ()).throw(WorkerLost))
    for _ in range(limit - 1):
        assert _deliver(bad.pk) == "lost"
    monkeypatch.setattr(settlement, "_charge_batch", real)
    assert _deliver(bad.pk) == 1
    assert _run(run).status == SettlementRun.Status.DONE
    # when its worker died after the commit, before acknowledging: the task is delivered again,
    # the limit now reached
    for _ in range(2):
        assert _deliver(bad.pk) == 0
    # then nothing changes: charged once, the chunk done (not failed), its attempts not counted
    chunk = _chunk(bad)
    assert chunk.done_at is not None and chunk.failed_at is None and chunk.attempts == limit
    org = bad.organization_ids[0]
    assert LedgerEntry.objects.filter(wallet__organization_id=org, kind="settlement_charge").count() == 1
    assert ledger_sum(org) == -5 and Bill.objects.get(organization_id=org).total_fen == 5
    assert _run(run).status == SettlementRun.Status.DONE


@pytest.mark.django_db
def test_fee_4_2_the_database_refuses_a_chunk_both_done_and_failed(month):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    _, good, _bad = month
    with pytest.raises(IntegrityError, match="billing_settlementchunk_done_or_failed"), transaction.atomic():
        SettlementChunk.objects.filter(pk=good.pk).update(done_at=timezone.now(), failed_at=timezone.now())


@pytest.mark.django_db
def test_fee_4_2_only_a_failed_chunk_can_be_reset(month):
    _, good, _bad = month
    with pytest.raises(Conflict) as exc:
        settlement.settlement_chunk_reset(chunk_id=good.pk, actor=UserFactory(is_staff=True))
    assert exc.value.code == "FEE-4.2"
    assert not AuditEntry.objects.filter(action="billing.settlement_chunk_reset").exists()


# --- admin: staff see the failed chunk and reset it --------------------------------------------


@pytest.fixture
def ops(client):
    user = UserFactory(is_staff=True)
    group, _ = Group.objects.get_or_create(name="billing-ops")
    group.permissions.add(*Permission.objects.filter(content_type__app_label="billing"))
    user.groups.add(group)
    client.force_login(user)
    return user


@pytest.fixture
def viewer(client):
    """Staff who may view settlement runs and chunks, and nothing more."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="billing", codename__in=["view_settlementrun", "view_settlementchunk"]
        )
    )
    return user


def _fail_bad_chunk(limit, bad):
    for _ in range(limit + 1):
        _deliver(bad.pk)
    assert _chunk(bad).failed_at is not None


@pytest.mark.django_db
def test_fee_4_2_staff_see_the_failed_chunk_reset_it_and_the_month_completes_charged_once(
    client, ops, limit, month, deadly, monkeypatch, eager_celery, django_capture_on_commit_callbacks
):
    run, good, bad = month
    settle_chunk_task(good.pk)
    _fail_bad_chunk(limit, bad)
    # then the run's progress page says so plainly, and its page names the chunk and the reason
    listing = client.get(reverse("admin:billing_settlementrun_changelist")).content.decode()
    assert 'data-testid="failed-chunks-banner"' in listing and "1 个结算分片" in listing
    assert "1 个分片失败, 需要处理" in listing
    page = client.get(reverse("admin:billing_settlementrun_change", args=[run.pk])).content.decode()
    assert 'data-testid="failed-chunks"' in page and "工作进程在处理该分片时退出" in page
    chunks = client.get(
        reverse("admin:billing_settlementchunk_changelist") + "?state=failed"
    ).content.decode()
    assert str(bad) in chunks and str(good) not in chunks
    # when the cause is fixed and staff reset the chunk from admin
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(
            reverse("admin:billing_settlementchunk_changelist"),
            {"action": "reset_chunks", "_selected_action": [bad.pk]},
        )
    assert resp.status_code == 302
    # then the chunk ran again (sent after commit) and the month completed
    chunk = _chunk(bad)
    assert chunk.done_at is not None and chunk.failed_at is None and chunk.attempts == 1
    run = _run(run)
    assert run.status == SettlementRun.Status.DONE and run.orgs_done == run.orgs_total == 2
    # and every organization was charged exactly once
    assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 2
    assert ledger_sum(good.organization_ids[0]) == -7 and ledger_sum(bad.organization_ids[0]) == -5
    # and the reset is in the audit trail under the staff member, with what was reset
    entry = AuditEntry.objects.get(action="billing.settlement_chunk_reset")
    assert entry.actor == ops and entry.object_id == str(bad.pk)
    assert entry.details["attempts"] == limit and entry.details["run"] == "2026-03"
    assert (
        "failed-chunks-banner"
        not in client.get(reverse("admin:billing_settlementrun_changelist")).content.decode()
    )


@pytest.mark.django_db
def test_p4_staff_without_the_settlement_run_permission_cannot_reset_a_chunk(
    client, viewer, limit, month, deadly, monkeypatch
):
    _, _good, bad = month
    _fail_bad_chunk(limit, bad)
    sent = []
    monkeypatch.setattr(tasks_metering.settle_chunk_task, "delay", sent.append)
    client.force_login(viewer)
    listing = client.get(reverse("admin:billing_settlementchunk_changelist"))
    assert listing.status_code == 200 and "reset_chunks" not in listing.content.decode()
    client.post(
        reverse("admin:billing_settlementchunk_changelist"),
        {"action": "reset_chunks", "_selected_action": [bad.pk]},
    )
    assert _chunk(bad).failed_at is not None and sent == []
    assert not AuditEntry.objects.filter(action="billing.settlement_chunk_reset").exists()


# --- a real worker process, killed ----------------------------------------------------------------

KILLED_WORKER = """
import os, signal, sys
import django
django.setup()
from billing.services import settlement

def charge_and_die(**kw):
    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer does, mid-transaction

settlement._charge_batch = charge_and_die
settlement.settlement_settle_chunk(chunk_id=int(sys.argv[1]))
"""


def _run_killed_worker(chunk_id: int, limit: int) -> int:
    db = connection.settings_dict
    url = (
        f"postgresql://{quote(db['USER'] or '')}:{quote(str(db['PASSWORD'] or ''))}"
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS": str(limit),
    }
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WORKER, str(chunk_id)],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_4_2_an_attempt_is_committed_before_the_work_so_a_killed_worker_still_counts(
    settings, usage_table_cleanup, monkeypatch
):
    settings.BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS = 2
    api = paid_api(price_fen_per_1000=1000, since=dt.date(2026, 1, 1))
    app = AppFactory()
    record_usage([(app, api, IN, sh(2026, 3, 10), 9)])
    run = settlement.settlement_plan_month(year=2026, month=3)
    chunk = run.chunks.get()
    # when a worker process is killed (SIGKILL) in the middle of the chunk's charge, twice
    for attempt in (1, 2):
        assert _run_killed_worker(chunk.pk, limit=2) == -signal.SIGKILL
        # then the attempt it had committed before the work is there, and none of its work
        assert _chunk(chunk).attempts == attempt and _chunk(chunk).done_at is None
        assert not Bill.objects.exists() and not LedgerEntry.objects.filter(kind="settlement_charge").exists()
    # and the next delivery fails the chunk instead of starting it a third time
    assert settlement.settlement_settle_chunk(chunk_id=chunk.pk) == 0
    assert _chunk(chunk).failed_at is not None and _run(run).status == SettlementRun.Status.FAILED
    # when staff reset it (the task it sends runs here), then the month completes, charged once
    monkeypatch.setattr(
        tasks_metering.settle_chunk_task, "delay", lambda chunk_id: settle_chunk_task(chunk_id)
    )
    settlement.settlement_chunk_reset(chunk_id=chunk.pk, actor=UserFactory(is_staff=True))
    assert _run(run).status == SettlementRun.Status.DONE
    assert LedgerEntry.objects.filter(kind="settlement_charge").count() == 1
    assert ledger_sum(app.organization_id) == -9
