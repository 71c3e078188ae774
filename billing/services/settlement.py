"""Monthly settlement (FEE-4.2) and the arrears it can cause (FEE-6).

Exactly once per (organization, month), whatever crashes, retries or races happen:
1. ``settlement_run_month`` holds a session-level advisory lock on the month, so two beats or
   workers cannot run one month together (the loser returns at once).
2. Planning (``settlement_plan_month``, one transaction under a transaction-level month lock)
   aggregates the month in SQL — GROUP BY over the month's partition, each usage day billed
   by the tier and priced with the price then in force — into ``SettlementLine`` rows, and
   splits the organizations into ``SettlementChunk`` rows. A rerun reuses the plan, so bills
   never depend on when a retry happened.
3. Each chunk (``settlement_settle_chunk``, one transaction under a chunk advisory lock)
   writes Bill / BillApp / BillLine set-based from the staged lines, and charges all its
   organizations at once through Billing I's ``wallet_charge_for_month_batch`` in the same
   transaction. A crash rolls the whole chunk back; a rerun settles it.
   ``billing_bill_one_per_org_month`` and the ledger's one-charge-per-month constraint are
   the backstops. Each attempt at a chunk is counted before its work starts; a chunk that
   used up ``BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS`` (its worker keeps dying, or it keeps
   raising) is failed and waits for staff to reset it, and its month ends FAILED.
4. An organization with a paid API used on a day without a price in force is refused, not
   billed at 0 (FEE-4.2): the error names the API and days on the run's ``last_error``, the
   other organizations settle, and the run ends FAILED. The next run (beat catch-up or admin)
   re-stages only the refused organizations and settles them once staff added the price.
Money: line = round_half_up(Σ_day calls * price / 1000) computed exactly in integers
(``div(S + 500, 1000)``). Discounts (FEE-5.1) apply to the Asia/Shanghai usage days inside
their validity (highest rate if two ever cover one day); per app, discount =
round_half_up(Σ rate x round_half_up(the line's amount on days at that rate)) — see
``DISCOUNT_CTES``. Discounts are read when the month is planned; settled months are never
recomputed.
"""

import datetime as dt
import logging

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, F, OuterRef, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext

from billing.locks_metering import (
    NS_PRICES,
    NS_SETTLEMENT_CHUNK,
    NS_SETTLEMENT_MONTH,
    NS_USAGE_INGEST,
    advisory_session_try_lock,
    advisory_xact_lock,
    advisory_xact_lock_shared,
    lock_settlement_run,
    month_key,
)
from billing.models import FIRST_BILLABLE, Bill, SettlementChunk, SettlementRun
from billing.services.wallet import wallet_charge_for_month_batch
from portal import clock
from portal.errors import Conflict, DomainError

log = logging.getLogger(__name__)
DEFAULT_CHUNK_SIZE = 500

