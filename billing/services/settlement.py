"""Monthly settlement (FEE-4.2) and the arrears it can cause (FEE-6).

Exactly once per (organization, month), whatever crashes, retries or races happen:
1. ``settlement_run_month`` holds a session-level advisory lock on the month, so two beats or
   workers cannot run one month together (the loser returns at once).
2. Planning (``settlement_plan_month``, one transaction under a transaction-level month lock)
   aggregates the month in SQL — GROUP BY over the month's partition, each usage day priced
   with the price then in force — into ``SettlementLine`` rows, and splits the organizations
   into ``SettlementChunk`` rows. A rerun reuses the plan, so bills never depend on when a
   retry happened.
3. Each chunk (``settlement_settle_chunk``, one transaction under a chunk advisory lock)
   writes Bill / BillApp / BillLine set-based from the staged lines, and charges all its
   organizations at once through Billing I's ``wallet_charge_for_month_batch`` in the same
   transaction. A crash rolls the whole chunk back; a rerun settles it.
   ``billing_bill_one_per_org_month`` and the ledger's one-charge-per-month constraint are
   the backstops.
Money: line = round_half_up(Σ_day calls * price / 1000) computed exactly in integers
(``div(S + 500, 1000)``); discount = round_half_up(subtotal * rate) (``floor(x + 0.5)`` in
numeric); a discount applies to a month when its validity overlaps the month (highest rate
if several — they cannot overlap each other, so at most one per day).
"""

import datetime as dt
import logging

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from billing.locks_metering import (
    NS_SETTLEMENT_CHUNK,
    NS_SETTLEMENT_MONTH,
    advisory_session_try_lock,
    advisory_xact_lock,
    month_key,
)
from billing.models import FIRST_BILLABLE, Bill, SettlementChunk, SettlementRun
from billing.services.wallet import wallet_charge_for_month_batch
from portal import clock
from portal.errors import DomainError

log = logging.getLogger(__name__)
DEFAULT_CHUNK_SIZE = 500

# The month's lines. Prices: each price row is in force from effective_from until the next
# row of the same API. Free APIs are never billed (FEE-2.1).
LINES_SQL = """
    WITH pr AS (
        SELECT api_id, price_fen_per_1000 AS price, effective_from AS from_date,
               lead(effective_from) OVER (PARTITION BY api_id ORDER BY effective_from) AS to_date
        FROM billing_apiprice
    ),
    daily AS (
        SELECT u.app_id, u.api_id, u.location, (u.hour AT TIME ZONE 'Asia/Shanghai')::date AS day,
               sum(u.calls) AS calls
        FROM billing_usage_hourly u
        WHERE u.hour >= %(start)s AND u.hour < %(end)s
        GROUP BY 1, 2, 3, 4
    ),
    priced AS (
        SELECT d.app_id, d.api_id, d.location, coalesce(pr.price, 0) AS price,
               min(d.day) AS from_day, sum(d.calls) AS calls
        FROM daily d
        JOIN billing_api x ON x.id = d.api_id AND x.tier <> 'free'
        LEFT JOIN pr ON pr.api_id = d.api_id AND d.day >= pr.from_date
                    AND (pr.to_date IS NULL OR d.day < pr.to_date)
        GROUP BY 1, 2, 3, 4
    )
    SELECT a.organization_id, p.app_id, p.api_id, p.location, sum(p.calls)::bigint AS calls,
           div(sum(p.calls::numeric * p.price) + 500, 1000)::bigint AS amount_fen,
           jsonb_agg(jsonb_build_object('price', p.price, 'calls', p.calls, 'from', p.from_day)
                     ORDER BY p.from_day) AS prices
    FROM priced p JOIN billing_app a ON a.id = p.app_id
    GROUP BY a.organization_id, p.app_id, p.api_id, p.location
"""

