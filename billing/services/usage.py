"""Usage metering: monthly partitions and bulk ingest of hourly rollups (FEE-2.3/2.4, FEE-4.2).

Ingest is set-based. The usual batch (CSV, every row good, one month, a month's first rows)
goes **straight into the month's partition** in one COPY: on its way there each line's app_key
and api are swapped for their ids (two dict lookups in Python, pipelined with the server's COPY)
and its hour is checked for a UTC offset; the partition's own constraints check the rest. Any
line this cannot take (unknown key, malformed, another month, a duplicate key…) aborts that
attempt (savepoint) and the batch is replayed from its spool through the general path:

The general path COPYs the batch into a temp table (a typed one for CSV; a one-text-column one,
numbered by an identity column, when a line is malformed or for NDJSON), then loads it month by
month into the month's partition:

- **Fast path** (every row good, one month — the usual batch): one ``INSERT ... SELECT`` parses,
  validates (joins to app and API) and writes in a single pass; no intermediate table, no error
  report. When it did not take every line, the batch goes through the checked path.
- **Checked path**: one ``CREATE TEMP TABLE ... AS`` gives each line its reason for refusal (or
  none); bad rows are reported by line number with the reason, good rows are kept.
- **Into a month's partition**: when the partition is empty (a month's first rows: 10 million
  rows of a backfill, or the first hour) it is locked, its primary key dropped, the rows
  appended and the key rebuilt by a sort (``ADD PRIMARY KEY``) — several times cheaper than
  10 million index inserts. Otherwise one ``INSERT ... ON CONFLICT (app, api, location, hour)
  DO UPDATE`` *replaces* calls, so a re-sent row never adds. Within one batch the last line
  for a key wins.

A batch id is recorded in ``UsageBatch`` (unique) in the same transaction: a batch sent
twice — even concurrently, when the second insert waits for the first commit — counts once.
The body's SHA-256 is computed as it streams into COPY (no pass over the rows in SQL) and kept
on the batch: a batch id sent again with a *different* body is refused (``BATCH-ID-REUSED``,
409) instead of answered "duplicate" with its rows dropped.
The primary key lives on each partition (migration 0008), not on the parent, so that an empty
partition's key can be dropped and rebuilt while the other months are read and written.
"""

import datetime as dt
import hashlib
import itertools
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import psycopg
from django.db import DataError, IntegrityError, connection, transaction
from django.utils.translation import gettext
from psycopg.copy import QueuedLibpqWriter

from billing.errors import BillingConflict
from billing.locks_metering import (
    NS_USAGE_INGEST,
    NS_USAGE_PARTITION,
    advisory_xact_lock,
    advisory_xact_lock_shared,
    month_key,
)
from billing.models import FIRST_BILLABLE, SettlementRun, UsageBatch
from portal import clock
from portal.errors import DomainError
from portal.services import audit_record

BATCH_ID_REUSED = "BATCH-ID-REUSED"  # a batch counts once: new usage needs a new batch id
MAX_REPORTED_ERRORS = 1000
SPOOL_IN_MEMORY = 32 * 1024 * 1024  # a replayable copy of the batch; larger ones spill to disk
CSV_HEADER = "app_key,api,location,hour,calls"
LOAD_MAINTENANCE_WORK_MEM = "512MB"  # the sort of 10M keys stays in memory (64MB default spills)
_TEMP_TABLES = "billing_usage_stage, billing_usage_typed, billing_usage_checked, billing_usage_good"


# --- partitions ---------------------------------------------------------------------------------


def usage_partition_name(year: int, month: int) -> str:
    return f"billing_usage_hourly_p{year:04d}_{month:02d}"


def usage_partition_pk_sql(name: str) -> str:
    """The partition's primary key: what makes a re-sent row replace, never add (FEE-2.3)."""
    return f"ALTER TABLE {name} ADD CONSTRAINT {name}_pk PRIMARY KEY (app_id, api_id, location, hour)"