# The month's lines. Prices: each price row is in force from effective_from until the next
# row of the same API; tiers likewise (``billing_apitierchange``). A usage day on which its API
# was free is never billed (FEE-2.1), whatever the API's tier is now: the tier row is filtered
# after the window, so a free row still ends the paid row before it. A paid usage day with no
# price in force (before its first price row) is not priced at 0: it stays in ``prices`` as
# an entry with ``"price": null`` and its ``unpriced_days``, and settlement refuses to bill
# that organization (FEE-4.2) until staff add the price.
#
# Discounts (FEE-5.1) apply per Asia/Shanghai usage day inside their validity
# (valid_from..valid_to, both inclusive, no open ends); should two of an app's discounts ever
# cover one day (the database refuses it) the highest rate applies to that day. Each price
# entry lists the calls that fell on discounted days per rate under ``discounted``, so the
# bill line shows what was discounted; the money is computed from them (``DISCOUNT_CTES``).
#
# Parameters: start, end (the month's half-open Asia/Shanghai range). Its first and last days
# are derived from them, so the bare aggregation can still be run on its own (bench/).
LINES_SQL = """
    WITH pr AS (
        SELECT api_id, price_fen_per_1000 AS price, effective_from AS from_date,
               lead(effective_from) OVER (PARTITION BY api_id ORDER BY effective_from) AS to_date
        FROM billing_apiprice
    ),
    tr AS (
        SELECT api_id, tier, effective_from AS from_date,
               lead(effective_from) OVER (PARTITION BY api_id ORDER BY effective_from) AS to_date
        FROM billing_apitierchange
    ),
    disc_day AS (
        SELECT dc.app_id, g.day::date AS day, max(dc.rate) AS rate
        FROM billing_discount dc
        CROSS JOIN LATERAL generate_series(
            greatest(dc.valid_from, (%(start)s::timestamptz AT TIME ZONE 'Asia/Shanghai')::date),
            least(dc.valid_to, (%(end)s::timestamptz AT TIME ZONE 'Asia/Shanghai')::date - 1),
            interval '1 day'
        ) AS g(day)
        WHERE dc.valid_from < (%(end)s::timestamptz AT TIME ZONE 'Asia/Shanghai')::date
          AND dc.valid_to >= (%(start)s::timestamptz AT TIME ZONE 'Asia/Shanghai')::date
        GROUP BY 1, 2
    ),
    daily AS (
        SELECT u.app_id, u.api_id, u.location, (u.hour AT TIME ZONE 'Asia/Shanghai')::date AS day,
               sum(u.calls) AS calls
        FROM billing_usage_hourly u
        WHERE u.hour >= %(start)s AND u.hour < %(end)s /*only_orgs*/
        GROUP BY 1, 2, 3, 4
    ),
    banded AS (
        SELECT d.app_id, d.api_id, d.location, pr.price,
               CASE WHEN pr.price IS NULL THEN 0 ELSE coalesce(dd.rate, 0) END AS rate,
               min(d.day) AS from_day, sum(d.calls) AS calls,
               array_agg(d.day) FILTER (WHERE pr.price IS NULL) AS unpriced_days  -- sorted when shown
        FROM daily d
        JOIN billing_api x ON x.id = d.api_id
        LEFT JOIN tr ON tr.api_id = d.api_id AND d.day >= tr.from_date
                    AND (tr.to_date IS NULL OR d.day < tr.to_date)
        LEFT JOIN pr ON pr.api_id = d.api_id AND d.day >= pr.from_date
                    AND (pr.to_date IS NULL OR d.day < pr.to_date)
        LEFT JOIN disc_day dd ON dd.app_id = d.app_id AND dd.day = d.day
        -- the tier in force that day; every API has a row from 2000-01-01 (FEE-2.1, a
        -- trigger), so only a day before that could find none: it takes the current tier
        WHERE coalesce(tr.tier, x.tier) <> 'free'
        GROUP BY 1, 2, 3, 4, 5
    ),
    priced AS (
        SELECT app_id, api_id, location, price, min(from_day) AS from_day, sum(calls) AS calls,
               jsonb_agg(jsonb_build_object('rate', rate, 'calls', calls) ORDER BY rate)
                   FILTER (WHERE rate > 0) AS discounted,
               max(unpriced_days) AS unpriced_days
        FROM banded
        GROUP BY 1, 2, 3, 4
    )
    SELECT a.organization_id, p.app_id, p.api_id, p.location, sum(p.calls)::bigint AS calls,
           coalesce(div(sum(p.calls::numeric * p.price) + 500, 1000), 0)::bigint AS amount_fen,
           jsonb_agg(
               jsonb_build_object('price', p.price, 'calls', p.calls, 'from', p.from_day)
               || CASE WHEN p.discounted IS NULL THEN '{}'::jsonb
                       ELSE jsonb_build_object('discounted', p.discounted) END
               || CASE WHEN p.price IS NULL THEN jsonb_build_object('unpriced_days', p.unpriced_days)
                       ELSE '{}'::jsonb END
               ORDER BY p.from_day
           ) AS prices
    FROM priced p JOIN billing_app a ON a.id = p.app_id
    GROUP BY a.organization_id, p.app_id, p.api_id, p.location
"""

# The month's lines of some organizations only (a rerun of those refused for a missing price).
LINES_OF_ORGS_SQL = LINES_SQL.replace(
    "/*only_orgs*/",
    "AND u.app_id IN (SELECT id FROM billing_app WHERE organization_id = ANY(%(orgs)s::bigint[]))",
)