# Per-app subtotals and discounts of some organizations, from a run's staged lines.
APPS_SQL = """
    CREATE TEMP TABLE billing_settle_apps ON COMMIT DROP AS
    WITH sub AS (
        SELECT l.organization_id, l.app_id, sum(l.amount_fen) AS subtotal
        FROM unnest(%(orgs)s::bigint[]) AS o(id)
        JOIN billing_settlementline l ON l.run_id = %(run)s AND l.organization_id = o.id
        GROUP BY l.organization_id, l.app_id
    ),
    disc AS (
        SELECT app_id, max(rate) AS rate FROM billing_discount
        WHERE valid_from <= %(last_day)s AND valid_to >= %(first_day)s
        GROUP BY app_id
    )
    SELECT sub.organization_id, sub.app_id, sub.subtotal::bigint AS subtotal,
           coalesce(disc.rate, 0) AS rate,
           floor(sub.subtotal * coalesce(disc.rate, 0) + 0.5)::bigint AS discount
    FROM sub LEFT JOIN disc ON disc.app_id = sub.app_id
"""


def _check_month(year: int, month: int, *, now: dt.datetime | None = None) -> None:
    if not 1 <= month <= 12:
        raise DomainError("FEE-4.2", gettext("月份无效。"), field="month")
    if (year, month) < FIRST_BILLABLE:
        raise DomainError("FEE-4.2", gettext("2023年3月之前的月份不收费。"), field="month")
    _, end = clock.month_range(year, month)
    if (now or clock.now()) < end:
        raise DomainError("FEE-4.2", gettext("只能结算已结束的自然月。"), field="month")


