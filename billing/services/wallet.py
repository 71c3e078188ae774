"""Wallet writes: every balance change of billing goes through ``ledger_append`` here.

Contract for settlement (Billing II): ``wallet_charge_for_month_batch`` (set-based, one chunk
of organizations at a time) and its single-organization form ``wallet_charge_for_month``. The
other writers are the top-up credit (``billing.services.topup``) and the deposit transfer
(``billing.services.deposit``). FEE-4.1: there is deliberately no function that appends a
negative entry other than the settlement charge.
"""

import json
import logging
import time
from dataclasses import dataclass

import psycopg
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.numeric import Int8

from billing import errors, locks
from billing.models import DepositEntry, LedgerEntry, TopUpOrder, Wallet
from billing.selectors.wallet import arrears_cache_key
from portal import hotcache

log = logging.getLogger(__name__)

FIRST_CHARGEABLE_MONTH = (2023, 3)  # FEE-4.2: the rules are effective from 2023-03-01


def _forget_arrears_on_commit(organization_id: int) -> None:
    """FEE-6.1: the gate must see a balance change on its next call, so the cached arrears
    decision is dropped as soon as the change is visible to other transactions."""
    key = arrears_cache_key(organization_id)
    transaction.on_commit(lambda: hotcache.delete_many([key]), robust=True)


def _forget_arrears_many_on_commit(organization_ids: list[int]) -> None:
    """``_forget_arrears_on_commit`` for many organizations: one Redis round trip on commit."""
    keys = [arrears_cache_key(o) for o in organization_ids]
    transaction.on_commit(lambda: hotcache.delete_many(keys), robust=True)


def ledger_append(*, wallet: Wallet, kind: str, amount_fen: int, **fields) -> LedgerEntry:
    """Append one entry and move the cached balance with it. ``wallet`` must be locked
    (``locks.wallet_lock``) by the caller's transaction."""
    new_balance = wallet.balance_fen + amount_fen
    entry = LedgerEntry.objects.create(
        wallet=wallet, kind=kind, amount_fen=amount_fen, balance_after_fen=new_balance, **fields
    )
    Wallet.objects.filter(pk=wallet.pk).update(balance_fen=new_balance)
    wallet.balance_fen = new_balance
    _forget_arrears_on_commit(wallet.organization_id)
    return entry


def _check_charge_month(year: int, month: int) -> None:
    if not 1 <= month <= 12:
        raise errors.BillingError(errors.FEE_4_2, "Invalid month.", field="month")
    if (year, month) < FIRST_CHARGEABLE_MONTH:
        raise errors.BillingError(errors.FEE_4_2, "Months before 2023-03 are never charged.", field="month")


# Appends the month's new charges and moves their balances in ONE statement. The caller holds
# every wallet's row lock (``locks.wallets_lock_rows``), so the balances read here cannot move
# before the UPDATE; each wallet gets at most one entry, so balance_after = balance + amount.
_CHARGE_BATCH_SQL = """
WITH v AS (
    SELECT * FROM unnest(%(wallets)s::bigint[], %(amounts)s::bigint[], %(refs)s::text[])
        AS v(wallet_id, amount_fen, reference)
), ins AS (
    INSERT INTO billing_ledgerentry
        (wallet_id, kind, amount_fen, balance_after_fen, period_year, period_month, reference, created_at)
    SELECT w.id, 'settlement_charge', -v.amount_fen, w.balance_fen - v.amount_fen,
           %(year)s, %(month)s, v.reference, %(now)s
    FROM v JOIN billing_wallet w ON w.id = v.wallet_id
    ORDER BY w.id
    RETURNING id, wallet_id, amount_fen, balance_after_fen
), upd AS (
    UPDATE billing_wallet w
    SET balance_fen = ins.balance_after_fen, updated_at = %(now)s
    FROM ins WHERE w.id = ins.wallet_id
    RETURNING w.organization_id, ins.id, ins.amount_fen, ins.balance_after_fen
)
SELECT organization_id, id, amount_fen, balance_after_fen FROM upd
"""