# Per-app discount from lines ``l`` (organization_id, app_id, api_id, location, amount_fen,
# prices). Money, defined once here: a line's discountable amount at a rate is
# round_half_up(Σ calls x price / 1000) over its calls on days discounted at that rate
# (``div(S + 500, 1000)``, exact integers; never more than the line's own amount); the app's
# discount = round_half_up(Σ rate x discountable amount) in fen (``floor(x + 0.5)`` in exact
# numeric). A discount covering the whole month therefore gives round_half_up(subtotal x
# rate). The rate shown on the bill is the highest one applied in the month.
DISCOUNT_CTES = """
    sub AS (
        SELECT organization_id, app_id, sum(amount_fen) AS subtotal FROM l GROUP BY 1, 2
    ),
    band AS (
        SELECT l.app_id, (d ->> 'rate')::numeric AS rate,
               div(sum((d ->> 'calls')::numeric * (p ->> 'price')::numeric) + 500, 1000) AS amount_fen
        FROM l
        CROSS JOIN LATERAL jsonb_array_elements(l.prices) AS p
        CROSS JOIN LATERAL jsonb_array_elements(p -> 'discounted') AS d
        WHERE l.prices @> '[{"discounted": []}]'  -- only lines with a discounted day are expanded
        GROUP BY l.app_id, l.api_id, l.location, 2
    ),
    disc AS (
        SELECT app_id, max(rate) AS rate, floor(sum(rate * amount_fen) + 0.5) AS discount
        FROM band GROUP BY app_id
    )
"""

# Per-app subtotals and discounts of some organizations, from a run's staged lines.
APPS_SQL = f"""
    CREATE TEMP TABLE billing_settle_apps ON COMMIT DROP AS
    WITH l AS (
        SELECT l.organization_id, l.app_id, l.api_id, l.location, l.amount_fen, l.prices
        FROM unnest(%(orgs)s::bigint[]) AS o(id)
        JOIN billing_settlementline l ON l.run_id = %(run)s AND l.organization_id = o.id
    ),
    {DISCOUNT_CTES}
    SELECT sub.organization_id, sub.app_id, sub.subtotal::bigint AS subtotal,
           coalesce(disc.rate, 0) AS rate, coalesce(disc.discount, 0)::bigint AS discount
    FROM sub LEFT JOIN disc ON disc.app_id = sub.app_id
"""

# Staged lines with a usage day that had no price in force (FEE-4.2 refuses those bills).
UNPRICED_SQL = """
    SELECT l.organization_id, a.app_key, x.code,
           (SELECT string_agg(d, ', ' ORDER BY d) FROM jsonb_array_elements_text(p -> 'unpriced_days') AS d)
    FROM unnest(%(orgs)s::bigint[]) AS o(id)
    JOIN billing_settlementline l ON l.run_id = %(run)s AND l.organization_id = o.id
        AND l.prices @> '[{"price": null}]'  -- only lines with an unpriced day are expanded
    CROSS JOIN LATERAL jsonb_array_elements(l.prices) AS p
    JOIN billing_app a ON a.id = l.app_id
    JOIN billing_api x ON x.id = l.api_id
    WHERE p -> 'price' = 'null'::jsonb
    ORDER BY l.organization_id, a.app_key, x.code, l.location
"""


# FEE-4.2: the previous month is totalled and charged on the 5th (Asia/Shanghai).
SETTLEMENT_DAY = 5


def settlement_opens_at(year: int, month: int) -> dt.datetime:
    """The first instant (Asia/Shanghai) at which (year, month) may be settled: the 5th of the
    next month. Usage of the month arriving late is ingested until then; settling earlier
    would charge early and make ingest refuse that usage as "month already settled"."""
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    return clock.start_of_day(dt.date(ny, nm, SETTLEMENT_DAY))


def _check_month(year: int, month: int, *, now: dt.datetime | None = None) -> None:
    if not 1 <= month <= 12:
        raise DomainError("FEE-4.2", gettext("月份无效。"), field="month")
    if (year, month) < FIRST_BILLABLE:
        raise DomainError("FEE-4.2", gettext("2023年3月之前的月份不收费。"), field="month")
    opens = settlement_opens_at(year, month)
    if (now or clock.now()) < opens:
        raise DomainError(
            "FEE-4.2",
            gettext("FEE-4.2: 每月5日(北京时间)结算上一个自然月; %(month)s 最早可在 %(date)s 结算。")
            % {"month": f"{year}-{month:02d}", "date": opens.date().isoformat()},
            field="month",
        )


