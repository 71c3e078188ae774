"""Group commit for "paid" callbacks: concurrent webhook requests served by one process share
one statement and one commit (``wallet_credit_paid_events``).

Why: one credit is four row writes, nine CHECKs, three foreign-key checks and a commit. Alone,
it costs several times the CPU of a bare balance UPDATE, and much of that is paid once per
statement or per transaction, not per row: a batch of eight costs about a quarter of the
database time per credit of eight single credits, and a batch on one wallet takes its row lock
once (bench/RESULTS_billing_wallet.md).

How (a leader and followers, as databases do group commit): a request puts its verified event
on its process's queue. If nobody is writing, it becomes the leader: it takes everything queued
and writes it on its own connection in autocommit, so the statement is one transaction, while
the others wait. A request that finds nobody writing and nothing else queued is written at once,
alone, by the one-at-a-time statement. Under load (the last batch held more than one callback)
a new leader waits up to GATHER_SECONDS for as many callbacks as the last batch held: the
requests that batch answered are on their way back, and one statement for all of them is
cheaper than a statement for the first one alone. Every request is answered only after the
statement that wrote it committed: the webhook answers 200 only for a durable credit, as on
the one-at-a-time path.

Each outcome is the one-at-a-time outcome: an item whose event id or order is already in the
batch being formed waits for the next batch, so a repeated delivery still sees the first one
committed (replay / already paid). If a batch statement fails, nothing of it was written, and
each request of it writes its own item alone (``wallet_credit_paid_event``), side by side on
its own connection, so only a bad item fails, and only its own request. A batch waits at most
a second for a row lock held elsewhere (a settlement chunk on one of its wallets, say) before
it fails so: one busy row does not hold up the unrelated credits queued with it for longer.

Used only where the caller is not inside a transaction (the webhook view runs in autocommit):
a caller's transaction must contain its own credit. ``BILLING_TOPUP_GROUP_COMMIT`` turns it
off. Batches form among the requests one process serves at once, so the web server runs
threaded workers (``gunicorn --worker-class gthread --threads N``); with sync workers every
batch is a batch of one, written by the one-at-a-time statement.
"""

import datetime as dt
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection

from billing.services.wallet import PaidEvent, wallet_credit_paid_event, wallet_credit_paid_events

log = logging.getLogger(__name__)

MAX_BATCH = 64
GATHER_SECONDS = 0.001
WAIT_SECONDS = 30  # a request gives up (500; the provider retries) if its batch takes longer


class GroupCommitTimeout(Exception):
    """A queued credit was not written within WAIT_SECONDS."""


@dataclass(eq=False)
class _Item:
    event: PaidEvent
    now: dt.datetime
    done: bool = False
    alone: bool = False  # its batch failed: its own request writes it alone
    result: tuple | None = None
    error: BaseException | None = None