def settlement_plan_month(
    *, year: int, month: int, actor=None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> SettlementRun:
    """Create (or return) the month's run with its staged lines and chunks. Idempotent."""
    with transaction.atomic():
        advisory_xact_lock(NS_SETTLEMENT_MONTH, month_key(year, month))
        run, _ = SettlementRun.objects.get_or_create(
            year=year,
            month=month,
            defaults={"started_by": actor if getattr(actor, "is_authenticated", False) else None},
        )
        if run.chunks_total or run.status == SettlementRun.Status.DONE:
            return run
        start, end = clock.month_range(year, month)
        with connection.cursor() as cur:
            # Aggregate into a temporary table first: PostgreSQL runs CREATE TABLE AS with a
            # parallel plan (like the bare SELECT), never INSERT … SELECT. The copy of the
            # month's few lines (one per app, API and location) into the run is cheap.
            cur.execute("DROP TABLE IF EXISTS billing_settle_lines")
            cur.execute(
                f"CREATE TEMP TABLE billing_settle_lines ON COMMIT DROP AS {LINES_SQL}",
                {"start": start, "end": end},
            )
            cur.execute(
                "INSERT INTO billing_settlementline"
                " (run_id, organization_id, app_id, api_id, location, calls, amount_fen, prices)"
                " SELECT %s, organization_id, app_id, api_id, location, calls, amount_fen, prices"
                " FROM billing_settle_lines ORDER BY organization_id, app_id, api_id, location",
                [run.pk],
            )
            lines = cur.rowcount
            cur.execute("DROP TABLE billing_settle_lines")
            cur.execute(
                "SELECT DISTINCT organization_id FROM billing_settlementline WHERE run_id = %s ORDER BY 1",
                [run.pk],
            )
            orgs = [r[0] for r in cur.fetchall()]
        chunks = [
            SettlementChunk(run=run, index=i, organization_ids=orgs[pos : pos + chunk_size])
            for i, pos in enumerate(range(0, len(orgs), chunk_size))
        ]
        SettlementChunk.objects.bulk_create(chunks)
        run.orgs_total, run.chunks_total, run.lines_total = len(orgs), len(chunks), lines
        run.status = SettlementRun.Status.RUNNING if chunks else SettlementRun.Status.DONE
        run.finished_at = None if chunks else timezone.now()
        run.save(update_fields=["orgs_total", "chunks_total", "lines_total", "status", "finished_at"])
        return run


def _charge_batch(*, year: int, month: int, charges: list[tuple[int, int, str]]) -> dict[int, int]:
    return wallet_charge_for_month_batch(year=year, month=month, charges=charges)


def settlement_settle_chunk(*, chunk_id: int) -> int:
    """Bill and charge one chunk of organizations; returns how many were settled now. Idempotent."""
    with transaction.atomic():
        chunk = SettlementChunk.objects.select_related("run").get(pk=chunk_id)
        # A redelivered task or a second worker waits here, then finds the chunk done.
        advisory_xact_lock(NS_SETTLEMENT_CHUNK, chunk_id)
        chunk.refresh_from_db(fields=["done_at"])
        if chunk.done_at is not None:
            return 0
        run = chunk.run
        year, month = run.year, run.month
        billed = set(
            Bill.objects.filter(
                organization_id__in=chunk.organization_ids, year=year, month=month
            ).values_list("organization_id", flat=True)
        )
        orgs = [o for o in chunk.organization_ids if o not in billed]
        first_day = dt.date(year, month, 1)
        last_day = (clock.month_range(year, month)[1] - dt.timedelta(days=1)).date()
        settled = []
        if orgs:
            with connection.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS billing_settle_apps")
                cur.execute(
                    APPS_SQL, {"run": run.pk, "orgs": orgs, "first_day": first_day, "last_day": last_day}
                )
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
        SettlementChunk.objects.filter(pk=chunk.pk).update(done_at=timezone.now())
        SettlementRun.objects.filter(pk=run.pk).update(orgs_done=F("orgs_done") + len(chunk.organization_ids))
        SettlementRun.objects.filter(
            pk=run.pk, orgs_done=F("orgs_total"), status=SettlementRun.Status.RUNNING
        ).update(status=SettlementRun.Status.DONE, finished_at=timezone.now())
        return len(settled)


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
        pending = list(run.chunks.filter(done_at__isnull=True).order_by("index").values_list("pk", flat=True))
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
    if today.day < 5:
        last = clock.previous_month(dt.date(*last, 1))
    done = set(SettlementRun.objects.filter(status=SettlementRun.Status.DONE).values_list("year", "month"))
    months, (y, m) = [], FIRST_BILLABLE
    while (y, m) <= last:
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
    first_day = dt.date(year, month, 1)
    last_day = (end - dt.timedelta(days=1)).date()
    with connection.cursor() as cur:
        cur.execute(
            f"""
            WITH l AS ({LINES_SQL}),
            sub AS (SELECT organization_id, app_id, sum(amount_fen) AS subtotal FROM l GROUP BY 1, 2),
            disc AS (SELECT app_id, max(rate) AS rate FROM billing_discount
                     WHERE valid_from <= %(last_day)s AND valid_to >= %(first_day)s GROUP BY app_id),
            expected AS (
                SELECT organization_id,
                       sum(sub.subtotal - floor(sub.subtotal * coalesce(disc.rate, 0) + 0.5))::bigint AS total
                FROM sub LEFT JOIN disc ON disc.app_id = sub.app_id GROUP BY organization_id
            ),
            billed AS (SELECT organization_id, total_fen, ledger_entry_id FROM billing_bill
                       WHERE year = %(y)s AND month = %(m)s)
            SELECT coalesce(e.organization_id, b.organization_id), e.total, b.total_fen,
                   (b.total_fen > 0 AND b.ledger_entry_id IS NULL)
            FROM expected e FULL JOIN billed b ON b.organization_id = e.organization_id
            WHERE e.total IS DISTINCT FROM b.total_fen OR (b.total_fen > 0 AND b.ledger_entry_id IS NULL)
            ORDER BY 1 LIMIT 200
            """,
            {"start": start, "end": end, "first_day": first_day, "last_day": last_day, "y": year, "m": month},
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