def wallet_charge_for_month_batch(
    *, year: int, month: int, charges: list[tuple[int, int, str]]
) -> dict[int, int]:
    """FEE-4.2: charge many organizations' settled fees for (year, month), each exactly once.

    ``charges`` is a list of (organization id, amount in fen, reference). Returns
    {organization id: ledger entry id} for every organization, whether charged now or before.

    Set-based, whatever the number of organizations: create the missing wallets and lock all
    of them in primary-key order (``locks.wallets_lock_rows``), read the month's existing
    charges, then append the new charges and move the balances in one statement. Same
    guarantees as the single charge: a month already charged with the same amount is skipped
    (idempotent rerun); a different amount raises ``FEE-4.2`` and nothing of the batch is kept;
    the balance may go negative (FEE-6). Runs inside the caller's transaction (as a savepoint)
    and holds the wallet locks until that transaction ends; the unique constraint
    ``billing_ledgerentry_one_charge_per_month`` is the backstop. The gate's cached arrears
    decision is dropped on commit for every organization a charge left in arrears.
    """
    _check_charge_month(year, month)
    by_org: dict[int, tuple[int, str]] = {}
    for organization_id, amount_fen, reference in charges:
        if amount_fen < 0:
            raise errors.BillingError(
                errors.FEE_4_2, "A settlement charge is a non-negative fee.", field="amount_fen"
            )
        if organization_id in by_org:
            raise errors.BillingError(
                errors.FEE_4_2,
                f"Organization {organization_id} is charged twice in one batch.",
                field="charges",
            )
        by_org[organization_id] = (amount_fen, reference[:200] or f"settlement {year}-{month:02d}")
    if not by_org:
        return {}
    with transaction.atomic():
        wallets = locks.wallets_lock_rows(organization_ids=list(by_org))
        org_of_wallet = {wallet_id: org for org, (wallet_id, _) in wallets.items()}
        result: dict[int, int] = {}
        with connection.cursor() as cur:
            cur.execute(
                "SELECT wallet_id, id, amount_fen FROM billing_ledgerentry"
                " WHERE kind = 'settlement_charge' AND period_year = %s AND period_month = %s"
                " AND wallet_id = ANY(%s::bigint[])",
                [year, month, list(org_of_wallet)],
            )
            for wallet_id, entry_id, charged in cur.fetchall():
                org = org_of_wallet[wallet_id]
                amount_fen = by_org[org][0]
                if charged != -amount_fen:
                    raise errors.BillingConflict(
                        errors.FEE_4_2,
                        f"{year}-{month:02d} was already charged {-charged} fen to organization {org};"
                        f" a different amount ({amount_fen} fen) is refused.",
                        field="amount_fen",
                    )
                result[org] = entry_id
            todo = sorted((wallets[org][0], org) for org in by_org if org not in result)
            arrears: list[int] = []
            if todo:
                cur.execute(
                    _CHARGE_BATCH_SQL,
                    {
                        "wallets": [w for w, _ in todo],
                        "amounts": [by_org[o][0] for _, o in todo],
                        "refs": [by_org[o][1] for _, o in todo],
                        "year": year,
                        "month": month,
                        "now": timezone.now(),
                    },
                )
                rows = cur.fetchall()
                if len(rows) != len(todo):  # cannot happen: every wallet row is locked by us
                    raise RuntimeError(f"batch charge {year}-{month:02d}: {len(rows)} of {len(todo)} written")
                for org, entry_id, amount_fen, balance_after in rows:
                    result[org] = entry_id
                    # FEE-6.1: only a positive charge that leaves the wallet negative can turn
                    # the decision to "arrears" (one already negative is cleared as well).
                    if amount_fen < 0 and balance_after < 0:
                        arrears.append(org)
        if arrears:
            _forget_arrears_many_on_commit(arrears)
        return result


