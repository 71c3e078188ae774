"""Find every translatable string in the apps and report those the English catalogues miss.

Python sources go through Babel's ``extract_python``; templates are first turned into
gettext calls by Django's own ``templatize`` (what ``makemessages`` does), so a
``{% blocktranslate trimmed %}`` body yields the very msgid Django looks up at render time:
whitespace trimmed, ``{{ var }}`` as ``%(var)s``, a literal ``%`` as ``%%``.

``manage.py catalog_check`` lists what is missing, grouped by the catalogue it belongs in;
``--json DIR`` writes one ``<app>.json`` per catalogue with the missing msgids as keys, ready
to be filled in and fed to ``scripts/po_add.py``.
"""

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation.template import templatize

APPS = ("portal", "billing", "authorization", "gifts")
# Django's lazy and no-op variants on top of Babel's gettext/ngettext/pgettext/npgettext/_.
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "gettext_lazy": None,
    "gettext_noop": None,
    "ngettext_lazy": (1, 2),
    "pgettext_lazy": ((1, "c"), 2),
    "npgettext_lazy": ((1, "c"), 2, 3),
}
# Han, CJK punctuation and full-width forms: text an English reader cannot read.
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[sdifr%]")


@dataclass(frozen=True)
class Key:
    """A catalogue entry as gettext sees it: context, msgid and (for plurals) msgid_plural."""

    msgid: str
    context: str | None = None
    plural: str | None = None

    def __str__(self):
        return f"{self.context}|{self.msgid}" if self.context else self.msgid


@dataclass
class Found:
    app: str
    locations: list[str] = field(default_factory=list)


def _base() -> Path:
    return Path(settings.BASE_DIR)


def _home_app(relative: Path) -> str:
    """Strings belong to the catalogue of the app whose code or templates hold them;
    project-wide templates (base, nav, errors, registration) belong to portal."""
    parts = relative.parts
    if parts[0] == "templates":
        return parts[1] if len(parts) > 2 and parts[1] in APPS else "portal"
    return parts[0]


def _python_files(base: Path):
    for app in APPS:
        for path in sorted((base / app).rglob("*.py")):
            rel = path.relative_to(base)
            if {"tests", "migrations"} & set(rel.parts[1:-1]):
                continue
            yield path


def _template_files(base: Path):
    roots = [base / "templates", *(base / app / "templates" for app in APPS)]
    for root in roots:
        if root.is_dir():
            yield from sorted(p for p in root.rglob("*") if p.suffix in {".html", ".txt"})


def _extract(source: bytes):
    for lineno, message, _comments, context in extract("python", io.BytesIO(source), keywords=KEYWORDS):
        if isinstance(message, tuple):
            yield lineno, Key(msgid=message[0], context=context, plural=message[1])
        else:
            yield lineno, Key(msgid=message, context=context)


def source_messages(base: Path | None = None) -> dict[Key, Found]:
    """Every msgid the apps' Python code and templates can ask gettext for."""
    base = base or _base()
    found: dict[Key, Found] = {}

    def add(path: Path, lineno: int, key: Key):
        rel = path.relative_to(base)
        entry = found.setdefault(key, Found(app=_home_app(rel)))
        entry.locations.append(f"{rel}:{lineno}")

    for path in _python_files(base):
        for lineno, key in _extract(path.read_bytes()):
            add(path, lineno, key)
    for path in _template_files(base):
        text = path.read_text(encoding="utf-8")
        for lineno, key in _extract(templatize(text, origin=str(path)).encode("utf-8")):
            add(path, lineno, key)
    return found


def english_catalogues(base: Path | None = None) -> dict[str, dict[Key, object]]:
    """app -> {Key: msgstr} of each English catalogue; fuzzy entries count as missing because
    ``compile_catalogs`` leaves them out of the .mo."""
    base = base or _base()
    catalogues = {}
    for app in APPS:
        path = base / app / "locale" / "en" / "LC_MESSAGES" / "django.po"
        entries = {}
        if path.exists():
            with path.open("rb") as fh:
                for message in read_po(fh):
                    if not message.id or message.fuzzy:
                        continue
                    if isinstance(message.id, tuple):
                        key = Key(msgid=message.id[0], context=message.context, plural=message.id[1])
                    else:
                        key = Key(msgid=message.id, context=message.context)
                    entries[key] = message.string
        catalogues[app] = entries
    return catalogues


