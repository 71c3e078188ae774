"""Usage ingest's direct path (FEE-2.3/2.4): a clean CSV batch into a month with no rows yet is
COPYed straight into the month's partition, its app keys and API codes swapped for ids on the way.

Whatever that path does not take — a bad line anywhere in the batch, quoting, CRLF, a second
month, a key twice — is replayed through the general path and answered exactly as before: the
same rows kept, the same refusals by line number. The body arrives in pieces of any size
(a request stream cuts lines anywhere)."""

import hashlib

import pytest
from django.db import connection

from billing.models import UsageBatch, UsageHourly
from billing.services import usage
from billing.tests.factories_metering import paid_api

HEADER = "app_key,api,location,hour,calls"


def pieces(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def rows_of(app, api):
    return sorted(
        UsageHourly.objects.filter(app_id=app.id, api_id=api.id).values_list("location", "hour", "calls")
    )


def has_primary_key(partition: str) -> bool:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p')",
            [partition],
        )
        return cur.fetchone()[0]


@pytest.fixture
def general_path_calls(monkeypatch):
    """How many times the batch went through the general path (staged in a temp table)."""
    calls = []
    stage = usage._stage

    def counted(*args, **kwargs):
        calls.append(1)
        return stage(*args, **kwargs)

    monkeypatch.setattr(usage, "_stage", counted)
    return calls


@pytest.mark.django_db
@pytest.mark.parametrize("size", [1, 7, 50, 1 << 20])
def test_fee_2_3_a_clean_batch_goes_straight_into_its_month(app, general_path_calls, size):
    api = paid_api()
    k, x = app.app_key, api.code
    body = "\n".join(
        [
            HEADER,
            f"{k},{x},in_cloud,2026-03-02T10:00:00+08:00,5",
            f"{k},{x},out_of_cloud,2026-03-02T02:00:00Z,6",
            f"{k},{x},in_cloud,2026-03-02 11:00:00+0800,7",
            f"{k},{x},in_cloud,2026-03-01T20:00-08,8",
        ]
    ).encode()  # no newline after the last line
    result = usage.usage_ingest(data=pieces(body, size), batch_id="direct")
    assert general_path_calls == []
    assert (result.rows_total, result.rows_accepted, result.rows_rejected) == (4, 4, 0)
    assert [(loc, hour.isoformat(), calls) for loc, hour, calls in rows_of(app, api)] == [
        ("in_cloud", "2026-03-02T02:00:00+00:00", 5),
        ("in_cloud", "2026-03-02T03:00:00+00:00", 7),
        ("in_cloud", "2026-03-02T04:00:00+00:00", 8),
        ("out_of_cloud", "2026-03-02T02:00:00+00:00", 6),
    ]
    assert has_primary_key("billing_usage_hourly_p2026_03")
    assert UsageBatch.objects.get(batch_id="direct").content_sha256 == hashlib.sha256(body).hexdigest()
    assert usage.usage_ingest(data=pieces(body, size), batch_id="direct").duplicate


@pytest.mark.django_db
def test_fee_2_3_a_batch_without_a_header_goes_straight_in_too(app, general_path_calls):
    api = paid_api()
    body = f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5\n".encode()
    result = usage.usage_ingest(data=body, batch_id="no-header")
    assert (general_path_calls, result.rows_accepted) == ([], 1)
    assert [calls for _, _, calls in rows_of(app, api)] == [5]