def wallet_charge_for_month(
    *, organization_id: int, year: int, month: int, amount_fen: int, reference: str = ""
) -> LedgerEntry:
    """FEE-4.2: charge the organization's settled fee for (year, month), exactly once.

    Idempotent: a second call with the same arguments returns the first entry; a different
    amount for a month already charged raises ``FEE-4.2``. The charge may take the balance
    negative (FEE-6 arrears). Runs inside the caller's transaction (as a savepoint) and holds
    the wallet lock until that transaction ends; the unique constraint
    ``billing_ledgerentry_one_charge_per_month`` is the backstop. A batch of one
    (``wallet_charge_for_month_batch``).
    """
    entry_ids = wallet_charge_for_month_batch(
        year=year, month=month, charges=[(organization_id, amount_fen, reference)]
    )
    return LedgerEntry.objects.get(pk=entry_ids[organization_id])


def wallet_credit_top_up(*, order: TopUpOrder) -> LedgerEntry:
    """Credit a paid top-up order. The caller holds the order's row lock and has just moved
    it to paid, so a second credit is impossible; the one-to-one ``top_up_order`` is the
    database backstop (one credit per order, however many deliveries race).

    No savepoint (it joins the caller's transaction) and the balance moves with one
    ``UPDATE … RETURNING`` that takes the wallet's row lock: this is the top-up hot path.
    """
    if order.amount_fen <= 0:  # the DB check refuses it too; this names the rule
        raise errors.BillingError(errors.TOP_UP_AMOUNT, "A top-up credit is positive.")
    with transaction.atomic(savepoint=False):
        moved = locks.wallet_increment(organization_id=order.organization_id, amount_fen=order.amount_fen)
        if moved is None:  # first money of this organization: create the wallet, then move
            locks.wallet_lock(organization_id=order.organization_id)
            moved = locks.wallet_increment(organization_id=order.organization_id, amount_fen=order.amount_fen)
        wallet_id, new_balance = moved
        entry = LedgerEntry.objects.create(
            wallet_id=wallet_id,
            kind=LedgerEntry.Kind.TOP_UP_CREDIT,
            amount_fen=order.amount_fen,
            balance_after_fen=new_balance,
            top_up_order=order,
            reference=f"top-up {order.out_trade_no}",
        )
        _forget_arrears_on_commit(order.organization_id)
        return entry


# The top-up hot path as ONE statement (one round trip, atomic by itself). Order of the CTEs:
# lock the order (serialises every delivery of one payment) → decide the outcome from the
# locked row → store the event (its unique id refuses a replay: nothing below runs) → mark
# the order paid → move the balance with an upsert (the row lock queues concurrent credits;
# the wallet is created on first money) → append the credit (unique per order: backstop).
_CREDIT_PAID_EVENT_SQL = """
WITH o AS (
    SELECT id, organization_id, amount_fen, currency, state
    FROM billing_topuporder
    WHERE out_trade_no = %(out_trade_no)s AND provider = %(provider)s
    FOR UPDATE
), verdict AS (
    SELECT CASE
        WHEN NOT EXISTS (SELECT 1 FROM o) THEN 'unknown_order'
        WHEN (SELECT amount_fen <> %(amount_fen)s OR currency <> %(currency)s FROM o) THEN 'rejected_mismatch'
        WHEN (SELECT state FROM o) = 'paid' THEN 'already_paid'
        ELSE 'credited'
    END AS outcome
), e AS (
    INSERT INTO billing_paymentevent
        (provider, event_id, order_id, status, amount_fen, currency, outcome, payload, received_at)
    SELECT %(provider)s, %(event_id)s, (SELECT id FROM o), 'paid', %(amount_fen)s, %(currency)s,
           verdict.outcome, %(payload)s::jsonb, %(now)s
    FROM verdict
    ON CONFLICT (provider, event_id) DO NOTHING
    RETURNING outcome
), paid AS (
    UPDATE billing_topuporder t
    SET state = 'paid', paid_at = %(now)s, finished_at = %(now)s, provider_trade_no = %(provider_trade_no)s
    FROM o, e
    WHERE t.id = o.id AND e.outcome = 'credited'
    RETURNING t.id, t.organization_id, t.amount_fen, t.out_trade_no
), w AS (
    INSERT INTO billing_wallet (organization_id, balance_fen, created_at, updated_at)
    SELECT organization_id, amount_fen, %(now)s, %(now)s FROM paid
    ON CONFLICT (organization_id) DO UPDATE
        SET balance_fen = billing_wallet.balance_fen + EXCLUDED.balance_fen, updated_at = EXCLUDED.updated_at
    RETURNING id, balance_fen
), l AS (
    INSERT INTO billing_ledgerentry
        (wallet_id, kind, amount_fen, balance_after_fen, top_up_order_id, reference, created_at)
    SELECT w.id, 'top_up_credit', paid.amount_fen, w.balance_fen, paid.id,
           'top-up ' || paid.out_trade_no, %(now)s
    FROM paid, w
    RETURNING id
)
SELECT (SELECT outcome FROM e), (SELECT organization_id FROM o), (SELECT count(*) FROM l),
       (SELECT balance_fen FROM w), (SELECT amount_fen FROM paid)
"""