def usage_partition_ensure(*, year: int, month: int) -> bool:
    """Create the Asia/Shanghai month's partition if missing; True if it was created.

    Created standalone (with its primary key and the parent's checks) then ATTACHed: ATTACH
    PARTITION takes only SHARE UPDATE EXCLUSIVE on the parent, so reads and ingest of other
    months go on (CREATE ... PARTITION OF would take ACCESS EXCLUSIVE).
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
            # Read pg_class itself (this statement's snapshot): to_regclass goes through the
            # catalog cache, which may not yet know of a partition another transaction
            # created and committed while we waited for the lock.
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = %s"
                " AND relnamespace = current_schema()::regnamespace)",
                [name],
            )
            if cur.fetchone()[0]:
                return False
            cur.execute(
                f"CREATE TABLE {name} (LIKE billing_usage_hourly INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            )
            cur.execute(usage_partition_pk_sql(name))
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


class _DigestingStream:
    """The batch's chunks, hashed (SHA-256) as they pass on their way to COPY: one pass."""

    def __init__(self, data: bytes | Iterable[bytes]):
        self._chunks = _chunks(data)
        self._sha = hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self._sha.update(chunk)
        return chunk

    def hexdigest(self) -> str:
        """The body's digest; reads (and hashes) whatever the caller has not consumed yet."""
        for _chunk in self:
            pass
        return self._sha.hexdigest()


# Every parse yields: line, app_key, api, location, hour_txt, calls (bigint or NULL),
# calls_txt (the raw text when it did not parse), shape_ok.
_PARSE_TYPED = """
    SELECT line + %(skip)s AS line, app_key, api, location, hour_txt, calls, NULL::text AS calls_txt,
           app_key IS NOT NULL AND api IS NOT NULL AND location IS NOT NULL AND hour_txt IS NOT NULL
               AND calls IS NOT NULL AS shape_ok
    FROM billing_usage_typed
"""
_PARSE_CSV = """
    SELECT line, f[1] AS app_key, f[2] AS api, f[3] AS location, f[4] AS hour_txt,
           CASE WHEN f[5] ~ '^-?[0-9]{{1,18}}$' THEN f[5]::bigint END AS calls, f[5] AS calls_txt,
           cardinality(f) = 5 AS shape_ok
    FROM (SELECT line, string_to_array(rtrim(raw, E'\\r'), ',') AS f
          FROM billing_usage_stage WHERE line > %(skip)s AND btrim(coalesce(raw, ''), E' \\r') <> ''
          OFFSET 0) s
"""
_PARSE_NDJSON = """
    SELECT line, j->>'app_key' AS app_key, j->>'api' AS api, j->>'location' AS location,
           j->>'hour' AS hour_txt,
           CASE WHEN j->>'calls' ~ '^-?[0-9]{{1,18}}$' THEN (j->>'calls')::bigint END AS calls,
           j->>'calls' AS calls_txt, jsonb_typeof(j) = 'object' AS shape_ok
    FROM (SELECT line, {json_expr} AS j
          FROM billing_usage_stage WHERE line > %(skip)s AND btrim(coalesce(raw, ''), E' \\r') <> ''
          OFFSET 0) s
"""
# An hour must carry its UTC offset (…Z, …±HH:MM, …±HHMM, …±HH) after a date and a T/space:
# anchored LIKE patterns instead of a regex or substr/length calls (measured on 1M rows: regex
# 0.78 s, substr/length 0.44 s, LIKE 0.19 s). '_' is one character; the first pattern also
# asks for at least 17 characters. A value that passes them and still is no valid time
# (2026-02-30…) makes the fast cast fail, and the batch is re-checked with the per-row safe cast.
_HAS_OFFSET = """((p.hour_txt LIKE '__________T______%%' OR p.hour_txt LIKE '__________ ______%%') AND (
    p.hour_txt LIKE '%%Z' OR p.hour_txt LIKE '%%z'
    OR p.hour_txt LIKE '%%+_____' OR p.hour_txt LIKE '%%-_____'
    OR p.hour_txt LIKE '%%+____' OR p.hour_txt LIKE '%%-____'
    OR p.hour_txt LIKE '%%+__' OR p.hour_txt LIKE '%%-__'))"""
