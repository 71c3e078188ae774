"""Usage metering: monthly partitions and bulk ingest of hourly rollups (FEE-2.3/2.4, FEE-4.2).

Ingest is set-based: the raw lines are COPYed into a temp table (one text column, numbered by
an identity column, so every line keeps its line number), parsed and validated in one SQL
statement, and merged with one ``INSERT ... ON CONFLICT (app, api, location, hour) DO UPDATE``
that *replaces* calls, so a re-sent row never adds. Within one batch the last line for a key
wins. A batch id is recorded in ``UsageBatch`` (unique) in the same transaction: a batch sent
twice — even concurrently, when the second insert waits for the first commit — counts once.
Bad rows are reported by line number with the reason; good rows are kept.
"""

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import DataError, IntegrityError, connection, transaction

from billing.locks_metering import NS_USAGE_PARTITION, advisory_xact_lock, month_key
from billing.models import SettlementRun, UsageBatch
from portal import clock
from portal.errors import DomainError

MAX_REPORTED_ERRORS = 1000
CSV_HEADER = "app_key,api,location,hour,calls"
HOUR_RE = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d(:?\d\d)?)$"


# --- partitions ---------------------------------------------------------------------------------


def usage_partition_name(year: int, month: int) -> str:
    return f"billing_usage_hourly_p{year:04d}_{month:02d}"


