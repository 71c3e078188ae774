"""manage.py import_usage FILE [--batch-id ID] [--format csv|ndjson]: bulk-load hourly usage.

Same path as ``POST /api/v1/billing/usage`` (COPY into a staging table, one set-based
merge); the batch id defaults to the file's name and size, so importing a file twice counts
once. Shows a progress bar (tqdm) over the bytes sent to PostgreSQL.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from billing.services.usage import usage_ingest
from portal.errors import DomainError

CHUNK = 1 << 20


class Command(BaseCommand):
    help = "Import hourly usage rollups (CSV with header app_key,api,location,hour,calls, or NDJSON)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--batch-id", default=None)
        parser.add_argument("--format", choices=["csv", "ndjson"], default=None)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, file, batch_id, format, no_progress, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{path} does not exist")
        size = path.stat().st_size
        fmt = format or ("ndjson" if path.suffix in (".ndjson", ".jsonl") else "csv")
        batch_id = batch_id or f"file:{path.name}:{size}"
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
            raise CommandError(exc.message) from exc
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