_CHECK = """
    CREATE TEMP TABLE billing_usage_checked ON COMMIT DROP AS
    WITH t AS MATERIALIZED (
        SELECT p.*, CASE WHEN {has_offset} THEN {hour_expr} END AS hour FROM ({parse}) p
    )
    SELECT t.line, a.id AS app_id, x.id AS api_id, t.location, t.hour, t.calls,
        CASE
            WHEN t.shape_ok IS NOT TRUE THEN 'malformed row (expected app_key,api,location,hour,calls)'
            WHEN a.id IS NULL THEN 'unknown app_key'
            WHEN x.id IS NULL THEN 'unknown api'
            WHEN t.location NOT IN ('in_cloud', 'out_of_cloud')
                THEN 'location must be in_cloud or out_of_cloud'
            WHEN t.hour IS NULL THEN 'hour is not an ISO 8601 time with a UTC offset'
            WHEN t.hour < %(hour_min)s OR t.hour >= %(hour_max)s THEN 'hour outside 2000-01..2999-12'
            WHEN date_bin('1 hour', t.hour, TIMESTAMPTZ '2000-01-01 00:00:00+00') <> t.hour
                THEN 'hour is not on the hour'
            WHEN t.calls < 0 THEN 'negative calls'
            WHEN t.calls IS NULL THEN 'calls is not a whole number'
            WHEN {settled_condition} THEN 'month already settled (FEE-4.2)'
        END AS error
    FROM t
    LEFT JOIN billing_app a ON a.app_key = t.app_key
    LEFT JOIN billing_api x ON x.code = t.api
"""
# The fast path's rows, parsed and mapped to ids in one pass (no intermediate table). Only
# what the database cannot check is filtered here: the row's shape, a known app and API (inner
# joins: a line they drop makes the batch take the checked path) and a UTC offset on the hour.
# The rest — location, calls >= 0, on the hour, not null, in the month — are the partition's
# own constraints: a line breaking one aborts the statement, and the batch takes the checked
# path, which reports it. The joins sit in a subquery so they are planned on the staged row
# count (hash joins), not on a guess after the filters; OFFSET 0 keeps one hour cast per row.
_GOOD = """
    SELECT p.line, p.app_id, p.api_id, p.location, CASE WHEN {has_offset} THEN {hour_expr} END AS hour,
           p.calls
    FROM (SELECT s.line, a.id AS app_id, x.id AS api_id, s.location, s.hour_txt, s.calls
          FROM ({parse}) s
          JOIN billing_app a ON a.app_key = s.app_key
          JOIN billing_api x ON x.code = s.api
          WHERE s.shape_ok
          OFFSET 0) p
"""
# The checked path's good rows of one month.
_GOOD_CHECKED = """
    SELECT line, app_id, api_id, location, hour, calls FROM billing_usage_checked
    WHERE error IS NULL AND hour >= %(month_start)s AND hour < %(month_end)s
"""
_COLUMNS = "app_id, api_id, location, hour, calls"
_KEY = "app_id, api_id, location, hour"


def _settled_months() -> set[tuple[int, int]]:
    return set(SettlementRun.objects.values_list("year", "month"))


