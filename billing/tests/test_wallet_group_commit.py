"""Top-up group commit (billing.services.credit_group): concurrent "paid" callbacks written by
one statement must give each request exactly what the one-at-a-time path gives (FEE-4.1: the
same payment credited once, never lost), on PostgreSQL with real threads."""

import threading
import time
from contextlib import contextmanager

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from billing.models import LedgerEntry, PaymentEvent, TopUpOrder, Wallet
from billing.payments import sandbox
from billing.selectors.wallet import wallet_in_arrears
from billing.services import credit_group
from billing.services import wallet as wallet_svc
from billing.services.topup import payment_webhook_handle, top_up_create
from billing.services.wallet import wallet_charge_for_month
from billing.tests.factories_wallet import ledger_sum
from billing.tests.test_wallet_concurrency import signed
from portal.tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def _group_commit_on(settings):
    settings.BILLING_TOPUP_GROUP_COMMIT = True


def deliver(body: bytes):
    return payment_webhook_handle(provider_name="sandbox", headers=signed(body), body=body)


def deliver_and_close(body: bytes):
    """``deliver`` from a thread of its own, closing that thread's connection."""
    try:
        return deliver(body)
    finally:
        connection.close()


def other_session() -> psycopg.Connection:
    """A connection of its own to the test database (another process, as far as locks go)."""
    params = connection.settings_dict
    return psycopg.connect(
        dbname=params["NAME"], user=params["USER"], host=params["HOST"], port=params["PORT"] or 5432
    )


@contextmanager
def order_row_locked(order):
    """Another session holds ``order``'s row lock: a batch that contains it waits."""
    with other_session() as other:
        other.execute("SELECT 1 FROM billing_topuporder WHERE id = %s FOR UPDATE", [order.pk])
        yield
        other.commit()