# The same callback applied to several orders at once (group commit, ``billing.services.
# credit_group``): one statement, one commit, one pass over each table's CHECKs for the whole
# batch. The caller guarantees that no event id and no order appears twice in one batch, so
# each item's outcome is what the one-at-a-time statement would give. Orders and then wallets
# are locked in id order, the order settlement locks wallets in (``locks.wallets_lock_rows``),
# so a batch cannot deadlock with another batch or a settlement chunk. A lock held elsewhere
# longer than ``lock_timeout`` (set for this statement's transaction only) fails the batch
# (nothing written) and the caller writes its items one at a time, so one busy row does not
# hold up the unrelated credits queued with it. A wallet credited twice in one batch gets one
# UPDATE and a ledger entry per credit whose balance_after runs in item order (ledger ids
# follow the same order).
_CREDIT_PAID_EVENTS_SQL = """
WITH req AS (
    SELECT (r.ord - 1)::int4 AS idx, r.item ->> 0 AS event_id, r.item ->> 1 AS out_trade_no,
           (r.item ->> 2)::int8 AS amount_fen, r.item ->> 3 AS currency,
           r.item ->> 4 AS provider_trade_no, r.item -> 5 AS payload, (r.item ->> 6)::timestamptz AS now
    FROM (SELECT set_config('lock_timeout', %(lock_timeout)s, true)) AS cfg(lock_timeout),
         jsonb_array_elements(%(items)s::jsonb) WITH ORDINALITY AS r(item, ord)
), o AS (
    SELECT id, organization_id, amount_fen, currency, state, out_trade_no
    FROM billing_topuporder
    WHERE out_trade_no IN (SELECT out_trade_no FROM req) AND provider = %(provider)s
    ORDER BY id
    FOR UPDATE
), verdict AS (
    SELECT r.idx, r.event_id, r.amount_fen, r.currency, r.provider_trade_no, r.payload, r.now,
           o.id AS order_id, o.organization_id,
           CASE
               WHEN o.id IS NULL THEN 'unknown_order'
               WHEN o.amount_fen <> r.amount_fen OR o.currency <> r.currency THEN 'rejected_mismatch'
               WHEN o.state = 'paid' THEN 'already_paid'
               ELSE 'credited'
           END AS outcome
    FROM req r LEFT JOIN o ON o.out_trade_no = r.out_trade_no
), e AS (
    INSERT INTO billing_paymentevent
        (provider, event_id, order_id, status, amount_fen, currency, outcome, payload, received_at)
    SELECT %(provider)s, event_id, order_id, 'paid', amount_fen, currency, outcome, payload, now
    FROM verdict
    ORDER BY idx
    ON CONFLICT (provider, event_id) DO NOTHING
    RETURNING event_id, outcome
), paid AS (
    UPDATE billing_topuporder t
    SET state = 'paid', paid_at = v.now, finished_at = v.now, provider_trade_no = v.provider_trade_no
    FROM verdict v JOIN e ON e.event_id = v.event_id
    WHERE t.id = v.order_id AND e.outcome = 'credited'
    RETURNING v.idx, v.now, t.id, t.organization_id, t.amount_fen, t.out_trade_no
), per_wallet AS (
    SELECT organization_id, sum(amount_fen)::int8 AS total, min(now) AS first, max(now) AS last
    FROM paid GROUP BY organization_id
), w AS (
    INSERT INTO billing_wallet (organization_id, balance_fen, created_at, updated_at)
    SELECT pw.organization_id, pw.total, pw.first, pw.last
    FROM per_wallet pw LEFT JOIN billing_wallet b ON b.organization_id = pw.organization_id
    ORDER BY b.id NULLS LAST, pw.organization_id
    ON CONFLICT (organization_id) DO UPDATE
        SET balance_fen = billing_wallet.balance_fen + EXCLUDED.balance_fen, updated_at = EXCLUDED.updated_at
    RETURNING id, organization_id, balance_fen
), l AS (
    INSERT INTO billing_ledgerentry
        (wallet_id, kind, amount_fen, balance_after_fen, top_up_order_id, reference, created_at)
    SELECT w.id, 'top_up_credit', paid.amount_fen,
           w.balance_fen - pw.total
               + sum(paid.amount_fen) OVER (PARTITION BY paid.organization_id ORDER BY paid.idx),
           paid.id, 'top-up ' || paid.out_trade_no, paid.now
    FROM paid
    JOIN w ON w.organization_id = paid.organization_id
    JOIN per_wallet pw ON pw.organization_id = paid.organization_id
    ORDER BY paid.idx
    RETURNING top_up_order_id, amount_fen, balance_after_fen
)
SELECT v.idx, e.outcome, v.organization_id, l.balance_after_fen, l.amount_fen
FROM verdict v
LEFT JOIN e ON e.event_id = v.event_id
LEFT JOIN l ON l.top_up_order_id = v.order_id
ORDER BY v.idx
"""