def _settled_condition(settled: set[tuple[int, int]]) -> tuple[str, dict]:
    """SQL (and params) true for an hour in an already settled month (FEE-4.2).

    Settled months are almost always a prefix from 2023-03, so the common case is one
    comparison per row; months settled out of order add one range each.
    """
    if not settled:
        return "false", {}
    settled = set(settled)
    y, m = FIRST_BILLABLE
    while (y, m) in settled:
        settled.discard((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    first, _ = clock.month_range(*FIRST_BILLABLE)
    boundary, _ = clock.month_range(y, m)
    parts = ["(t.hour >= %(settled_first)s AND t.hour < %(settled_boundary)s)"]
    params = {"settled_first": first, "settled_boundary": boundary}
    for i, (yy, mm) in enumerate(sorted(settled)):
        params[f"s{i}a"], params[f"s{i}b"] = clock.month_range(yy, mm)
        parts.append(f"(t.hour >= %(s{i}a)s AND t.hour < %(s{i}b)s)")
    return "(" + " OR ".join(parts) + ")", params


def _parse_sql(parse_kind: str, *, safe: bool) -> tuple[str, str]:
    """The parse subquery and the hour cast: fast casts, or per-row safe ones (``safe``)."""
    if parse_kind == "typed":
        parse = _PARSE_TYPED
    elif parse_kind == "csv":
        parse = _PARSE_CSV.format()
    else:
        parse = _PARSE_NDJSON.format(json_expr="billing_try_jsonb(raw)" if safe else "raw::jsonb")
    hour_expr = "billing_try_timestamptz(p.hour_txt)" if safe else "p.hour_txt::timestamptz"
    return parse, hour_expr


def _check(cur, parse_kind: str, skip: int, settled: set[tuple[int, int]]) -> None:
    """Give every staged line its reason for refusal, or none; fast casts first, safe on failure."""
    settled_sql, settled_params = _settled_condition(settled)
    # A month past clock.LAST_MONTH has no partition bounds (the month after 9999-12 overflows).
    hour_min, _ = clock.month_range(*clock.FIRST_MONTH)
    _, hour_max = clock.month_range(*clock.LAST_MONTH)
    params = {"skip": skip, "hour_min": hour_min, "hour_max": hour_max, **settled_params}
    for safe in (False, True):
        parse, hour_expr = _parse_sql(parse_kind, safe=safe)
        sql = _CHECK.format(
            parse=parse, has_offset=_HAS_OFFSET, hour_expr=hour_expr, settled_condition=settled_sql
        )
        try:
            with transaction.atomic():  # savepoint: a bad cast only undoes this attempt
                cur.execute(sql, params)
            return
        except DataError:
            if safe:
                raise


def _first_month(cur, parse_kind: str, skip: int) -> tuple[int, int] | None:
    """The Asia/Shanghai month of the batch's first line with a valid hour (reads a few lines)."""
    parse, hour_expr = _parse_sql(parse_kind, safe=True)
    cur.execute(
        f"SELECT h FROM (SELECT CASE WHEN {_HAS_OFFSET} THEN {hour_expr} END AS h FROM ({parse}) p"
        " OFFSET 0) s WHERE h IS NOT NULL LIMIT 1",
        {"skip": skip},
    )
    row = cur.fetchone()
    if row is None:
        return None
    first = clock.local(row[0])
    return first.year, first.month


def _partition_pk_name(cur, name: str) -> str | None:
    cur.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'", [name])
    row = cur.fetchone()
    return row[0] if row else None


def _partition_is_empty_locked(cur, name: str) -> bool:
    """True if the partition holds no rows; it is then locked (ACCESS EXCLUSIVE) until commit.

    The lock is taken only when the partition looks empty, so merges into a filled month never
    block its readers. Taking it waits for any transaction still writing the partition; the
    second look then sees what that transaction committed (the merge path takes over).
    """
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM {name})")
    if cur.fetchone()[0]:
        return False
    cur.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
    cur.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {name})")
    return cur.fetchone()[0]


def _load_empty(cur, name: str, source: str, params: dict, *, dedupe: bool) -> int:
    """Append to an empty, locked partition without its key, then rebuild the key by a sort.

    Without ``dedupe`` every row is appended as is, and a key present twice in the batch makes
    ADD PRIMARY KEY fail (the caller then retries with ``dedupe``: the last line wins).
    """
    pk = _partition_pk_name(cur, name)
    if pk:
        cur.execute(f"ALTER TABLE {name} DROP CONSTRAINT {pk}")
    if dedupe:
        cur.execute(f"CREATE TEMP TABLE billing_usage_good ON COMMIT DROP AS {source}", params)
        taken = cur.rowcount
        cur.execute(
            f"INSERT INTO {name} ({_COLUMNS}) SELECT DISTINCT ON ({_KEY}) {_COLUMNS}"
            f" FROM billing_usage_good ORDER BY {_KEY}, line DESC"
        )
        cur.execute("DROP TABLE billing_usage_good")
    else:
        cur.execute(f"INSERT INTO {name} ({_COLUMNS}) SELECT {_COLUMNS} FROM ({source}) g", params)
        taken = cur.rowcount
    cur.execute(usage_partition_pk_sql(name))
    return taken


def _merge(cur, name: str, source: str, params: dict) -> int:
    """Merge into a partition that has rows: a row for a recorded key replaces it, never adds.

    Sorted by the key: the sort keeps each key's last line of the batch (ON CONFLICT may not
    touch a row twice in one statement), and index inserts in key order are faster than in
    file order (measured: 1.0 s vs 1.35 s per 100k rows).
    """
    cur.execute(
        f"""
        WITH good AS MATERIALIZED ({source}),
        merged AS (
            INSERT INTO {name} AS u ({_COLUMNS})
            SELECT DISTINCT ON ({_KEY}) {_COLUMNS} FROM good ORDER BY {_KEY}, line DESC
            ON CONFLICT ({_KEY}) DO UPDATE SET calls = EXCLUDED.calls
            WHERE u.calls IS DISTINCT FROM EXCLUDED.calls
        )
        SELECT count(*) FROM good
        """,
        params,
    )
    return cur.fetchone()[0]