def wait_until(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def leading(group) -> bool:
    """A request is writing a batch and nothing is queued behind it yet."""
    return group._writing and not group._queue


def queue_behind(blocker, first: threading.Thread, rest: list[threading.Thread]) -> None:
    """Start ``first`` (a callback for ``blocker``, whose row another session holds: it leads a
    batch that waits on that lock), then ``rest``, wait until all of ``rest`` are queued behind
    it, and release the lock: they are written as the next batch(es). Nothing is joined."""
    group = credit_group.current()
    with order_row_locked(blocker):
        first.start()
        wait_until(lambda: leading(group))
        for t in rest:
            t.start()
        wait_until(lambda: len(group._queue) == len(rest))


def one_batch(first_body: bytes, bodies: list[bytes], first_order) -> list:
    """Deliver ``first_body`` (its order locked elsewhere, so the writer waits on it), queue
    ``bodies`` meanwhile, release: the queued callbacks are written as the next batch(es).
    Returns the results in the order of ``[first_body, *bodies]``."""
    results: list = [None] * (len(bodies) + 1)

    def run(i, body):
        try:
            results[i] = deliver(body)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    first = threading.Thread(target=run, args=(0, first_body))
    threads = [threading.Thread(target=run, args=(i + 1, b)) for i, b in enumerate(bodies)]
    queue_behind(first_order, first, threads)
    for t in [first, *threads]:
        t.join(30)
    return results


def test_fee_4_1_queued_callbacks_are_written_as_one_batch_with_the_one_at_a_time_outcomes():
    # Given: a first order whose callback keeps the writer busy, and then, queued together,
    # two credits on one wallet, a credit that ends arrears, an amount mismatch, an unknown
    # order, an order already paid, and a replay of an event already stored.
    rich, poor = OrganizationFactory(), OrganizationFactory()
    wallet_charge_for_month(organization_id=poor.id, year=2024, month=1, amount_fen=300)
    assert wallet_in_arrears(organization_id=poor.id) is True
    blocker = top_up_create(organization_id=rich.id, amount_fen=100)
    a, b = (top_up_create(organization_id=rich.id, amount_fen=amt) for amt in (1_000, 2_000))
    lift = top_up_create(organization_id=poor.id, amount_fen=500)
    mismatch = top_up_create(organization_id=poor.id, amount_fen=700)
    paid_before, replay_of = (top_up_create(organization_id=rich.id, amount_fen=amt) for amt in (900, 150))
    assert deliver(sandbox.event_body(order=paid_before, status="paid")).outcome == "credited"
    replayed = sandbox.event_body(order=replay_of, status="paid")
    assert deliver(replayed).outcome == "credited"
    unknown = TopUpOrder(out_trade_no="T-NOT-OURS", amount_fen=100, currency="CNY")
    bodies = [
        sandbox.event_body(order=a, status="paid"),
        sandbox.event_body(order=lift, status="paid"),
        sandbox.event_body(order=b, status="paid"),
        sandbox.event_body(order=mismatch, status="paid", amount_fen=1),
        sandbox.event_body(order=unknown, status="paid"),
        sandbox.event_body(order=paid_before, status="paid"),
        replayed,
    ]
    group_before = credit_group.current()
    batches_before, fallbacks_before = group_before.batches, group_before.fallbacks

    # When they are delivered while the writer is busy with the first.
    results = one_batch(sandbox.event_body(order=blocker, status="paid"), bodies, blocker)

    # Then the seven queued callbacks went out in one statement, which did not fail...
    assert group_before.batches - batches_before == 2
    assert group_before.fallbacks == fallbacks_before
    # ...and each request got what it would have got alone.
    assert [(r.status, r.outcome) for r in results] == [
        (200, "credited"),
        (200, "credited"),
        (200, "credited"),
        (200, "credited"),
        (400, "rejected_mismatch"),
        (404, "unknown_order"),
        (200, "already_paid"),
        (409, "replay"),
    ]
    assert (
        Wallet.objects.get(organization=rich).balance_fen
        == 900 + 150 + 100 + 1_000 + 2_000
        == ledger_sum(rich.id)
    )
    assert Wallet.objects.get(organization=poor).balance_fen == 200 == ledger_sum(poor.id)
    # balance_after runs unbroken through the two credits of one wallet in one statement.
    running = 0
    for entry in LedgerEntry.objects.filter(wallet__organization=rich).order_by("id"):
        running += entry.amount_fen
        assert entry.balance_after_fen == running
    assert [
        o.state for o in TopUpOrder.objects.filter(pk__in=[a.pk, b.pk, lift.pk, mismatch.pk]).order_by("pk")
    ] == [
        "paid",
        "paid",
        "paid",
        "pending",
    ]
    # Every event is stored once (the replay is not stored again; the unknown order's is).
    assert PaymentEvent.objects.count() == 2 + 1 + len(bodies) - 1
    # FEE-6.1: the credit that ended arrears lifted the measures as soon as it committed.
    assert wallet_in_arrears(organization_id=poor.id) is False


def test_fee_4_1_a_second_delivery_queued_beside_the_first_waits_for_it():
    # Given one payment delivered twice with the same event id and once with another id, all
    # queued behind a busy writer.
    org = OrganizationFactory()
    blocker = top_up_create(organization_id=org.id, amount_fen=100)
    order = top_up_create(organization_id=org.id, amount_fen=5_000)
    body = sandbox.event_body(order=order, status="paid")
    other = sandbox.event_body(order=order, status="paid", event_id="evt_second_id")

    results = one_batch(sandbox.event_body(order=blocker, status="paid"), [body, body, other], blocker)

    # Then the payment is credited once; the copies see it committed, as they would alone.
    assert sorted(r.outcome for r in results[1:]) == ["already_paid", "credited", "replay"]
    assert LedgerEntry.objects.filter(top_up_order=order).count() == 1
    assert Wallet.objects.get(organization=org).balance_fen == 5_100 == ledger_sum(org.id)


def concurrent_deliveries_while_busy(orders) -> list:
    """Deliver a paid callback for each order; all but the first queue behind the first."""
    return one_batch(
        sandbox.event_body(order=orders[0], status="paid"),
        [sandbox.event_body(order=o, status="paid") for o in orders[1:]],
        orders[0],
    )


def batch_statement_raising(monkeypatch, exc: Exception) -> None:
    def broken(events, *, now):
        raise exc

    monkeypatch.setattr(credit_group, "wallet_credit_paid_events", broken)


def pending_orders(org, n: int) -> list:
    return [top_up_create(organization_id=org.id, amount_fen=1_000 + i) for i in range(n)]


def test_fee_4_1_a_batch_statement_that_fails_is_written_item_by_item(monkeypatch, caplog):
    # Given a batch statement that fails in the database (so it wrote nothing).
    batch_statement_raising(monkeypatch, DatabaseError("batch statement failed"))
    org = OrganizationFactory()
    orders = pending_orders(org, 6)

    # When five callbacks are queued together behind a first one.
    results = concurrent_deliveries_while_busy(orders)

    # Then each was still credited, once, by the one-at-a-time path, and operators were told.
    assert [r.outcome for r in results] == ["credited"] * 6
    assert "batch of 5 not written (batch statement failed)" in caplog.text
    expected = sum(1_000 + i for i in range(6))
    assert Wallet.objects.get(organization=org).balance_fen == expected == ledger_sum(org.id)


def test_any_other_failure_of_a_batch_answers_every_request_in_it(monkeypatch):
    # Given a batch that fails outside the database.
    batch_statement_raising(monkeypatch, RuntimeError("outcomes do not check out"))
    orders = pending_orders(OrganizationFactory(), 4)

    # When three callbacks are queued together behind a first one.
    results = concurrent_deliveries_while_busy(orders)

    # Then the first (written alone) is credited and each of the three gets the error (a 500:
    # the provider retries) instead of waiting forever.
    assert results[0].outcome == "credited"
    assert [type(r) for r in results[1:]] == [RuntimeError] * 3


def test_a_callback_inside_a_transaction_is_credited_by_that_transaction():
    # Given a caller's transaction (the credit must commit or roll back with it).
    org = OrganizationFactory()
    order = top_up_create(organization_id=org.id, amount_fen=800)
    body = sandbox.event_body(order=order, status="paid")

    # When the callback is handled inside it and the transaction rolls back.
    with pytest.raises(RuntimeError), transaction.atomic():
        assert credit_group.applies() is False
        assert deliver(body).outcome == "credited"
        raise RuntimeError("caller fails after the credit")

    # Then nothing was credited, and a later delivery credits it.
    assert not LedgerEntry.objects.filter(top_up_order=order).exists()
    assert deliver(body).outcome == "credited"


def test_group_commit_can_be_turned_off(settings):
    settings.BILLING_TOPUP_GROUP_COMMIT = False
    assert credit_group.applies() is False
    written_by_group = credit_group.current().items
    org = OrganizationFactory()
    order = top_up_create(organization_id=org.id, amount_fen=800)
    assert deliver(sandbox.event_body(order=order, status="paid")).outcome == "credited"
    assert credit_group.current().items == written_by_group  # written on the request's own path


def test_fee_4_1_a_batch_locks_wallets_in_the_order_settlement_does_no_deadlock():
    # Given two organizations whose wallets were created in the opposite order (so wallet id
    # order differs from organization order), each with a pending top-up...
    first_org, second_org = OrganizationFactory(), OrganizationFactory()
    for org in (second_org, first_org):
        wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=1)
    wallets = Wallet.objects.filter(organization__in=[first_org, second_org]).order_by("id")
    assert [w.organization_id for w in wallets] == [second_org.id, first_org.id]
    orders = [top_up_create(organization_id=o.id, amount_fen=500) for o in (first_org, second_org)]
    blocker = top_up_create(organization_id=first_org.id, amount_fen=100)
    settlement = other_session()
    outcome: dict = {}

    def lock_the_second_wallet():
        # a settlement chunk takes wallet row locks in wallet id order: the lower id first...
        settlement.execute("SELECT 1 FROM billing_wallet WHERE id = %s FOR UPDATE", [wallets[0].pk])

    def then_the_other():
        try:
            settlement.execute("SET lock_timeout = '5s'")
            settlement.execute("SELECT 1 FROM billing_wallet WHERE id = %s FOR UPDATE", [wallets[1].pk])
            outcome["settlement"] = "locked both"
        except psycopg.Error as exc:
            outcome["settlement"] = type(exc).__name__
        finally:
            settlement.commit()

    # When a batch crediting both wallets runs while that chunk holds the first wallet...
    lock_the_second_wallet()
    results: list = [None, None]

    def deliver_in_batch(i):
        try:
            results[i] = deliver(sandbox.event_body(order=orders[i], status="paid"))
        finally:
            connection.close()

    group = credit_group.current()
    fallbacks_before = group.fallbacks
    first = threading.Thread(
        target=deliver_and_close, args=(sandbox.event_body(order=blocker, status="paid"),)
    )
    threads = [threading.Thread(target=deliver_in_batch, args=(i,)) for i in (0, 1)]
    queue_behind(blocker, first, threads)
    first.join(10)
    time.sleep(0.3)  # the batch of two is now waiting for the chunk's first wallet...
    then_the_other()  # ...which takes its second wallet: no cycle, so no deadlock
    for t in threads:
        t.join(10)
    settlement.close()

    # Then both sides finished: the chunk got both locks, and both top-ups were credited by the
    # batch itself (no deadlock or lock timeout made it fall back).
    assert outcome["settlement"] == "locked both"
    assert group.fallbacks == fallbacks_before
    assert [r.outcome for r in results] == ["credited", "credited"]
    for org in (first_org, second_org):
        assert Wallet.objects.get(organization=org).balance_fen == ledger_sum(org.id)