class CreditGroup:
    """One process's queue of "paid" callbacks (see the module docstring)."""

    def __init__(self):
        lock = threading.Lock()
        self._answered = threading.Condition(lock)  # answers are ready, or the leader left
        self._queued = threading.Condition(lock)  # a callback was queued while the leader gathers
        self._queue: deque[_Item] = deque()
        self._writing = False
        self._gathering = False
        self._last = 0  # callbacks in the last batch
        self.batches = 0  # statements written, and callbacks in them (the benchmark reports both)
        self.items = 0
        self.fallbacks = 0  # batches whose statement failed and were written one at a time

    def credit(self, event: PaidEvent, now: dt.datetime) -> tuple[str | None, int | None, bool]:
        item = _Item(event, now)
        deadline = time.monotonic() + WAIT_SECONDS
        with self._answered:
            self._queue.append(item)
            if self._gathering:
                self._queued.notify()
        while True:
            with self._answered:
                while not (item.done or item.alone) and (self._writing or not self._queue):
                    # An item already taken into a batch waits for that batch's answer, however
                    # long, so a 500 never stands for a credit that then commits; one still
                    # queued after WAIT_SECONDS gives up and is never written.
                    queued = item in self._queue
                    timeout = max(0.0, deadline - time.monotonic()) if queued else None
                    if not self._answered.wait(timeout=timeout) and item in self._queue:
                        self._queue.remove(item)
                        raise GroupCommitTimeout(f"top-up {event.out_trade_no}: waited {WAIT_SECONDS} s")
                lead = not (item.done or item.alone)
                if lead:
                    self._writing = True
            if not lead:
                if item.alone:  # its batch failed: written alone, on this request's connection
                    self._write_alone(item)
                if item.error is not None:
                    raise item.error
                return item.result
            try:
                with self._answered:
                    if self._last > 1:
                        self._gathering = True
                        self._queued.wait_for(lambda: len(self._queue) >= self._last, timeout=GATHER_SECONDS)
                        self._gathering = False
                    batch = self._take()
                    self._last = len(batch)
                self._write(batch)
            finally:
                with self._answered:
                    self._gathering = False
                    self._writing = False
                    self._answered.notify_all()

    def _take(self) -> list[_Item]:
        """Everything queued, up to MAX_BATCH, minus items that repeat an event id, an order or
        another provider in the batch (they stay first in the queue for the next batch).
        Called with the lock held."""
        batch, later, events, orders = [], [], set(), set()
        provider = self._queue[0].event.provider if self._queue else None
        while self._queue and len(batch) < MAX_BATCH:
            item = self._queue.popleft()
            event = item.event
            if event.provider != provider or event.event_id in events or event.out_trade_no in orders:
                later.append(item)
                continue
            events.add(event.event_id)
            orders.add(event.out_trade_no)
            batch.append(item)
        self._queue.extendleft(reversed(later))
        return batch

    def _write(self, batch: list[_Item]) -> None:
        """Write ``batch`` and give every item an answer, whatever happens."""
        try:
            self._write_batch(batch)
        finally:
            for item in batch:
                if not (item.done or item.alone):
                    item.error = item.error or RuntimeError("top-up group commit: the batch was not written")
                    item.done = True

    def _write_batch(self, batch: list[_Item]) -> None:
        if not batch:
            return
        self.batches += 1
        self.items += len(batch)
        if len(batch) == 1:
            self._write_alone(batch[0])
            return
        events, now = [item.event for item in batch], [item.now for item in batch]
        try:
            results = wallet_credit_paid_events(events, now=now)
        except DatabaseError as exc:  # the statement failed (a lock held too long, say): nothing written
            self.fallbacks += 1
            log.warning(
                "top-up group commit: batch of %d not written (%s); each request writes its own",
                len(batch),
                exc,
            )
            connection.close_if_unusable_or_obsolete()
            for item in batch:  # each request writes its own, at once and side by side
                item.alone = True
            return
        except Exception as exc:  # every waiting request must get an answer
            log.exception("top-up group commit: batch of %d failed", len(batch))
            for item in batch:
                item.error, item.done = RuntimeError(f"top-up group commit: {exc!r}"), True
            return
        for item, result in zip(batch, results, strict=True):
            item.result, item.done = result, True

    @staticmethod
    def _write_alone(item: _Item) -> None:
        try:
            item.result = wallet_credit_paid_event(**vars(item.event), now=item.now)
        except Exception as exc:  # handed to the request that owns the item
            connection.close_if_unusable_or_obsolete()
            item.error = exc
        item.done = True


_group: CreditGroup | None = None
_group_pid: int | None = None
_group_lock = threading.Lock()


def current() -> CreditGroup:
    """This process's group (a forked worker gets its own)."""
    global _group, _group_pid
    with _group_lock:
        if _group is None or _group_pid != os.getpid():
            _group, _group_pid = CreditGroup(), os.getpid()
        return _group


def applies() -> bool:
    """Whether a credit made now on this thread may go through the group."""
    return settings.BILLING_TOPUP_GROUP_COMMIT and not connection.in_atomic_block


def credit(event: PaidEvent, *, now: dt.datetime) -> tuple[str | None, int | None, bool]:
    """``wallet_credit_paid_event``'s answer for ``event``, written with whatever else is queued."""
    return current().credit(event, now)