_ONLY_WHEN_ASKED = 2**31 - 1  # psycopg's automatic preparation after N runs: never


def _execute_prepared(sql: str, params: dict, *, fetch: str):
    """Run one hot-path statement as a server-side prepared statement; return its one row
    (``fetch="one"``) or all its rows.

    Django's psycopg backend binds parameters on the client and turns prepared statements off
    (``prepare_threshold=None``, for transaction-mode poolers), so the server parses and plans
    the statement on every call; for the top-up CTE that was about as much server time as
    executing it (bench/RESULTS_billing_wallet.md). Here a server-binding cursor on Django's
    own connection prepares it once per connection and then only binds and executes. Django's
    cursors are client-binding and never prepare, so the threshold set below changes nothing
    for them; other server-binding cursors are only prepared when they ask (``prepare=True``).
    Not for a transaction-mode pooler without prepared-statement support (none is deployed).

    Same connection, so the caller's transaction (or autocommit) applies as for any Django
    query; errors come out as Django's database errors, and the query is recorded wherever
    Django records queries (tests' query counts, DEBUG).
    """
    connection.validate_no_broken_transaction()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = _ONLY_WHEN_ASKED
    start = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cur:
        cur.execute(sql, params, prepare=True)
        result = cur.fetchone() if fetch == "one" else cur.fetchall()
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - start:.3f}"})
    return result