# Each case: the lines after two good first lines, what is kept, what is refused (line, reason).
LATE = "{k},{x},in_cloud,2026-03-05T{h}:00:00+08:00,{c}"
CASES = {
    "an hour without its UTC offset": (
        ["{k},{x},in_cloud,2026-03-05T12:00:00,9"],
        [1, 2],
        [(4, "hour is not an ISO 8601 time with a UTC offset")],
    ),
    "an hour ending in a space": (
        ["{k},{x},in_cloud,2026-03-05T12:00:00 ,9"],
        [1, 2],
        [(4, "hour is not an ISO 8601 time with a UTC offset")],
    ),
    "an unknown app_key": (
        ["nope,{x},in_cloud,2026-03-05T12:00:00+08:00,9"],
        [1, 2],
        [(4, "unknown app_key")],
    ),
    "an unknown api": (["{k},nope,in_cloud,2026-03-05T12:00:00+08:00,9"], [1, 2], [(4, "unknown api")]),
    "negative calls": (["{k},{x},in_cloud,2026-03-05T12:00:00+08:00,-9"], [1, 2], [(4, "negative calls")]),
    "an hour not on the hour": (
        ["{k},{x},in_cloud,2026-03-05T12:30:00+08:00,9"],
        [1, 2],
        [(4, "hour is not on the hour")],
    ),
    "a bad location": (
        ["{k},{x},moon,2026-03-05T12:00:00+08:00,9"],
        [1, 2],
        [(4, "location must be in_cloud or out_of_cloud")],
    ),
    "a line with too few fields": (
        ["{k},{x},in_cloud,9"],
        [1, 2],
        [(4, "malformed row (expected app_key,api,location,hour,calls)")],
    ),
    "quoted fields": (['"{k}","{x}",in_cloud,"2026-03-05T12:00:00+08:00",9'], [1, 2, 9], []),
    "a row of the next month": (["{k},{x},in_cloud,2026-04-01T00:00:00+08:00,9"], [1, 2, 9], []),
    "a key twice (the last line wins)": (["{k},{x},in_cloud,2026-03-05T10:00:00+08:00,9"], [9, 2], []),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("size", [5, 1 << 20])
def test_fee_2_3_a_line_the_direct_path_does_not_take_gets_the_general_answer(
    app, general_path_calls, monkeypatch, case, size
):
    monkeypatch.setattr(usage, "SPOOL_IN_MEMORY", 64)  # the replay reads the spool back from disk
    api = paid_api()
    k, x = app.app_key, api.code
    late, kept, refused = CASES[case]
    lines = [
        HEADER,
        f"{k},{x},in_cloud,2026-03-05T10:00:00+08:00,1",
        f"{k},{x},in_cloud,2026-03-05T11:00:00+08:00,2",
        *(line.format(k=k, x=x) for line in late),
    ]
    body = ("\n".join(lines) + "\n").encode()
    result = usage.usage_ingest(data=pieces(body, size), batch_id="late")
    assert general_path_calls == [1]
    assert [calls for _, _, calls in rows_of(app, api)] == kept
    assert [(e["line"], e["reason"]) for e in result.errors] == refused
    assert result.rows_rejected == len(refused)
    assert has_primary_key("billing_usage_hourly_p2026_03")
    assert UsageBatch.objects.get(batch_id="late").content_sha256 == hashlib.sha256(body).hexdigest()


@pytest.mark.django_db
def test_fee_2_3_blank_lines_are_skipped_on_the_direct_path_as_on_the_general_one(app, general_path_calls):
    api = paid_api()
    line = f"{app.app_key},{api.code},in_cloud,2026-03-05T1{{}}:00:00+08:00,{{}}"
    body = f"{HEADER}\n{line.format(0, 1)}\n\n{line.format(1, 2)}\n\n".encode()
    result = usage.usage_ingest(data=body, batch_id="blank")
    assert (general_path_calls, result.rows_total, result.rows_accepted, result.errors) == ([], 2, 2, [])
    assert [calls for _, _, calls in rows_of(app, api)] == [1, 2]


@pytest.mark.django_db
def test_fee_2_3_crlf_lines_are_read_as_lines(app, general_path_calls):
    api = paid_api()
    body = (
        f"{HEADER}\r\n{app.app_key},{api.code},in_cloud,2026-03-05T10:00:00+08:00,1\r\n"
        f"{app.app_key},{api.code},in_cloud,2026-03-05T11:00:00+08:00,2\r\n"
    ).encode()
    result = usage.usage_ingest(data=body, batch_id="crlf")
    assert (result.rows_accepted, result.errors) == (2, [])
    assert [calls for _, _, calls in rows_of(app, api)] == [1, 2]


@pytest.mark.django_db
def test_fee_2_3_a_month_with_rows_is_merged_not_loaded_directly(app, general_path_calls):
    api = paid_api()
    line = f"{app.app_key},{api.code},in_cloud,2026-03-05T10:00:00+08:00,"
    usage.usage_ingest(data=f"{HEADER}\n{line}1\n".encode(), batch_id="first")
    usage.usage_ingest(data=f"{HEADER}\n{line}7\n".encode(), batch_id="again")
    assert general_path_calls == [1]  # the second batch: the month had rows
    assert [calls for _, _, calls in rows_of(app, api)] == [7]


@pytest.mark.django_db
def test_fee_2_3_a_failure_before_the_copy_starts_loses_no_line(app, general_path_calls, monkeypatch):
    """The direct attempt fails after reading the body's first lines but before copying any:
    the general path still gets every line, the first ones included."""
    api = paid_api()

    def refuse(_blocks):
        raise usage._NotDirect

    monkeypatch.setattr(usage, "_csv_lines", refuse)
    line = f"{app.app_key},{api.code},in_cloud,2026-03-05T1{{}}:00:00+08:00,{{}}"
    body = f"{HEADER}\n{line.format(0, 1)}\n{line.format(1, 2)}\n{line.format(2, 3)}\n".encode()
    result = usage.usage_ingest(data=pieces(body, 8), batch_id="early")
    assert (general_path_calls, result.rows_total, result.rows_accepted) == ([1], 3, 3)
    assert [calls for _, _, calls in rows_of(app, api)] == [1, 2, 3]
    assert UsageBatch.objects.get(batch_id="early").content_sha256 == hashlib.sha256(body).hexdigest()


# Bodies at the edges of CSV: the answer must not depend on whether the month is empty (the
# direct path may take the batch) or has rows (the general path does). {k} and {x} are filled in.
GOOD = "{k},{x},in_cloud,2026-03-05T10:00:00+08:00,1"
EDGE_BODIES = {
    "a header only, no newline": HEADER,
    "a header ending CRLF, data lines LF": f"{HEADER}\r\n{GOOD}\n",
    "CRLF and LF mixed in the data": f"{HEADER}\n{GOOD}\r\n" + GOOD.replace("10:00", "11:00") + "\n",
    "a header with a space inside": "app_key ,api,location,hour,calls\n" + GOOD + "\n",
    "a UTF-8 BOM before the header": "\ufeff" + HEADER + "\n" + GOOD + "\n",
    "a location with trailing spaces": f"{HEADER}\n{GOOD}\n"
    + GOOD.replace("in_cloud", "out_of_cloud   ").replace("10:00", "11:00")
    + "\n",
}


def answer(result):
    if isinstance(result, Exception):
        return type(result).__name__, getattr(result, "code", None), getattr(result, "field", None)
    return result.rows_total, result.rows_accepted, result.rows_rejected, result.errors


def ingest(body: bytes, batch_id: str, size: int):
    try:
        return usage.usage_ingest(data=pieces(body, size), batch_id=batch_id)
    except Exception as exc:
        return exc


@pytest.mark.django_db
@pytest.mark.parametrize("case", EDGE_BODIES)
@pytest.mark.parametrize("size", [1, 1 << 20])
def test_fee_2_3_edge_bodies_get_the_same_answer_in_an_empty_and_a_filled_month(case, size):
    from billing.tests.factories_metering import AppFactory

    api = paid_api()
    first, second = AppFactory(), AppFactory()
    body = EDGE_BODIES[case]
    in_empty = ingest(body.format(k=first.app_key, x=api.code).encode(), "empty", size)
    usage.usage_ingest(  # March now has rows
        data=f"{HEADER}\n{GOOD.format(k=second.app_key, x=api.code).replace('10:00', '20:00')}\n".encode(),
        batch_id="fill",
    )
    in_filled = ingest(body.format(k=second.app_key, x=api.code).encode(), "filled", size)
    assert answer(in_empty) == answer(in_filled)
    if case == "a UTF-8 BOM before the header":
        assert answer(in_empty) == (1, 1, 0, [])
    if case == "a location with trailing spaces":
        assert answer(in_empty) == (
            2,
            1,
            1,
            [{"line": 3, "reason": "location must be in_cloud or out_of_cloud"}],
        )
    assert not isinstance(in_empty, Exception) or in_empty.__class__.__name__ == "DomainError"
    assert [c for _, _, c in rows_of(first, api)] == [
        c
        for _, hour, c in rows_of(second, api)
        if hour.hour != 12  # 20:00 +08:00 is the filler
    ]


@pytest.mark.django_db
def test_fee_2_3_a_body_that_is_not_utf8_is_refused_naming_the_body(app):
    api = paid_api()
    body = (
        f"{HEADER}\n{app.app_key},{api.code},in_cloud,2026-03-05T10:00:00+08:00,1\n".encode() + b"\xff,\xfe\n"
    )
    with pytest.raises(usage.DomainError) as exc:
        usage.usage_ingest(data=body, batch_id="latin")
    assert (exc.value.code, exc.value.field) == ("invalid", "body")
    assert not UsageBatch.objects.filter(batch_id="latin").exists()  # nothing recorded: resend it fixed


@pytest.mark.django_db
def test_fee_2_3_the_api_answers_400_naming_the_body_for_a_body_that_is_not_utf8(client, app, gateway_token):
    body = HEADER.encode() + b"\n\xff,\xfe,in_cloud,2026-03-05T10:00:00+08:00,1\n"
    resp = client.post(
        "/api/v1/billing/usage?batch_id=latin",
        body,
        content_type="text/csv",
        HTTP_AUTHORIZATION=f"Bearer {gateway_token}",
    )
    assert resp.status_code == 400
    assert resp.json()["field"] == "body" and "UTF-8" in resp.json()["message"]