def _load_month(cur, *, year: int, month: int, source: str, params: dict) -> int:
    """Write one month's good lines (``source`` selects them) to its partition; lines taken."""
    usage_partition_ensure(year=year, month=month)
    name = usage_partition_name(year, month)
    start, end = clock.month_range(year, month)
    params = {**params, "month_start": start, "month_end": end}
    if not _partition_is_empty_locked(cur, name):
        return _merge(cur, name, source, params)
    try:
        with transaction.atomic():
            return _load_empty(cur, name, source, params, dedupe=False)
    except IntegrityError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
            raise
    return _load_empty(cur, name, source, params, dedupe=True)  # a key more than once in the batch


def usage_ingest(
    *, data: bytes | Iterable[bytes], batch_id: str, fmt: str = "csv", source: str = "api", actor=None
) -> IngestResult:
    """Load a batch of hourly rollups (CSV with header, or NDJSON). Idempotent on ``batch_id``.

    ``actor``: the staff user who sent the batch (None for the gateway and commands); a new
    batch is then audited under that user in the same transaction (P-4: every staff action).
    """
    batch_id = (batch_id or "").strip()
    if not batch_id or len(batch_id) > 100:
        raise DomainError("invalid", gettext("必须提供 batch_id (最多 100 个字符)。"), field="batch_id")
    if fmt not in ("csv", "ndjson"):
        raise DomainError("invalid", gettext("format 只能是 csv 或 ndjson。"), field="format")
    started = time.monotonic()
    stream = _DigestingStream(data)
    with transaction.atomic():
        return _ingest_in_transaction(
            stream=stream, batch_id=batch_id, fmt=fmt, source=source, started=started, actor=actor
        )


def _duplicate(batch: UsageBatch, stream: _DigestingStream) -> IngestResult:
    """A batch id already recorded: the same body counts once, another body is refused.

    The body is read to the end to hash it (nothing is staged). A batch recorded before
    digests were kept has none and cannot be compared: it stays a duplicate, as it was.
    """
    if batch.content_sha256 is not None and batch.content_sha256 != stream.hexdigest():
        raise BillingConflict(
            BATCH_ID_REUSED,
            gettext("这个 batch_id 已用于不同的请求内容; 新的用量请使用新的 batch_id。"),
            field="batch_id",
        )
    return IngestResult(
        batch_id=batch.batch_id,
        duplicate=True,
        rows_total=batch.rows_total,
        rows_accepted=batch.rows_accepted,
        rows_rejected=batch.rows_rejected,
        errors=batch.errors,
        seconds=batch.seconds,
    )


def _ingest_in_transaction(*, stream, batch_id, fmt, source, started, actor=None) -> IngestResult:
    recorded = UsageBatch.objects.filter(batch_id=batch_id).first()
    if recorded is not None:
        return _duplicate(recorded, stream)
    try:
        # Inserted first: a concurrent request with the same id blocks here until we commit.
        with transaction.atomic():
            batch = UsageBatch.objects.create(batch_id=batch_id, source=source)
    except IntegrityError:
        # The same batch id committed first (a retry, or a concurrent send); this statement's
        # snapshot (READ COMMITTED) sees its row.
        return _duplicate(UsageBatch.objects.get(batch_id=batch_id), stream)
    # FEE-4.2: a month being planned waits for this batch to commit, and a batch arriving during
    # the planning waits for it and then sees the month settled: usage is never written into a
    # month after its lines were staged (stored, but never billed).
    advisory_xact_lock_shared(NS_USAGE_INGEST, 0)
    settled = _settled_months()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool, connection.cursor() as cur:
        # For the sort that rebuilds an empty partition's key (a session setting, this transaction).
        cur.execute(f"SET LOCAL maintenance_work_mem = '{LOAD_MAINTENANCE_WORK_MEM}'")
        # Dropped explicitly too: an outer transaction (a caller's, a test's) outlives ON COMMIT.
        cur.execute(f"DROP TABLE IF EXISTS {_TEMP_TABLES}")
        total, rejected, errors = _load(cur, stream, fmt, spool, settled)
        cur.execute(f"DROP TABLE IF EXISTS {_TEMP_TABLES}")
    batch.rows_total, batch.rows_rejected = total, rejected
    batch.rows_accepted = total - rejected
    batch.errors = errors
    batch.content_sha256 = stream.hexdigest()  # the load read the body to its end
    batch.seconds = round(time.monotonic() - started, 3)
    batch.save(
        update_fields=["rows_total", "rows_accepted", "rows_rejected", "errors", "content_sha256", "seconds"]
    )
    if actor is not None:
        audit_record(
            actor=actor,
            action="billing.usage_ingest",
            obj=batch,
            details={
                "rows_accepted": batch.rows_accepted,
                "rows_rejected": rejected,
                "sha256": batch.content_sha256,
            },
        )
    return IngestResult(
        batch_id=batch_id,
        rows_total=total,
        rows_accepted=total - rejected,
        rows_rejected=rejected,
        errors=errors,
        seconds=batch.seconds,
    )


