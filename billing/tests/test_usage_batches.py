"""Batch identity (FEE-2.3 idempotent ingest): a batch counts once, a different one is never
mistaken for it — neither by ``import_usage``'s default batch id nor by a re-used batch id."""

import hashlib
import io

import pytest
from django.core.management import call_command

from billing.models import UsageBatch, UsageHourly
from billing.tests.factories_metering import paid_api

pytestmark = pytest.mark.django_db


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
