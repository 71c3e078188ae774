"""Add or update English translations in a .po catalogue (no gettext needed).

Usage: python scripts/po_add.py <app>/locale/en/LC_MESSAGES/django.po pairs.json
where pairs.json maps the Chinese msgid to its English text. Then run
``manage.py compile_catalogs``.
"""

import json
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po


def main(po_path: str, pairs_path: str) -> None:
    path = Path(po_path)
    pairs = json.loads(Path(pairs_path).read_text(encoding="utf-8"))
    catalog = Catalog(locale="en", project="portal")
    if path.exists():
        with path.open("rb") as fh:
            catalog = read_po(fh)
    for msgid, text in pairs.items():
        catalog.add(msgid, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog, width=0)


if __name__ == "__main__":
    main(*sys.argv[1:3])