def _stage_lines(cur, *, run: SettlementRun, orgs: list[int] | None = None) -> tuple[int, list[int]]:
    """Aggregate the month's usage (or only ``orgs``') into the run's staged lines; returns the
    number of lines and the organizations they belong to, in primary-key order."""
    start, end = clock.month_range(run.year, run.month)
    sql = LINES_SQL if orgs is None else LINES_OF_ORGS_SQL
    # Aggregate into a temporary table first: PostgreSQL runs CREATE TABLE AS with a
    # parallel plan (like the bare SELECT), never INSERT … SELECT. The copy of the
    # month's few lines (one per app, API and location) into the run is cheap.
    cur.execute("DROP TABLE IF EXISTS billing_settle_lines")
    cur.execute(
        f"CREATE TEMP TABLE billing_settle_lines ON COMMIT DROP AS {sql}",
        {"start": start, "end": end, "orgs": orgs},
    )
    cur.execute(
        "INSERT INTO billing_settlementline"
        " (run_id, organization_id, app_id, api_id, location, calls, amount_fen, prices)"
        " SELECT %s, organization_id, app_id, api_id, location, calls, amount_fen, prices"
        " FROM billing_settle_lines ORDER BY organization_id, app_id, api_id, location",
        [run.pk],
    )
    lines = cur.rowcount
    cur.execute("SELECT DISTINCT organization_id FROM billing_settle_lines ORDER BY 1")
    staged_orgs = [r[0] for r in cur.fetchall()]
    cur.execute("DROP TABLE billing_settle_lines")
    return lines, staged_orgs


def _add_chunks(*, run: SettlementRun, orgs: list[int], chunk_size: int, first_index: int = 0) -> int:
    chunks = [
        SettlementChunk(run=run, index=first_index + i, organization_ids=orgs[pos : pos + chunk_size])
        for i, pos in enumerate(range(0, len(orgs), chunk_size))
    ]
    SettlementChunk.objects.bulk_create(chunks)
    return len(chunks)


def _restage_refused(*, run: SettlementRun, chunk_size: int) -> None:
    """A rerun of a run whose chunks are all done but some organizations were refused (FEE-4.2:
    a usage day had no price in force): re-aggregate only those organizations from usage and
    prices as they are now, into a new chunk. Billed organizations are never touched."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT DISTINCT l.organization_id FROM billing_settlementline l
            WHERE l.run_id = %(run)s AND NOT EXISTS (
                SELECT 1 FROM billing_bill b
                WHERE b.organization_id = l.organization_id AND b.year = %(y)s AND b.month = %(m)s)
            ORDER BY 1
            """,
            {"run": run.pk, "y": run.year, "m": run.month},
        )
        refused = [r[0] for r in cur.fetchall()]
        if not refused:
            return
        cur.execute(
            "DELETE FROM billing_settlementline WHERE run_id = %s AND organization_id = ANY(%s::bigint[])",
            [run.pk, refused],
        )
        removed = cur.rowcount
        lines, orgs = _stage_lines(cur, run=run, orgs=refused)
    next_index = (run.chunks.order_by("-index").values_list("index", flat=True).first() or 0) + 1
    added = _add_chunks(run=run, orgs=orgs, chunk_size=chunk_size, first_index=next_index)
    # Refused organizations were never counted in orgs_done; those without usage any more drop out.
    run.orgs_total = run.orgs_total - len(refused) + len(orgs)
    run.chunks_total += added
    run.lines_total = run.lines_total - removed + lines
    done = run.orgs_done == run.orgs_total and not added
    run.status = SettlementRun.Status.DONE if done else SettlementRun.Status.RUNNING
    run.finished_at = timezone.now() if done else None
    run.last_error = ""
    run.save(
        update_fields=["orgs_total", "chunks_total", "lines_total", "status", "finished_at", "last_error"]
    )


