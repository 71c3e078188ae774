"""Locks of Billing II: PostgreSQL advisory locks (settlement) and row locks in pk order.

Advisory lock keys are two int4s: a namespace per purpose and an id. Transaction-level locks
are released at commit/rollback, so a crashed worker never leaves one behind; the
session-level month lock is released in ``finally`` and by PostgreSQL if the connection dies.
"""

from contextlib import contextmanager

from django.db import connection

NS_SETTLEMENT_MONTH = 42_001  # one month's run: two beats/workers never run one month together
NS_SETTLEMENT_CHUNK = 42_002  # one chunk of organizations: a redelivered task waits, then skips
NS_USAGE_PARTITION = 42_003  # creating a month's partition
NS_PRICES = 42_004  # price and tier history: a change (exclusive) vs a month's planning (shared)
NS_USAGE_INGEST = 42_005  # usage batches being written (shared) vs a month's planning (exclusive)


def month_key(year: int, month: int) -> int:
    return year * 100 + month


def advisory_xact_lock(namespace: int, key: int) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [namespace, key])


def advisory_xact_lock_shared(namespace: int, key: int) -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [namespace, key])


def advisory_xact_try_lock(namespace: int, key: int) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [namespace, key])
        return cur.fetchone()[0]


@contextmanager
def advisory_session_try_lock(namespace: int, key: int):
    """Yield True if this session got the lock (held until the block ends), else False."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        got = cur.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])


def lock_app(app_id: int):
    from billing.models import App

    return App.objects.select_for_update().get(pk=app_id)


def lock_settlement_run(run_id: int):
    """The run's row, for a chunk that fails or is reset: the status it then sets depends on
    every other chunk of the run, and the last chunk to finish holds this row too (its progress
    update), so whichever of them commits second sees the other."""
    from billing.models import SettlementRun

    return SettlementRun.objects.select_for_update().get(pk=run_id)
