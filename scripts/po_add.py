"""Add or update English translations in a .po catalogue (no gettext needed).

Usage: python scripts/po_add.py <app>/locale/en/LC_MESSAGES/django.po pairs.json
where pairs.json maps the Chinese msgid to its English text. A msgid with a context
(pgettext, ``{% translate ... context ... %}``) or a plural form (ngettext,
``{% blocktranslate count %}``) maps to an object instead:
``{"context": "...", "plural": "<msgid_plural>", "text": "..." or ["one", "other"]}``.
``manage.py catalog_check --json DIR`` writes such a file per app with the missing msgids.
Then run ``manage.py compile_catalogs``.
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
    for msgid, value in pairs.items():
        entry = value if isinstance(value, dict) else {"text": value}
        text, context = entry["text"], entry.get("context")
        if not text or (isinstance(text, list) and not all(text)):
            continue  # left blank in a --json skeleton: not translated yet
        key, string = ((msgid, entry["plural"]), tuple(text)) if entry.get("plural") else (msgid, text)
        message = catalog.get(msgid, context=context)
        if message is None:
            catalog.add(key, string, context=context)
        else:
            # Catalog.add() would merge into the existing entry but keep its old msgstr.
            message.id, message.string = key, string
            # A translation given here was written by a person: no longer a fuzzy guess
            # (compile_catalogs leaves fuzzy entries out of the .mo).
            message.flags.discard("fuzzy")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog, width=0)


if __name__ == "__main__":
    main(*sys.argv[1:3])
