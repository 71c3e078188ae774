"""Usage ingest's two ways into a month (FEE-2.3/2.4): a month's first rows (empty partition:
key dropped, rows appended, key rebuilt) and the merge into a month that has rows."""

import pytest
from django.db import IntegrityError, connection, transaction

from billing.models import UsageHourly
from billing.services import usage
from billing.tests.factories_metering import AppFactory, paid_api, race_two_batches

URL = "/api/v1/billing/usage"


def csv_body(*lines):
    return ("app_key,api,location,hour,calls\n" + "\n".join(lines) + "\n").encode()


def rows_of(app, api):
    return sorted(
        UsageHourly.objects.filter(app_id=app.id, api_id=api.id).values_list("location", "hour", "calls")
    )


def primary_key_of(partition: str) -> str | None:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s::regclass AND contype = 'p'",
            [partition],
        )
        row = cur.fetchone()
    return row[0] if row else None


KEY = "PRIMARY KEY (app_id, api_id, location, hour)"


@pytest.mark.django_db
class TestFirstRowsOfAMonth:
    def test_fee_2_3_first_load_keeps_the_key_and_a_resent_row_replaces(self, app):
        api = paid_api()
        k, x = app.app_key, api.code
        first = usage.usage_ingest(
            data=csv_body(
                f"{k},{x},in_cloud,2026-03-02T10:00:00+08:00,5",
                f"{k},{x},out_of_cloud,2026-03-02T10:00:00+08:00,6",
                f"{k},{x},in_cloud,2026-03-02T11:00:00+08:00,7",
            ),
            batch_id="first",
        )
        assert (first.rows_total, first.rows_accepted, first.errors) == (3, 3, [])
        assert primary_key_of("billing_usage_hourly_p2026_03") == KEY
        # The same hour again (another offset), and a new hour: replaced and added, never summed.
        again = usage.usage_ingest(
            data=csv_body(
                f"{k},{x},in_cloud,2026-03-02T02:00:00Z,50", f"{k},{x},in_cloud,2026-03-02T12:00:00+08:00,1"
            ),
            batch_id="second",
        )
        assert again.rows_accepted == 2
        assert [(loc, calls) for loc, _, calls in rows_of(app, api)] == [
            ("in_cloud", 50),
            ("in_cloud", 7),
            ("in_cloud", 1),
            ("out_of_cloud", 6),
        ]

    def test_fee_2_3_a_key_twice_in_a_first_load_keeps_its_last_line(self, app):
        api = paid_api()
        line = f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,"
        result = usage.usage_ingest(data=csv_body(line + "1", line + "9", line + "4"), batch_id="dup")
        assert (result.rows_total, result.rows_accepted, result.rows_rejected) == (3, 3, 0)
        assert [calls for _, _, calls in rows_of(app, api)] == [4]
        assert primary_key_of("billing_usage_hourly_p2026_03") == KEY

    def test_fee_2_3_the_database_refuses_a_second_row_for_a_key_after_a_first_load(self, app):
        api = paid_api()
        usage.usage_ingest(
            data=csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5"), batch_id="one"
        )
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                "INSERT INTO billing_usage_hourly (app_id, api_id, location, hour, calls)"
                " VALUES (%s, %s, 'in_cloud', '2026-03-02T10:00:00+08:00', 1)",
                [app.id, api.id],
            )
        assert [calls for _, _, calls in rows_of(app, api)] == [5]

    def test_partitions_created_ahead_carry_the_primary_key(self):
        created = usage.usage_partitions_ensure_ahead(
            today=usage.clock.today().replace(year=2033), months_ahead=1
        )
        assert created and all(primary_key_of(name) == KEY for name in created)

    @pytest.mark.parametrize("first_line_month", ["filled", "empty"])
    def test_fee_2_3_a_batch_over_a_filled_and_an_empty_month(self, app, first_line_month):
        api = paid_api()
        k, x = app.app_key, api.code
        usage.usage_ingest(data=csv_body(f"{k},{x},in_cloud,2026-03-31T23:00:00+08:00,5"), batch_id="march")
        march = f"{k},{x},in_cloud,2026-03-31T23:00:00+08:00,8"  # re-sent: replaces the 5
        april = f"{k},{x},in_cloud,2026-04-01T00:00:00+08:00,3"  # April's first row
        bad = f"{k},{x},in_cloud,2026-04-01T00:30:00+08:00,3"
        lines = [march, april, bad] if first_line_month == "filled" else [april, bad, march]
        result = usage.usage_ingest(data=csv_body(*lines), batch_id="both")
        assert (result.rows_total, result.rows_accepted, result.rows_rejected) == (3, 2, 1)
        assert result.errors == [{"line": lines.index(bad) + 2, "reason": "hour is not on the hour"}]
        assert [calls for _, _, calls in rows_of(app, api)] == [8, 3]
        assert primary_key_of("billing_usage_hourly_p2026_04") == KEY
        assert usage.usage_ingest(data=csv_body(*lines), batch_id="both").duplicate
        assert [calls for _, _, calls in rows_of(app, api)] == [8, 3]

    def test_fee_2_3_ndjson_first_load(self, app):
        api = paid_api()
        body = "".join(
            f'{{"app_key": "{app.app_key}", "api": "{api.code}", "location": "in_cloud",'
            f' "hour": "2026-03-02T{h:02d}:00:00+08:00", "calls": {h}}}\n'
            for h in (10, 11)
        ).encode()
        result = usage.usage_ingest(data=body, batch_id="nd", fmt="ndjson")
        assert (result.rows_total, result.rows_accepted) == (2, 2)
        assert [calls for _, _, calls in rows_of(app, api)] == [10, 11]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hour", "taken"),
    [
        ("2026-03-02T10:00:00+08:00", True),
        ("2026-03-02T02:00:00Z", True),
        ("2026-03-02T02:00:00z", True),
        ("2026-03-02 10:00:00+0800", True),
        ("2026-03-02T10:00+08", True),
        ("2026-03-01T18:00:00-08:00", True),
        ("2026-03-02T10:00:00", False),
        ("2026-03-02 10:00", False),
        ("2026-03-02", False),
    ],
)
def test_fee_2_3_an_hour_needs_its_utc_offset(app, hour, taken):
    api = paid_api()
    result = usage.usage_ingest(data=csv_body(f"{app.app_key},{api.code},in_cloud,{hour},5"), batch_id="h")
    assert result.rows_accepted == (1 if taken else 0)
    if taken:
        assert rows_of(app, api)[0][1].isoformat() == "2026-03-02T02:00:00+00:00"
    else:
        assert result.errors == [{"line": 2, "reason": "hour is not an ISO 8601 time with a UTC offset"}]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("created_ahead", [True, False])
def test_fee_2_3_a_batch_racing_a_first_load_replaces_what_it_committed(usage_table_cleanup, created_ahead):
    """Batch A loads March's first rows and holds its transaction open; batch B, with the same
    key, waits for A's lock (on the partition, or on creating it), then finds the rows and
    merges: B's value replaces A's."""
    app, api = AppFactory(), paid_api()
    if created_ahead:
        usage.usage_partition_ensure(year=2026, month=3)
    line = f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,"
    results = race_two_batches(
        lambda: usage.usage_ingest(data=csv_body(line + "5"), batch_id="race-a"),
        lambda: usage.usage_ingest(data=csv_body(line + "8"), batch_id="race-b"),
    )
    assert results["a"].rows_accepted == 1 and results["b"].rows_accepted == 1
    assert [calls for _, _, calls in rows_of(app, api)] == [8]
