"""Batch identity (FEE-2.3 idempotent ingest): a batch counts once, a different one is never
mistaken for it — neither by ``import_usage``'s default batch id nor by a re-used batch id."""

import hashlib
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.errors import BillingConflict
from billing.models import UsageBatch, UsageHourly
from billing.services import usage
from billing.tests.factories_metering import AppFactory, paid_api, race_two_batches

pytestmark = pytest.mark.django_db
URL = "/api/v1/billing/usage"


def csv_body(*lines):
    return ("app_key,api,location,hour,calls\n" + "\n".join(lines) + "\n").encode()


def calls_of(app, api):
    return sorted(UsageHourly.objects.filter(app_id=app.id, api_id=api.id).values_list("hour", "calls"))


def import_usage(path, *args):
    out = io.StringIO()
    call_command("import_usage", str(path), "--no-progress", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


class TestImportUsageDefaultBatchId:
    def test_fee_2_3_two_files_with_the_same_name_and_size_are_both_counted(self, app, tmp_path):
        # given: two different exports, same file name, same byte size (only the hour differs)
        api = paid_api()
        day1 = csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5")
        day2 = csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-03T10:00:00+08:00,5")
        assert len(day1) == len(day2) and day1 != day2
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        first, second = tmp_path / "a" / "usage.csv", tmp_path / "b" / "usage.csv"
        first.write_bytes(day1)
        second.write_bytes(day2)

        # when: both are imported without --batch-id
        out1, out2 = import_usage(first), import_usage(second)

        # then: both are billed, each under its own content-derived batch
        assert "already ingested" not in out1 and "already ingested" not in out2
        assert [calls for _, calls in calls_of(app, api)] == [5, 5]
        assert set(UsageBatch.objects.values_list("batch_id", flat=True)) == {
            f"sha256:{hashlib.sha256(day1).hexdigest()}",
            f"sha256:{hashlib.sha256(day2).hexdigest()}",
        }

    def test_fee_2_3_the_same_file_imported_twice_counts_once(self, app, tmp_path):
        # given: one export imported once
        api = paid_api()
        path = tmp_path / "usage.csv"
        path.write_bytes(csv_body(f"{app.app_key},{api.code},in_cloud,2026-03-02T10:00:00+08:00,5"))
        import_usage(path)

        # when: the same content is imported again, even under another name
        copy = tmp_path / "usage-copy.csv"
        copy.write_bytes(path.read_bytes())
        again = import_usage(copy)

        # then: nothing changes
        assert "already ingested (counts once)" in again
        assert [calls for _, calls in calls_of(app, api)] == [5]
        assert UsageBatch.objects.count() == 1

    def test_default_batch_id_hashes_the_file_in_chunks(self, tmp_path, monkeypatch):
        # given: a file larger than the read chunk
        from billing.management.commands import import_usage as command

        monkeypatch.setattr(command, "CHUNK", 7)
        path = tmp_path / "big.csv"
        data = b"0123456789" * 100
        path.write_bytes(data)
        reads = []
        real_open = type(path).open

        def spy_open(self, *args, **kwargs):
            fh = real_open(self, *args, **kwargs)
            real_read = fh.read

            def read(n=-1):
                reads.append(n)
                return real_read(n)

            fh.read = read
            return fh

        monkeypatch.setattr(type(path), "open", spy_open)

        # when / then: the id is the SHA-256 of the bytes, never read whole
        assert command.file_batch_id(path) == f"sha256:{hashlib.sha256(data).hexdigest()}"
        assert reads and all(n == 7 for n in reads)


def hour_line(app, api, day: int, calls: int) -> str:
    return f"{app.app_key},{api.code},in_cloud,2026-03-{day:02d}T10:00:00+08:00,{calls}"


class TestBatchIdReusedWithAnotherBody:
    def test_fee_2_3_same_id_same_body_is_a_harmless_duplicate(self, app):
        # given: a batch sent once, in two chunks
        api = paid_api()
        body = csv_body(hour_line(app, api, 2, 5), hour_line(app, api, 3, 6))
        usage.usage_ingest(data=[body[:20], body[20:]], batch_id="B-1")

        # when: the same bytes come again, chunked differently
        again = usage.usage_ingest(data=body, batch_id="B-1")

        # then: a duplicate with the first answer; nothing added
        assert again.duplicate and again.rows_accepted == 2
        assert [calls for _, calls in calls_of(app, api)] == [5, 6]
        assert UsageBatch.objects.get().content_sha256 == hashlib.sha256(body).hexdigest()

    @pytest.mark.parametrize("fmt", ["csv", "ndjson"])
    def test_fee_2_3_same_id_other_body_is_refused_naming_batch_id(self, app, fmt):
        # given: batch B-2 recorded (a good CSV, or NDJSON through the text path)
        api = paid_api()
        if fmt == "csv":
            first, other = csv_body(hour_line(app, api, 2, 5)), csv_body(hour_line(app, api, 3, 7))
        else:
            row = (
                '{{"app_key":"{}","api":"{}","location":"in_cloud",'
                '"hour":"2026-03-0{}T02:00:00Z","calls":{}}}\n'
            )
            first = row.format(app.app_key, api.code, 2, 5).encode()
            other = row.format(app.app_key, api.code, 3, 7).encode()
        usage.usage_ingest(data=first, batch_id="B-2", fmt=fmt)

        # when: the id is re-used for other rows
        with pytest.raises(BillingConflict) as refused:
            usage.usage_ingest(data=other, batch_id="B-2", fmt=fmt)

        # then: 409 naming the rule and batch_id; the first batch stands, the new rows are not
        # silently dropped behind a "duplicate"
        assert (refused.value.status, refused.value.code, refused.value.field) == (
            409,
            "BATCH-ID-REUSED",
            "batch_id",
        )
        assert [calls for _, calls in calls_of(app, api)] == [5]
        batch = UsageBatch.objects.get(batch_id="B-2")
        assert batch.content_sha256 == hashlib.sha256(first).hexdigest()
        assert batch.rows_accepted == 1

    def test_digest_covers_a_batch_replayed_after_a_malformed_line(self, app):
        # given: a CSV whose typed COPY fails (bad calls), so it is replayed from the spool
        api = paid_api()
        body = csv_body(hour_line(app, api, 2, 5), f"{app.app_key},{api.code},in_cloud,x,many")
        result = usage.usage_ingest(data=[body[:30], body[30:]], batch_id="B-3")
        assert result.rows_rejected == 1

        # then: the stored digest is the whole body's, so the same body is still a duplicate
        assert UsageBatch.objects.get().content_sha256 == hashlib.sha256(body).hexdigest()
        assert usage.usage_ingest(data=body, batch_id="B-3").duplicate

    def test_a_batch_recorded_before_digests_stays_a_duplicate(self, app):
        # given: a batch row from before the digest column (no digest)
        api = paid_api()
        UsageBatch.objects.create(batch_id="old", source="api", rows_total=1, rows_accepted=1)

        # when: its id comes again, with whatever body
        again = usage.usage_ingest(data=csv_body(hour_line(app, api, 2, 5)), batch_id="old")

        # then: it cannot be compared; it keeps counting once, as it always did
        assert again.duplicate and again.rows_accepted == 1
        assert calls_of(app, api) == []


class TestBatchIdReusedApi:
    def test_fee_2_3_gateway_gets_409_for_another_body_and_200_for_a_retry(self, client, app, gateway_token):
        # given: a batch posted by the gateway
        api = paid_api()
        auth = {"HTTP_AUTHORIZATION": f"Bearer {gateway_token}"}
        body = csv_body(hour_line(app, api, 2, 5))
        assert client.post(f"{URL}?batch_id=g-1", body, content_type="text/csv", **auth).status_code == 201

        # when: a retry of the same body, then another body under the same id
        retry = client.post(f"{URL}?batch_id=g-1", body, content_type="text/csv", **auth)
        other = client.post(
            f"{URL}?batch_id=g-1", csv_body(hour_line(app, api, 3, 9)), content_type="text/csv", **auth
        )

        # then
        assert retry.status_code == 200 and retry.json()["duplicate"] is True
        assert other.status_code == 409
        assert other.json()["code"] == "BATCH-ID-REUSED" and other.json()["field"] == "batch_id"
        assert "batch_id" in other.json()["message"]
        assert [calls for _, calls in calls_of(app, api)] == [5]


class TestBatchIdReusedCommand:
    def test_fee_2_3_import_usage_refuses_an_explicit_id_reused_for_another_file(self, app, tmp_path):
        # given: a file imported under --batch-id day-1
        api = paid_api()
        first, second = tmp_path / "a.csv", tmp_path / "b.csv"
        first.write_bytes(csv_body(hour_line(app, api, 2, 5)))
        second.write_bytes(csv_body(hour_line(app, api, 3, 7)))
        import_usage(first, "--batch-id", "day-1")

        # when / then: another file under the same id is a clear error, nothing is loaded
        with pytest.raises(CommandError, match=r"BATCH-ID-REUSED.*batch_id"):
            import_usage(second, "--batch-id", "day-1")
        assert [calls for _, calls in calls_of(app, api)] == [5]
        # and the same file again is still a harmless duplicate
        assert "already ingested" in import_usage(first, "--batch-id", "day-1")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_2_3_a_concurrent_send_of_the_id_with_another_body_is_refused(usage_table_cleanup):
    """A holds batch "race" open; B sends the same id with other rows and waits on the unique
    batch id; when A commits, B sees A's digest and is refused, not counted as a duplicate."""
    app, api = AppFactory(), paid_api()
    results = race_two_batches(
        lambda: usage.usage_ingest(data=csv_body(hour_line(app, api, 2, 5)), batch_id="race"),
        lambda: usage.usage_ingest(data=csv_body(hour_line(app, api, 3, 8)), batch_id="race"),
    )
    assert results == {"a": results["a"], "b": "BATCH-ID-REUSED"}
    assert [calls for _, calls in calls_of(app, api)] == [5]
    assert UsageBatch.objects.filter(batch_id="race").count() == 1