def test_fee_4_1_a_row_held_elsewhere_does_not_hold_up_the_rest_of_the_batch(monkeypatch):
    # Given a batch of three whose first order is locked by another session for 3 s
    monkeypatch.setattr(wallet_svc, "BATCH_LOCK_TIMEOUT", "200ms")
    org = OrganizationFactory()
    blocker = top_up_create(organization_id=org.id, amount_fen=100)
    busy, free_a, free_b = (
        top_up_create(organization_id=org.id, amount_fen=a) for a in (1_000, 2_000, 3_000)
    )
    group = credit_group.current()
    fallbacks_before = group.fallbacks
    done_at: dict = {}
    other = other_session()
    other.execute("SELECT 1 FROM billing_topuporder WHERE id = %s FOR UPDATE", [busy.pk])

    def run(order):
        try:
            done_at[order.pk] = (
                deliver(sandbox.event_body(order=order, status="paid")).outcome,
                time.monotonic(),
            )
        finally:
            connection.close()

    # When the three are queued together
    first = threading.Thread(target=run, args=(blocker,))
    threads = [threading.Thread(target=run, args=(o,)) for o in (busy, free_a, free_b)]
    queue_behind(blocker, first, threads)
    started = time.monotonic()
    released = threading.Timer(3.0, other.commit)
    released.start()
    for t in [first, *threads]:
        t.join(15)
    other.close()

    # Then the batch gave up on the busy row and the two free orders were credited long before
    # the lock was released; the busy one was credited once it was.
    assert group.fallbacks == fallbacks_before + 1
    assert {pk: outcome for pk, (outcome, _) in done_at.items()} == dict.fromkeys(
        (blocker.pk, busy.pk, free_a.pk, free_b.pk), "credited"
    )
    assert done_at[free_a.pk][1] - started < 2.0 and done_at[free_b.pk][1] - started < 2.0
    assert done_at[busy.pk][1] - started >= 2.5
    assert Wallet.objects.get(organization=org).balance_fen == 6_100 == ledger_sum(org.id)