def _is_translated(msgstr) -> bool:
    strings = msgstr if isinstance(msgstr, tuple | list) else (msgstr,)
    return bool(strings) and all(strings)


def needs_english(key: Key) -> bool:
    """A msgid with no Chinese in it already reads as English."""
    return bool(CJK.search(key.msgid) or (key.plural and CJK.search(key.plural)))


def missing_translations(base: Path | None = None) -> dict[Key, Found]:
    """Msgids with Chinese text that no English catalogue translates.

    Django merges every app's catalogue into one, so a translation anywhere serves every page.
    """
    catalogues = english_catalogues(base)
    missing = {}
    for key, found in source_messages(base).items():
        if not needs_english(key):
            continue
        if any(_is_translated(entries.get(key)) for entries in catalogues.values()):
            continue
        missing[key] = found
    return missing


def placeholder_mismatches(base: Path | None = None) -> list[tuple[str, Key, object]]:
    """Translations whose ``%(name)s``/``%s`` placeholders differ from their msgid's: the
    English page would raise or drop a value at render time. A plural form may leave out the
    count ("One gift"), so there each form only has to use placeholders the msgids have."""
    bad = []
    for app, entries in english_catalogues(base).items():
        for key, msgstr in entries.items():
            strings = msgstr if isinstance(msgstr, tuple | list) else (msgstr,)
            expected = sorted(PLACEHOLDER.findall(key.msgid))
            allowed = set(expected) | set(PLACEHOLDER.findall(key.plural or ""))
            for string in strings:
                used = PLACEHOLDER.findall(string or "")
                ok = set(used) <= allowed if key.plural else sorted(used) == expected
                if string and not ok:
                    bad.append((app, key, msgstr))
                    break
    return bad


def pairs_entry(key: Key):
    """What scripts/po_add.py reads for one msgid: its English text, blank until filled in."""
    if not key.context and not key.plural:
        return ""
    entry = {"context": key.context} if key.context else {}
    if key.plural:
        return {**entry, "plural": key.plural, "text": ["", ""]}
    return {**entry, "text": ""}


class Command(BaseCommand):
    help = "List the translatable strings (code and templates) that the English catalogues miss."

    def add_arguments(self, parser):
        parser.add_argument(
            "--json",
            metavar="DIR",
            help="write <app>.json per catalogue mapping each missing msgid to '' (for po_add.py)",
        )

    def handle(self, *args, **options):
        found = source_messages()
        missing = missing_translations()
        by_app: dict[str, dict[Key, Found]] = {}
        for key, entry in sorted(missing.items(), key=lambda kv: (kv[1].locations[0], kv[0].msgid)):
            by_app.setdefault(entry.app, {})[key] = entry
        for app, entries in by_app.items():
            self.stdout.write(f"{app}: {len(entries)} missing")
            for key, entry in entries.items():
                self.stdout.write(f"  {key!s}  ({', '.join(entry.locations[:3])})")
        if options["json"]:
            out = Path(options["json"])
            out.mkdir(parents=True, exist_ok=True)
            for app, entries in by_app.items():
                pairs = {key.msgid: pairs_entry(key) for key in entries}
                (out / f"{app}.json").write_text(json.dumps(pairs, ensure_ascii=False, indent=1) + "\n")
        mismatched = placeholder_mismatches()
        for app, key, msgstr in mismatched:
            self.stdout.write(f"{app}: placeholders differ: {key!s} -> {msgstr!r}")
        self.stdout.write(f"{len(found)} msgids found, {len(missing)} without English")
        if missing or mismatched:
            raise CommandError("English catalogues are incomplete")