def wallet_credit_paid_event(
    *,
    provider: str,
    event_id: str,
    out_trade_no: str,
    amount_fen: int,
    currency: str,
    provider_trade_no: str,
    payload: dict,
    now,
) -> tuple[str | None, int | None, bool]:
    """Apply a verified "paid" callback in one statement (see ``_CREDIT_PAID_EVENT_SQL``).

    Returns (outcome, organization id, credited); outcome None means the event id was
    already stored — a replay, and nothing was changed. Outcomes: ``credited``,
    ``already_paid`` (another event for the same payment), ``rejected_mismatch`` (amount or
    currency differs from the order; stored, nothing credited), ``unknown_order``.
    """
    outcome, organization_id, credits, balance_after, amount = _execute_prepared(
        _CREDIT_PAID_EVENT_SQL,
        {
            "provider": provider,
            "event_id": event_id,
            "out_trade_no": out_trade_no,
            "amount_fen": Int8(amount_fen),
            "currency": currency,
            "provider_trade_no": provider_trade_no,
            "payload": json.dumps(payload),
            "now": now,
        },
        fetch="one",
    )
    credited = outcome == "credited"
    if credited != (credits == 1):  # cannot happen: the upsert always yields the wallet row
        raise RuntimeError(f"top-up {out_trade_no}: outcome {outcome} but {credits} credit(s)")
    if credited and balance_after - amount < 0:
        # Only a wallet that was in arrears can change its arrears decision on a credit: with
        # a balance ≥ 0 before, the decision is "no arrears" before and after (and any older
        # cached "arrears" was dropped by the credit that ended them). Saves a Redis round
        # trip on almost every top-up.
        _forget_arrears_on_commit(organization_id)
    return outcome, organization_id, credited


BATCH_LOCK_TIMEOUT = "1s"  # see _CREDIT_PAID_EVENTS_SQL


@dataclass(frozen=True)
class PaidEvent:
    """A verified "paid" callback, as ``wallet_credit_paid_event`` takes it."""

    provider: str
    event_id: str
    out_trade_no: str
    amount_fen: int
    currency: str
    provider_trade_no: str
    payload: dict


def wallet_credit_paid_events(
    events: list[PaidEvent], *, now: list
) -> list[tuple[str | None, int | None, bool]]:
    """``wallet_credit_paid_event`` for several callbacks of one provider in one statement
    (``now[i]`` is the time event i was received).

    Returns one (outcome, organization id, credited) per event, in order, each what the
    one-at-a-time call would have returned had the events come one after the other. The caller
    (``billing.services.credit_group``) never puts the same event id or order in one batch; a
    batch that breaks this is refused before anything is written.
    """
    if not events:
        return []
    provider = events[0].provider
    if any(e.provider != provider for e in events):
        raise ValueError("one provider per batch")
    if len({e.event_id for e in events}) < len(events) or len({e.out_trade_no for e in events}) < len(events):
        raise ValueError("an event id or an order appears twice in one batch")
    rows = _execute_prepared(
        _CREDIT_PAID_EVENTS_SQL,
        {
            "provider": provider,
            "lock_timeout": BATCH_LOCK_TIMEOUT,
            "items": json.dumps(
                [
                    [
                        e.event_id,
                        e.out_trade_no,
                        e.amount_fen,
                        e.currency,
                        e.provider_trade_no,
                        e.payload,
                        n.isoformat(),
                    ]
                    for e, n in zip(events, now, strict=True)
                ]
            ),
        },
        fetch="all",
    )
    results, back_in_black = [], []
    for idx, outcome, organization_id, balance_after, amount in rows:
        credited = outcome == "credited"
        if credited != (balance_after is not None) or idx != len(results):  # cannot happen
            raise RuntimeError(f"top-up batch item {idx}: outcome {outcome}, balance {balance_after}")
        if credited and balance_after - amount < 0:
            back_in_black.append(organization_id)  # in arrears before: see wallet_credit_paid_event
        results.append((outcome, organization_id, credited))
    if back_in_black:
        _forget_arrears_many_on_commit(back_in_black)
    return results


def wallet_credit_deposit_transfer(*, wallet: Wallet, deposit_entry: DepositEntry) -> LedgerEntry:
    """FEE-6.3: the wallet side of a deposit → wallet transfer (caller holds both locks)."""
    return ledger_append(
        wallet=wallet,
        kind=LedgerEntry.Kind.DEPOSIT_TRANSFER,
        amount_fen=-deposit_entry.amount_fen,
        deposit_entry=deposit_entry,
        reference=deposit_entry.note or "deposit transfer",
    )