def usage_partition_ensure(*, year: int, month: int) -> bool:
    """Create the Asia/Shanghai month's partition if missing; True if it was created.

    Created standalone then ATTACHed: ATTACH PARTITION takes only SHARE UPDATE EXCLUSIVE on
    the parent, so reads and ingest of other months go on (CREATE ... PARTITION OF would
    take ACCESS EXCLUSIVE).
    """
    name = usage_partition_name(year, month)
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cur.fetchone()[0]:
            return False
    start, end = clock.month_range(year, month)
    with transaction.atomic():
        advisory_xact_lock(NS_USAGE_PARTITION, month_key(year, month))
        with connection.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
            if cur.fetchone()[0]:
                return False
            cur.execute(
                f"CREATE TABLE {name} (LIKE billing_usage_hourly INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            )
            cur.execute(
                f"ALTER TABLE billing_usage_hourly ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
    return True


def usage_partitions_ensure_ahead(*, today: dt.date | None = None, months_ahead: int = 3) -> list[str]:
    """Beat job: this month's partition and the next ``months_ahead`` ones."""
    today = today or clock.today()
    created = []
    y, m = today.year, today.month
    for _ in range(months_ahead + 1):
        if usage_partition_ensure(year=y, month=m):
            created.append(usage_partition_name(y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return created


# --- ingest -------------------------------------------------------------------------------------


@dataclass
class IngestResult:
    batch_id: str
    duplicate: bool = False
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    errors: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _chunks(data: bytes | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(data, (bytes, bytearray)):
        yield bytes(data)
    else:
        yield from data


_PARSE_CSV = """
    SELECT line, f[1] AS app_key, f[2] AS api, f[3] AS location, f[4] AS hour_txt, f[5] AS calls_txt,
           cardinality(f) = 5 AS shape_ok
    FROM (SELECT line, string_to_array(rtrim(raw, E'\\r'), ',') AS f
          FROM billing_usage_stage WHERE line > %(skip)s AND btrim(coalesce(raw, ''), E' \\r') <> '') s
"""
_PARSE_NDJSON = """
    SELECT line, j->>'app_key' AS app_key, j->>'api' AS api, j->>'location' AS location,
           j->>'hour' AS hour_txt, j->>'calls' AS calls_txt, jsonb_typeof(j) = 'object' AS shape_ok
    FROM (SELECT line, {json_expr} AS j
          FROM billing_usage_stage WHERE line > %(skip)s AND btrim(coalesce(raw, ''), E' \\r') <> '') s
"""
_CHECK = """
    CREATE TEMP TABLE billing_usage_checked ON COMMIT DROP AS
    WITH p AS ({parse}),
    t AS (
        SELECT p.*,
               CASE WHEN p.hour_txt ~ %(hour_re)s THEN {hour_expr} END AS hour,
               CASE WHEN p.calls_txt ~ '^[0-9]{{1,18}}$' THEN p.calls_txt::bigint END AS calls
        FROM p
    )
    SELECT t.line, a.id AS app_id, x.id AS api_id, t.location, t.hour, t.calls,
        CASE
            WHEN t.shape_ok IS NOT TRUE THEN 'malformed row (expected app_key,api,location,hour,calls)'
            WHEN a.id IS NULL THEN 'unknown app_key'
            WHEN x.id IS NULL THEN 'unknown api'
            WHEN t.location IS NULL OR t.location NOT IN ('in_cloud', 'out_of_cloud')
                THEN 'location must be in_cloud or out_of_cloud'
            WHEN t.hour IS NULL THEN 'hour is not an ISO 8601 time with a UTC offset'
            WHEN extract(epoch FROM t.hour) %% 3600 <> 0 THEN 'hour is not on the hour'
            WHEN t.calls_txt ~ '^-[0-9]+$' THEN 'negative calls'
            WHEN t.calls IS NULL THEN 'calls is not a whole number'
            WHEN date_trunc('month', t.hour AT TIME ZONE 'Asia/Shanghai') = ANY(%(settled)s::timestamp[])
                THEN 'month already settled (FEE-4.2)'
        END AS error
    FROM t
    LEFT JOIN billing_app a ON a.app_key = t.app_key
    LEFT JOIN billing_api x ON x.code = t.api
"""
_MERGE = """
    INSERT INTO billing_usage_hourly AS u (app_id, api_id, location, hour, calls)
    SELECT DISTINCT ON (app_id, api_id, location, hour) app_id, api_id, location, hour, calls
    FROM billing_usage_checked WHERE error IS NULL
    ORDER BY app_id, api_id, location, hour, line DESC
    ON CONFLICT (app_id, api_id, location, hour) DO UPDATE SET calls = EXCLUDED.calls
    WHERE u.calls IS DISTINCT FROM EXCLUDED.calls
"""


def _settled_months() -> list[dt.datetime]:
    return [dt.datetime(y, m, 1) for y, m in SettlementRun.objects.values_list("year", "month")]


def _check(cur, fmt: str, skip: int, settled: list) -> None:
    """Parse and validate the staged lines; fast casts first, per-row safe casts on failure."""
    params = {"skip": skip, "hour_re": HOUR_RE, "settled": settled}
    for safe in (False, True):
        json_expr = "billing_try_jsonb(raw)" if safe else "raw::jsonb"
        parse = _PARSE_CSV if fmt == "csv" else _PARSE_NDJSON.format(json_expr=json_expr)
        hour_expr = "billing_try_timestamptz(p.hour_txt)" if safe else "p.hour_txt::timestamptz"
        sql = _CHECK.format(parse=parse, hour_expr=hour_expr)
        try:
            with transaction.atomic():  # savepoint: a bad cast only undoes this attempt
                cur.execute(sql, params)
            return
        except DataError:
            if safe:
                raise


def usage_ingest(
    *, data: bytes | Iterable[bytes], batch_id: str, fmt: str = "csv", source: str = "api"
) -> IngestResult:
    """Load a batch of hourly rollups (CSV with header, or NDJSON). Idempotent on ``batch_id``."""
    batch_id = (batch_id or "").strip()
    if not batch_id or len(batch_id) > 100:
        raise DomainError("invalid", "batch_id is required (at most 100 characters).", field="batch_id")
    if fmt not in ("csv", "ndjson"):
        raise DomainError("invalid", "format must be csv or ndjson.", field="format")
    started = time.monotonic()
    try:
        with transaction.atomic():
            result = _ingest_in_transaction(
                data=data, batch_id=batch_id, fmt=fmt, source=source, started=started
            )
    except IntegrityError:
        # The same batch id committed first (a retry, or a concurrent send): it counts once.
        return _duplicate(batch_id)
    return result


def _duplicate(batch_id: str) -> IngestResult:
    batch = UsageBatch.objects.get(batch_id=batch_id)
    return IngestResult(
        batch_id=batch_id,
        duplicate=True,
        rows_total=batch.rows_total,
        rows_accepted=batch.rows_accepted,
        rows_rejected=batch.rows_rejected,
        errors=batch.errors,
        seconds=batch.seconds,
    )


def _ingest_in_transaction(*, data, batch_id, fmt, source, started) -> IngestResult:
    if UsageBatch.objects.filter(batch_id=batch_id).exists():
        return _duplicate(batch_id)
    # Inserted first: a concurrent request with the same id blocks here until we commit.
    batch = UsageBatch.objects.create(batch_id=batch_id, source=source)
    with connection.cursor() as cur:
        # Dropped explicitly too: an outer transaction (a caller's, a test's) outlives ON COMMIT.
        cur.execute("DROP TABLE IF EXISTS billing_usage_stage, billing_usage_checked")
        cur.execute(
            "CREATE TEMP TABLE billing_usage_stage (line bigint GENERATED ALWAYS AS IDENTITY, raw text)"
            " ON COMMIT DROP"
        )
        # CSV mode with delimiter and quote bytes that never occur in the data: one line → one
        # text field, no escaping. Parsing happens in SQL, where every line keeps its number.
        with cur.cursor.copy(
            "COPY billing_usage_stage (raw) FROM STDIN (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
        ) as copy:
            for chunk in _chunks(data):
                copy.write(chunk)
        skip = 0
        if fmt == "csv":
            cur.execute("SELECT raw FROM billing_usage_stage WHERE line = 1")
            first = cur.fetchone()
            if first and first[0] and first[0].replace(" ", "").lower().startswith("app_key,"):
                skip = 1
        _check(cur, fmt, skip, _settled_months())
        cur.execute(
            "SELECT DISTINCT date_trunc('month', hour AT TIME ZONE 'Asia/Shanghai')"
            " FROM billing_usage_checked WHERE error IS NULL"
        )
        for (month_start,) in cur.fetchall():
            usage_partition_ensure(year=month_start.year, month=month_start.month)
        cur.execute("SELECT count(*), count(*) FILTER (WHERE error IS NOT NULL) FROM billing_usage_checked")
        total, rejected = cur.fetchone()
        cur.execute(
            "SELECT line, error FROM billing_usage_checked WHERE error IS NOT NULL ORDER BY line LIMIT %s",
            [MAX_REPORTED_ERRORS],
        )
        errors = [{"line": line, "reason": reason} for line, reason in cur.fetchall()]
        cur.execute(_MERGE)
        cur.execute("DROP TABLE billing_usage_stage, billing_usage_checked")
    batch.rows_total, batch.rows_rejected = total, rejected
    batch.rows_accepted = total - rejected
    batch.errors = errors
    batch.seconds = round(time.monotonic() - started, 3)
    batch.save(update_fields=["rows_total", "rows_accepted", "rows_rejected", "errors", "seconds"])
    return IngestResult(
        batch_id=batch_id,
        rows_total=total,
        rows_accepted=total - rejected,
        rows_rejected=rejected,
        errors=errors,
        seconds=batch.seconds,
    )


def usage_record_rows(*, rows: Iterable[tuple], batch_id: str) -> IngestResult:
    """Tests and demo: ingest (app_key, api, location, hour datetime, calls) tuples as CSV."""
    lines = [CSV_HEADER]
    for app_key, api, location, hour, calls in rows:
        lines.append(f"{app_key},{api},{location},{hour.isoformat()},{calls}")
    return usage_ingest(
        data=("\n".join(lines) + "\n").encode(), batch_id=batch_id, fmt="csv", source="command"
    )