def _load(cur, stream, fmt: str, spool, settled) -> tuple[int, int, list[dict]]:
    """The batch into its months' partitions: (lines, lines refused, the first refusals)."""
    stream = _without_bom(stream)
    rest, spooled = stream, False
    if fmt == "csv":
        direct, rest, spooled = _load_direct(cur, stream, spool, settled)
        if direct is not None:
            return direct, 0, []
    parse_kind, skip, total = _stage(cur, rest, fmt, spool, spooled=spooled)
    taken, fast_month = 0, None
    first = _first_month(cur, parse_kind, skip) if total else None
    if first is not None and first not in settled and clock.month_supported(*first):
        parse, hour_expr = _parse_sql(parse_kind, safe=False)
        good = _GOOD.format(parse=parse, has_offset=_HAS_OFFSET, hour_expr=hour_expr)
        try:
            with transaction.atomic():
                taken = _load_month(cur, year=first[0], month=first[1], source=good, params={"skip": skip})
            fast_month = first
        except (DataError, IntegrityError):
            # A value the fast casts refuse (the checked path casts per row), or a line
            # breaking a constraint of the partition (the checked path reports it).
            taken = 0
    rejected, errors = 0, []
    if taken != total:  # a line was refused, or is of another month: check every line
        _check(cur, parse_kind, skip, settled)
        cur.execute("SELECT count(*) FROM billing_usage_checked WHERE error IS NOT NULL")
        rejected = cur.fetchone()[0]
        cur.execute(
            "SELECT DISTINCT extract(year FROM local)::int, extract(month FROM local)::int"
            " FROM (SELECT hour AT TIME ZONE 'Asia/Shanghai' AS local FROM billing_usage_checked"
            " WHERE error IS NULL) h ORDER BY 1, 2"
        )
        for year, month in cur.fetchall():  # each month in order: partitions locked in order
            if (year, month) != fast_month:
                _load_month(cur, year=year, month=month, source=_GOOD_CHECKED, params={})
        cur.execute(
            "SELECT line, error FROM billing_usage_checked WHERE error IS NOT NULL ORDER BY line LIMIT %s",
            [MAX_REPORTED_ERRORS],
        )
        errors = [{"line": line, "reason": reason} for line, reason in cur.fetchall()]
    return total, rejected, errors