def test_a_queued_callback_gives_up_after_wait_seconds_but_one_being_written_waits_for_its_answer(
    monkeypatch,
):
    # Given WAIT_SECONDS of 1 s, and a batch of two (B, C) stuck for 2 s on C's order, locked
    # elsewhere, while D queues behind it.
    monkeypatch.setattr(credit_group, "WAIT_SECONDS", 1.0)
    monkeypatch.setattr(wallet_svc, "BATCH_LOCK_TIMEOUT", "10s")
    org = OrganizationFactory()
    a, b, c, d = pending_orders(org, 4)
    group = credit_group.current()
    results: dict = {}

    def run(order):
        try:
            results[order.pk] = deliver(sandbox.event_body(order=order, status="paid")).outcome
        except credit_group.GroupCommitTimeout as exc:
            results[order.pk] = exc
        finally:
            connection.close()

    threads = {o.pk: threading.Thread(target=run, args=(o,)) for o in (a, b, c, d)}
    with other_session() as holder:
        holder.execute("SELECT 1 FROM billing_topuporder WHERE id = %s FOR UPDATE", [c.pk])
        queue_behind(a, threads[a.pk], [threads[b.pk], threads[c.pk]])
        threads[a.pk].join(10)  # A written; B and C now form a batch that waits on C's lock
        wait_until(lambda: leading(group))
        threads[d.pk].start()
        time.sleep(2.0)  # past everyone's WAIT_SECONDS
        holder.commit()
    for t in threads.values():
        t.join(10)

    # Then D, still queued, gave up and was never written; B and C, being written, waited for
    # their answer and were credited.
    assert isinstance(results[d.pk], credit_group.GroupCommitTimeout)
    assert [results[o.pk] for o in (a, b, c)] == ["credited"] * 3
    d.refresh_from_db()
    assert d.state == "pending" and not LedgerEntry.objects.filter(top_up_order=d).exists()
    assert Wallet.objects.get(organization=org).balance_fen == 1_000 + 1_001 + 1_002 == ledger_sum(org.id)