def settlement_plan_month(
    *, year: int, month: int, actor=None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> SettlementRun:
    """Create (or return) the month's run with its staged lines and chunks. Idempotent.

    A run whose chunks are all done while some organizations were refused for a missing
    price gets those organizations re-staged (``_restage_refused``)."""
    with transaction.atomic():
        advisory_xact_lock(NS_SETTLEMENT_MONTH, month_key(year, month))
        # Prices and tiers are read below (discounts by the chunks): a price, tier or discount
        # change (``api_price_set``, ``api_update``, ``discount_set``/``discount_delete``,
        # exclusive) waits for this plan and then sees its run, or this plan waits for the
        # change and reads it.
        advisory_xact_lock_shared(NS_PRICES, 0)
        run, _ = SettlementRun.objects.get_or_create(
            year=year,
            month=month,
            defaults={"started_by": actor if getattr(actor, "is_authenticated", False) else None},
        )
        if run.status == SettlementRun.Status.DONE:
            return run
        if run.chunks_total:
            # Only once every chunk is done: a failed chunk's organizations have no bill either,
            # but they are staff's to reset (``settlement_chunk_reset``), never re-staged.
            if not run.chunks.filter(done_at__isnull=True).exists():
                _restage_refused(run=run, chunk_size=chunk_size)
            return run
        # A new month's lines: usage batches still being written commit first (their rows are
        # staged below), and a batch arriving now waits for this commit, then finds the month
        # settled (``usage._ingest_in_transaction``). Only staging takes this lock: the daily
        # beat's calls for months already planned never hold up ingest.
        advisory_xact_lock(NS_USAGE_INGEST, 0)
        with connection.cursor() as cur:
            lines, orgs = _stage_lines(cur, run=run)
        chunks = _add_chunks(run=run, orgs=orgs, chunk_size=chunk_size)
        run.orgs_total, run.chunks_total, run.lines_total = len(orgs), chunks, lines
        run.status = SettlementRun.Status.RUNNING if chunks else SettlementRun.Status.DONE
        run.finished_at = None if chunks else timezone.now()
        run.save(update_fields=["orgs_total", "chunks_total", "lines_total", "status", "finished_at"])
        return run


def _refused_for_missing_price(*, run: SettlementRun, orgs: list[int]) -> dict[int, list[str]]:
    """FEE-4.2: organizations of ``orgs`` with a paid API used on a day without a price in
    force, each with one message per line naming the app, API and days."""
    with connection.cursor() as cur:
        cur.execute(UNPRICED_SQL, {"run": run.pk, "orgs": orgs})
        rows = cur.fetchall()
    refused: dict[int, list[str]] = {}
    for org_id, app_key, api_code, days in rows:
        refused.setdefault(org_id, []).append(
            gettext("FEE-4.2 组织 %(org)s 应用 %(app)s: API %(api)s 在 %(days)s 无生效价格, 本月暂不结算。")
            % {"org": org_id, "app": app_key, "api": api_code, "days": days}
        )
    return refused


def _charge_batch(*, year: int, month: int, charges: list[tuple[int, int, str]]) -> dict[int, int]:
    return wallet_charge_for_month_batch(year=year, month=month, charges=charges)


def settlement_chunk_max_attempts() -> int:
    return max(1, int(settings.BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS))


def settlement_settle_chunk(*, chunk_id: int) -> int:
    """Bill and charge one chunk of organizations; returns how many were settled now. Idempotent.

    Every call is an attempt, however it came (a Celery retry, a redelivery after the worker
    died, the daily beat, a staff reset), counted in its own committed transaction before the
    work starts (``_chunk_attempt_start``). The attempt then ends in one of three ways:
    - done: bills and charges commit together with ``done_at`` (a redelivery finds it done and
      changes nothing, uncounted);
    - an exception: the work rolls back, the error is kept on the chunk and raised again (the
      task's back-off retries a dropped connection; the daily beat sends anything else again);
      at the limit the chunk is failed at once;
    - the worker dies (out of memory, a segfault, a hard time limit): PostgreSQL rolls the work
      back and nothing more is written; the next delivery finds the limit reached and fails it.
    A failed chunk is never worked again until staff reset it (``settlement_chunk_reset``); its
    organizations stay uncounted, so the month ends FAILED instead of "running" for ever.

    The attempt is committed before the work only outside a transaction (Celery tasks, the
    month's loop); a caller's own transaction would take it back with the work.
    """
    if not _chunk_attempt_start(chunk_id=chunk_id):
        return 0
    try:
        return _chunk_settle(chunk_id=chunk_id)
    except Exception as exc:
        _chunk_attempt_error(chunk_id=chunk_id, error=f"{type(exc).__name__}: {exc}")
        raise


def _chunk_attempt_start(*, chunk_id: int) -> bool:
    """Count an attempt at the chunk (own transaction); False when it must not be worked: done,
    failed, or out of attempts (then it is failed here: the last attempt's worker died)."""
    with transaction.atomic():
        # Under the chunk's lock: a worker still settling it is waited for, so a redelivery of a
        # chunk that is about to finish finds it done and is not counted.
        advisory_xact_lock(NS_SETTLEMENT_CHUNK, chunk_id)
        chunk = SettlementChunk.objects.get(pk=chunk_id)
        if chunk.done_at is not None or chunk.failed_at is not None:
            return False
        if chunk.attempts >= settlement_chunk_max_attempts():
            _chunk_fail(chunk=chunk)
            return False
        SettlementChunk.objects.filter(pk=chunk_id).update(
            attempts=F("attempts") + 1, last_attempt_at=timezone.now(), last_error=""
        )
    return True


def _chunk_attempt_error(*, chunk_id: int, error: str) -> None:
    """Keep the error that ended an attempt on the chunk; fail the chunk at its last attempt."""
    try:
        with transaction.atomic():
            advisory_xact_lock(NS_SETTLEMENT_CHUNK, chunk_id)
            chunk = SettlementChunk.objects.get(pk=chunk_id)
            if chunk.done_at is not None or chunk.failed_at is not None:
                return
            chunk.last_error = error[:2000]
            SettlementChunk.objects.filter(pk=chunk_id).update(last_error=chunk.last_error)
            if chunk.attempts >= settlement_chunk_max_attempts():
                _chunk_fail(chunk=chunk)
    except DatabaseError:
        # The database itself is what failed (a dropped connection): the attempt is counted
        # already, and the caller raises the original error.
        log.exception("settlement chunk %s: could not record the error of its attempt", chunk_id)


def _chunk_fail(*, chunk: SettlementChunk) -> None:
    """Mark a chunk failed (caller holds its lock) and end its run if nothing else is open."""
    lock_settlement_run(chunk.run_id)
    SettlementChunk.objects.filter(pk=chunk.pk, done_at__isnull=True, failed_at__isnull=True).update(
        failed_at=timezone.now()
    )
    _run_finish_if_no_open_chunk(run_id=chunk.run_id)
    log.error(
        "FEE-4.2 settlement chunk %s (run %s, %s organizations) failed after %s attempts: %s",
        chunk.pk,
        chunk.run_id,
        len(chunk.organization_ids),
        chunk.attempts,
        chunk.last_error or "its worker died",
    )


def _run_finish_if_no_open_chunk(*, run_id: int) -> None:
    """DONE when every organization is settled; FAILED when no chunk is left to work but some
    organizations are not (refused for a missing price, or in a failed chunk), so staff see it
    and the next run (beat catch-up or admin) retries the refused ones. The caller holds the
    run's row lock until commit, so the last of two parallel chunks sees the other one."""
    SettlementRun.objects.filter(
        pk=run_id, orgs_done=F("orgs_total"), status=SettlementRun.Status.RUNNING
    ).update(status=SettlementRun.Status.DONE, finished_at=timezone.now())
    open_chunks = SettlementChunk.objects.filter(
        run=OuterRef("pk"), done_at__isnull=True, failed_at__isnull=True
    )
    SettlementRun.objects.filter(pk=run_id, status=SettlementRun.Status.RUNNING).exclude(
        Exists(open_chunks)
    ).exclude(orgs_done=F("orgs_total")).update(status=SettlementRun.Status.FAILED)


def _chunk_settle(*, chunk_id: int) -> int:
    with transaction.atomic():
        chunk = SettlementChunk.objects.select_related("run").get(pk=chunk_id)
        # A redelivered task or a second worker waits here, then finds the chunk done.
        advisory_xact_lock(NS_SETTLEMENT_CHUNK, chunk_id)
        chunk.refresh_from_db(fields=["done_at", "failed_at"])
        if chunk.done_at is not None or chunk.failed_at is not None:
            return 0
        run = chunk.run
        year, month = run.year, run.month
        billed = set(
            Bill.objects.filter(
                organization_id__in=chunk.organization_ids, year=year, month=month
            ).values_list("organization_id", flat=True)
        )
        orgs = [o for o in chunk.organization_ids if o not in billed]
        refused = _refused_for_missing_price(run=run, orgs=orgs) if orgs else {}
        orgs = [o for o in orgs if o not in refused]
        settled = []
        if orgs:
            with connection.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS billing_settle_apps")
                cur.execute(APPS_SQL, {"run": run.pk, "orgs": orgs})
                cur.execute(
                    """
                    INSERT INTO billing_bill (organization_id, year, month, run_id, subtotal_fen,
                                              discount_fen, total_fen, settled_at)
                    SELECT organization_id, %(y)s, %(m)s, %(run)s, sum(subtotal), sum(discount),
                           sum(subtotal - discount), now()
                    FROM billing_settle_apps GROUP BY organization_id ORDER BY organization_id
                    RETURNING id, organization_id, total_fen
                    """,
                    {"y": year, "m": month, "run": run.pk},
                )
                settled = sorted(cur.fetchall(), key=lambda r: r[1])
                cur.execute(
                    """
                    INSERT INTO billing_billapp
                        (bill_id, app_id, subtotal_fen, discount_rate, discount_fen, total_fen)
                    SELECT b.id, s.app_id, s.subtotal, s.rate, s.discount, s.subtotal - s.discount
                    FROM billing_settle_apps s
                    JOIN billing_bill b ON b.organization_id = s.organization_id
                        AND b.year = %(y)s AND b.month = %(m)s
                    """,
                    {"y": year, "m": month},
                )
                cur.execute(
                    """
                    INSERT INTO billing_billline
                        (bill_id, app_id, api_id, location, calls, amount_fen, prices)
                    SELECT b.id, l.app_id, l.api_id, l.location, l.calls, l.amount_fen, l.prices
                    FROM unnest(%(orgs)s::bigint[]) AS o(id)
                    JOIN billing_settlementline l ON l.run_id = %(run)s AND l.organization_id = o.id
                    JOIN billing_bill b ON b.organization_id = l.organization_id
                        AND b.year = %(y)s AND b.month = %(m)s
                    """,
                    {"y": year, "m": month, "run": run.pk, "orgs": orgs},
                )
                cur.execute("DROP TABLE billing_settle_apps")
            # One set-based charge for the chunk (wallet row locks taken in primary-key order).
            to_charge = [
                (org_id, total, f"bill #{bill_id}") for bill_id, org_id, total in settled if total > 0
            ]
            if to_charge:
                entry_of_org = _charge_batch(year=year, month=month, charges=to_charge)
                bill_of_org = {org_id: bill_id for bill_id, org_id, _ in settled}
                with connection.cursor() as cur:
                    cur.execute(
                        "UPDATE billing_bill b SET ledger_entry_id = v.entry"
                        " FROM unnest(%s::bigint[], %s::bigint[]) AS v(bill, entry) WHERE b.id = v.bill",
                        [
                            [bill_of_org[o] for o in entry_of_org],
                            list(entry_of_org.values()),
                        ],
                    )
        SettlementChunk.objects.filter(pk=chunk.pk).update(done_at=timezone.now(), last_error="")
        # Refused organizations stay uncounted, so the run cannot reach DONE without them. This
        # update takes the run's row lock, held until commit (``_run_finish_if_no_open_chunk``).
        SettlementRun.objects.filter(pk=run.pk).update(
            orgs_done=F("orgs_done") + len(chunk.organization_ids) - len(refused)
        )
        if refused:
            # Appended in SQL: parallel chunk tasks each add their own organizations' errors.
            note = "\n".join(msg for org_id in sorted(refused) for msg in refused[org_id])
            SettlementRun.objects.filter(pk=run.pk).update(
                last_error=Concat(F("last_error"), Value(note + "\n"), output_field=TextField())
            )
        _run_finish_if_no_open_chunk(run_id=run.pk)
        return len(settled)


def settlement_chunk_reset(*, chunk_id: int, actor) -> SettlementChunk:
    """Give a failed chunk a new set of attempts and send it again (staff, from admin; audited).

    The month goes back to RUNNING; it ends DONE once the chunk settles (or FAILED again).
    Organizations billed before are never billed twice: the chunk skips them, and the database
    refuses a second bill or charge for the month."""
    with transaction.atomic():
        # The chunk's lock, then the run's row: the order of a settling or failing chunk.
        advisory_xact_lock(NS_SETTLEMENT_CHUNK, chunk_id)
        chunk = SettlementChunk.objects.select_related("run").get(pk=chunk_id)
        if chunk.failed_at is None:
            raise Conflict(
                "FEE-4.2",
                gettext("FEE-4.2: 结算分片 %(chunk)s 没有失败, 无需重置。") % {"chunk": chunk},
                field="chunk",
            )
        lock_settlement_run(chunk.run_id)
        SettlementChunk.objects.filter(pk=chunk.pk).update(attempts=0, failed_at=None, last_error="")
        SettlementRun.objects.filter(pk=chunk.run_id, status=SettlementRun.Status.FAILED).update(
            status=SettlementRun.Status.RUNNING, finished_at=None
        )
        from portal.services import audit_record

        audit_record(
            actor=actor,
            action="billing.settlement_chunk_reset",
            obj=chunk,
            details={
                "run": str(chunk.run),
                "attempts": chunk.attempts,
                "failed_at": chunk.failed_at.isoformat(),
                "last_error": chunk.last_error[:500],
            },
        )
        from billing.tasks_metering import settle_chunk_task

        transaction.on_commit(lambda: settle_chunk_task.delay(chunk.pk))
    chunk.refresh_from_db()
    return chunk


def settlement_run_month(
    *,
    year: int,
    month: int,
    actor=None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    fan_out: bool = False,
    now: dt.datetime | None = None,
) -> SettlementRun | None:
    """Settle a month (FEE-4.2). Returns the run, or None when another worker holds the month.

    ``fan_out``: enqueue one Celery task per pending chunk (after commit) instead of settling
    them here; each chunk task is idempotent, so a redelivery or a parallel rerun is harmless.
    """
    _check_month(year, month, now=now)
    with advisory_session_try_lock(NS_SETTLEMENT_MONTH, month_key(year, month)) as got:
        if not got:
            log.info("settlement %s-%02d is already running elsewhere", year, month)
            return None
        run = settlement_plan_month(year=year, month=month, actor=actor, chunk_size=chunk_size)
        # A failed chunk waits for staff (``settlement_chunk_reset``): never sent again from here.
        pending = list(
            run.chunks.filter(done_at__isnull=True, failed_at__isnull=True)
            .order_by("index")
            .values_list("pk", flat=True)
        )
        if fan_out:
            from billing.tasks_metering import settle_chunk_task

            for chunk_id in pending:
                settle_chunk_task.delay(chunk_id)
        else:
            try:
                for chunk_id in pending:
                    settlement_settle_chunk(chunk_id=chunk_id)
            except Exception as exc:
                SettlementRun.objects.filter(pk=run.pk).update(
                    last_error=f"{type(exc).__name__}: {exc}"[:2000]
                )
                raise
        run.refresh_from_db()
        if run.status == SettlementRun.Status.DONE and run.last_error:
            SettlementRun.objects.filter(pk=run.pk).update(last_error="")
        return run


def settlement_due_months(*, today: dt.date | None = None) -> list[tuple[int, int]]:
    """Months from 2023-03 that are not settled yet: every ended month before the previous
    one, and the previous month from the 5th on (FEE-4.2: settlement day is the 5th)."""
    today = today or clock.today()
    last = clock.previous_month(today)
    if today.day < SETTLEMENT_DAY:
        last = clock.previous_month(dt.date(*last, 1))
    return settlement_months_not_done(through=last)


def settlement_months_not_done(*, through: tuple[int, int]) -> list[tuple[int, int]]:
    """Every month from 2023-03 through ``through`` without a finished settlement, in order."""
    done = set(SettlementRun.objects.filter(status=SettlementRun.Status.DONE).values_list("year", "month"))
    months, (y, m) = [], FIRST_BILLABLE
    while (y, m) <= through:
        if (y, m) not in done:
            months.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def settlement_recheck_month(*, year: int, month: int, actor=None) -> dict:
    """Recompute the month from usage now and compare with the bills and charges on record."""
    run = SettlementRun.objects.filter(year=year, month=month).first()
    if run is None:
        raise DomainError("FEE-4.2", gettext("该月尚未结算。"), field="month")
    start, end = clock.month_range(year, month)
    with connection.cursor() as cur:
        # Organizations with a day without a price in force have no expected total: they are
        # refused (FEE-4.2) and show on the run's errors, not here.
        cur.execute(
            f"""
            WITH l AS ({LINES_SQL}),
            {DISCOUNT_CTES},
            unpriced AS (
                SELECT DISTINCT l.organization_id FROM l
                CROSS JOIN LATERAL jsonb_array_elements(l.prices) AS p
                WHERE p -> 'price' = 'null'::jsonb
            ),
            expected AS (
                SELECT sub.organization_id,
                       sum(sub.subtotal - coalesce(disc.discount, 0))::bigint AS total
                FROM sub LEFT JOIN disc ON disc.app_id = sub.app_id
                WHERE sub.organization_id NOT IN (SELECT organization_id FROM unpriced)
                GROUP BY sub.organization_id
            ),
            billed AS (SELECT organization_id, total_fen, ledger_entry_id FROM billing_bill
                       WHERE year = %(y)s AND month = %(m)s)
            SELECT coalesce(e.organization_id, b.organization_id), e.total, b.total_fen,
                   (b.total_fen > 0 AND b.ledger_entry_id IS NULL)
            FROM expected e FULL JOIN billed b ON b.organization_id = e.organization_id
            WHERE e.total IS DISTINCT FROM b.total_fen OR (b.total_fen > 0 AND b.ledger_entry_id IS NULL)
            ORDER BY 1 LIMIT 200
            """,
            {"start": start, "end": end, "y": year, "m": month},
        )
        rows = cur.fetchall()
    report = {
        "checked_at": timezone.now().isoformat(),
        "bills": Bill.objects.filter(year=year, month=month).count(),
        "mismatches": [
            {"organization_id": o, "expected_fen": e, "billed_fen": b, "uncharged": bool(u)}
            for o, e, b, u in rows
        ],
    }
    report["ok"] = not report["mismatches"]
    SettlementRun.objects.filter(pk=run.pk).update(recheck=report)
    if actor is not None:
        from portal.services import audit_record

        audit_record(actor=actor, action="billing.settlement_recheck", obj=run, details={"ok": report["ok"]})
    return report