def _without_bom(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The body without a leading UTF-8 byte-order mark (spreadsheets write one)."""
    chunks = iter(chunks)
    first = b""
    for chunk in chunks:
        first += chunk
        if len(first) >= 3:
            break
    yield first.removeprefix(b"\xef\xbb\xbf")
    yield from chunks


def _read_lines(chunks: Iterator[bytes], lines: int) -> bytes:
    """The body's start, read from ``chunks`` up to its first ``lines`` newlines (or its end)."""
    start = b""
    for chunk in chunks:
        start += chunk
        if start.count(b"\n") >= lines:
            break
    return start


def _is_header(start: bytes) -> bool:
    """The body starts with the CSV header line (both paths decide alike)."""
    return start.lstrip()[:8].replace(b" ", b"").lower().startswith(b"app_key,")


def _lf_endings(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """CRLF line ends as LF, also across chunk boundaries: a body mixing the two is still one
    line per line for COPY (which takes the first line's ending for all)."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        carry = b"\r" if data.endswith(b"\r") else b""
        yield (data[:-1] if carry else data).replace(b"\r\n", b"\n")
    yield carry


def _replay(spool) -> Iterator[bytes]:
    """The spooled body from its start, in 1 MiB reads."""
    spool.seek(0)
    return iter(lambda: spool.read(1 << 20), b"")


def _no_write(_chunk: bytes) -> None:
    pass


# --- the direct path: CSV straight into an empty month's partition ------------------------------


class _NotDirect(Exception):
    """A line the direct path does not take; the batch goes through the general path."""


def _hour_has_offset(hour: bytes) -> bool:
    """``_HAS_OFFSET`` in Python: a date, T or space, a time, then Z or ±HH[[:]MM]."""
    return (
        len(hour) >= 17
        and hour[10:11] in (b"T", b" ")
        and (
            hour[-1:] in (b"Z", b"z")
            or hour[-6:-5] in (b"+", b"-")
            or hour[-5:-4] in (b"+", b"-")
            or hour[-3:-2] in (b"+", b"-")
        )
    )


def _csv_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Whole lines of the body, in blocks (each ends with a newline)."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if cut:
            yield data[:cut]
    if rest:
        yield rest + b"\n"


def _csv_with_ids(blocks: Iterable[bytes], apps: dict, apis: dict) -> Iterator[bytes]:
    """``app_key,api,location,hour,calls`` lines as ``app_id,api_id,location,hour,calls``.

    Only what the partition cannot check is checked here: a known app and API and a UTC offset
    on the hour (a time without one would be read in the session's zone). Quoted fields and
    carriage returns are left to the general path, so each field is its raw bytes, as the
    typed COPY would read it. Hours repeat (a month has 744), so each is checked once.
    """
    hours_ok = set()
    for block in blocks:
        if b'"' in block or b"\r" in block:
            raise _NotDirect
        try:
            rows = [line.split(b",", 2) for line in block.split(b"\n") if line]
            hours = {rest[rest.find(b",") + 1 : rest.rfind(b",")] for _key, _api, rest in rows}
            if not all(_hour_has_offset(hour) for hour in hours - hours_ok):
                raise _NotDirect
            hours_ok |= hours
            yield b"\n".join([apps[key] + apis[api] + rest for key, api, rest in rows]) + b"\n"
        except (ValueError, KeyError) as exc:  # not three fields; an unknown app_key or api
            raise _NotDirect from exc


def _direct_head(stream) -> tuple[bytes, int, tuple[int, int] | None]:
    """Read the body up to its second line: (what was read, header length, the first month)."""
    head = _read_lines(stream, 2)
    lines = head.split(b"\n", 2)
    header = _is_header(head)
    skip = len(lines[0]) + 1 if header else 0
    if len(lines) < 2 or b"\r" in head:  # no data line yet; CRLF: the general path
        return head, skip, None
    fields = lines[1 if header else 0].split(b",")
    if len(fields) != 5 or not _hour_has_offset(fields[3]):
        return head, skip, None
    try:
        lines[0].decode()  # a header COPY never sees must still be text the general path takes
        local = clock.local(dt.datetime.fromisoformat(fields[3].decode()))
    except (UnicodeDecodeError, ValueError):
        return head, skip, None
    return head, skip, (local.year, local.month)


def _load_direct(cur, stream, spool, settled) -> tuple[int | None, Iterable[bytes], bool]:
    """A CSV batch straight into its month's partition when that month has no rows yet.

    Returns (rows loaded, None when the batch is not for this path: the partition has rows,
    the month is settled, a line it does not take…; the body still to stage; whether ``spool``
    already holds the body's start). Whatever it wrote to the database is undone.
    """
    head, skip, month = _direct_head(stream)
    untouched = (None, itertools.chain([head], stream), False)
    if month is None or month in settled or not clock.month_supported(*month):
        return untouched
    usage_partition_ensure(year=month[0], month=month[1])
    name = usage_partition_name(*month)

    read = []  # the body's start went to the spool (what is read from here on is spooled)

    def body():
        spool.write(head)
        read.append(True)
        yield head[skip:]  # the header line is not data
        for chunk in stream:
            spool.write(chunk)
            yield chunk

    try:
        with transaction.atomic():
            if not _partition_is_empty_locked(cur, name):
                return untouched
            cur.execute("SELECT app_key, id FROM billing_app")
            apps = {key.encode(): b"%d," % pk for key, pk in cur.fetchall()}
            cur.execute("SELECT code, id FROM billing_api")
            apis = {code.encode(): b"%d," % pk for code, pk in cur.fetchall()}
            pk = _partition_pk_name(cur, name)
            if pk:
                cur.execute(f"ALTER TABLE {name} DROP CONSTRAINT {pk}")
            # Sent from a second thread: Python prepares the next block while the server copies.
            copy_sql = f"COPY {name} ({_COLUMNS}) FROM STDIN (FORMAT csv)"
            with cur.cursor.copy(copy_sql, writer=QueuedLibpqWriter(cur.cursor)) as copy:
                for block in _csv_with_ids(_csv_lines(body()), apps, apis):
                    copy.write(block)
            rows = cur.cursor.rowcount
            cur.execute(usage_partition_pk_sql(name))  # a key twice in the batch fails here
            return rows, (), True
    except (_NotDirect, psycopg.Error, DataError, IntegrityError):
        return (None, stream, True) if read else untouched


def _stage(cur, data, fmt: str, spool, *, spooled: bool = False) -> tuple[str, int, int]:
    """COPY the batch into a temp table; returns (parse kind, lines to skip, rows to ingest).

    ``spooled``: the direct attempt already copied the first part of ``data`` to ``spool``;
    the rest is appended to it and the whole batch is read back from it.

    CSV first goes through a typed COPY (PostgreSQL's C parser, as fast as a bare COPY). Any
    malformed line makes that COPY fail as a whole; the batch is then replayed from the spool
    into a one-text-column table and parsed in SQL, so every bad line is found and reported by
    its number. NDJSON always takes the text path.
    """
    if spooled:
        for chunk in data:  # the rest of the body
            spool.write(chunk)
        data = _replay(spool)
    write = _no_write if spooled else spool.write  # the spool holds each chunk once
    chunks = _chunks(data)
    first = _read_lines(chunks, 1)  # the whole first line, to tell a header however the body was cut
    header = fmt == "csv" and _is_header(first)
    if fmt == "csv":
        cur.execute(
            "CREATE TEMP TABLE billing_usage_typed (line bigint GENERATED ALWAYS AS IDENTITY,"
            " app_key text, api text, location text, hour_txt text, calls bigint) ON COMMIT DROP"
        )
        try:
            with (
                transaction.atomic(),
                cur.cursor.copy(
                    "COPY billing_usage_typed (app_key, api, location, hour_txt, calls) FROM STDIN"
                    f" (FORMAT csv, HEADER {'true' if header else 'false'})"
                ) as copy,
            ):
                for chunk in itertools.chain([first], chunks):
                    write(chunk)
                    copy.write(chunk)
            return "typed", 1 if header else 0, cur.cursor.rowcount  # the header took file line 1
        except (DataError, psycopg.DataError):
            for chunk in chunks:  # the rest of the stream, for the replay
                write(chunk)
            first, chunks = b"", _replay(spool)
    # CSV mode with delimiter and quote bytes that never occur in the data: one line → one
    # text field, no escaping. Parsing happens in SQL, where every line keeps its number.
    cur.execute(
        "CREATE TEMP TABLE billing_usage_stage (line bigint GENERATED ALWAYS AS IDENTITY, raw text)"
        " ON COMMIT DROP"
    )
    try:
        with (
            transaction.atomic(),
            cur.cursor.copy(
                "COPY billing_usage_stage (raw) FROM STDIN (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
            ) as copy,
        ):
            for chunk in _lf_endings(itertools.chain([first], chunks)):
                copy.write(chunk)
    except (DataError, psycopg.DataError) as exc:  # not UTF-8, or a carriage return inside a line
        raise DomainError(
            "invalid", gettext("用量数据必须是 UTF-8 文本, 每行以换行符 (LF 或 CRLF) 结尾。"), field="body"
        ) from exc
    skip = 1 if header else 0
    cur.execute(
        "SELECT count(*) FROM billing_usage_stage"
        " WHERE line > %s AND btrim(coalesce(raw, ''), E' \\r') <> ''",
        [skip],
    )
    return fmt, skip, cur.fetchone()[0]


def usage_record_rows(*, rows: Iterable[tuple], batch_id: str) -> IngestResult:
    """Tests and demo: ingest (app_key, api, location, hour datetime, calls) tuples as CSV."""
    lines = [CSV_HEADER]
    for app_key, api, location, hour, calls in rows:
        lines.append(f"{app_key},{api},{location},{hour.isoformat()},{calls}")
    return usage_ingest(
        data=("\n".join(lines) + "\n").encode(), batch_id=batch_id, fmt="csv", source="command"
    )
