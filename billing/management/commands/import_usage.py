"""manage.py import_usage FILE [--batch-id ID] [--format csv|ndjson]: bulk-load hourly usage.

Same path as ``POST /api/v1/billing/usage`` (COPY into a staging table, one set-based
merge). The batch id defaults to ``sha256:<hex>`` of the file's bytes: importing the same file
twice counts once, and a different file never shares an id with it, whatever its name and
size (an id from name and size once let a second file of the same name and size be skipped as
"already ingested" and never billed). An explicit ``--batch-id`` already used for another
file's content is refused (``BATCH-ID-REUSED``), never skipped as a duplicate. Shows a progress
bar (tqdm) over the bytes sent to PostgreSQL.
"""

import hashlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from billing.services.usage import usage_ingest
from portal.errors import DomainError

CHUNK = 1 << 20


def file_batch_id(path: Path, *, progress=None) -> str:
    """The default batch id: the SHA-256 of the file's bytes, read in chunks (never whole)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            if progress is not None:
                progress.update(len(block))
    return f"sha256:{digest.hexdigest()}"


class Command(BaseCommand):
    help = "Import hourly usage rollups (CSV with header app_key,api,location,hour,calls, or NDJSON)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--batch-id", default=None, help="default: sha256:<hex> of the file's content")
        parser.add_argument("--format", choices=["csv", "ndjson"], default=None)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, file, batch_id, format, no_progress, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{path} does not exist")
        size = path.stat().st_size
        fmt = format or ("ndjson" if path.suffix in (".ndjson", ".jsonl") else "csv")
        if not batch_id:
            with tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc=f"sha256 {path.name}",
                disable=no_progress,
                file=self.stderr,
            ) as hashing:
                batch_id = file_batch_id(path, progress=hashing)
        bar = tqdm(
            total=size, unit="B", unit_scale=True, desc=path.name, disable=no_progress, file=self.stderr
        )

        def chunks():
            with path.open("rb") as fh:
                while block := fh.read(CHUNK):
                    bar.update(len(block))
                    yield block

        try:
            result = usage_ingest(data=chunks(), batch_id=batch_id, fmt=fmt, source="command")
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        finally:
            bar.close()
        if result.duplicate:
            self.stdout.write(f"batch {batch_id} already ingested (counts once): nothing changed")
        self.stdout.write(
            f"batch {batch_id}: rows {result.rows_total}, accepted {result.rows_accepted}, "
            f"rejected {result.rows_rejected} in {result.seconds:.2f}s"
        )
        for err in result.errors:
            self.stdout.write(f"  line {err['line']}: {err['reason']}")
