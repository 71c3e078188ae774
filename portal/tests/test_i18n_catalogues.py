# ruff: noqa: RUF001 -- Chinese msgids use full-width punctuation.
"""English catalogues: every Chinese msgid in code and templates has an English translation,
and key pages read in English for a user who picked English with the language switch."""

import datetime as dt
import importlib.util
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.template import Context, Template
from django.templatetags import i18n as i18n_tags
from django.urls import reverse

from authorization.tests.factories import GrantFactory
from billing.services.wallet import wallet_charge_for_month
from gifts.models import ProductGift
from gifts.tests.factories import CategoryFactory, ProductFactory, approved_gift
from portal import clock
from portal.management.commands.catalog_check import (
    CJK,
    Key,
    english_catalogues,
    missing_translations,
    pairs_entry,
    placeholder_mismatches,
    source_messages,
)
from portal.tests.factories import CreatorFactory, OrganizationFactory, UserFactory, main_member

# --- catalogues ----------------------------------------------------------------------------------


TRIMMED_BLOCK = """{% load i18n %}<p>{% blocktranslate trimmed with d=day amount=total %}
    截至 {{ d }}，
    余额 {{ amount }}（100% 预付）
{% endblocktranslate %}</p>"""


def test_blocktranslate_msgid_is_the_one_django_looks_up_when_rendering(tmp_path, monkeypatch):
    # given a template with a trimmed, multi-line block using two variables and a literal %
    (tmp_path / "templates" / "billing").mkdir(parents=True)
    (tmp_path / "templates" / "billing" / "x.html").write_text(TRIMMED_BLOCK, encoding="utf-8")
    asked = []
    monkeypatch.setattr(i18n_tags.translation, "gettext", lambda msgid: asked.append(msgid) or msgid)
    # when Django renders it and the extraction reads it
    Template(TRIMMED_BLOCK).render(Context({"day": "3-1", "total": "¥5"}))
    found = source_messages(tmp_path)
    # then both name the same msgid, and it belongs to billing's catalogue
    assert asked == ["截至 %(d)s， 余额 %(amount)s（100%% 预付）"]
    assert list(found) == [Key(msgid=asked[0])]
    assert found[Key(msgid=asked[0])].app == "billing"


def test_extraction_reads_python_gettext_calls_and_translate_tags():
    found = source_messages()
    locations = found[Key(msgid="联系邮箱")].locations  # gettext_lazy in portal/models.py
    assert any(re.fullmatch(r"portal/models\.py:\d+", loc) for loc in locations), locations
    assert found[Key(msgid="工作台")].app == "portal"  # {% translate %} in templates/_nav.html
    assert found[Key(msgid="提前续约：自 %(d)s 起至")].app == "authorization"  # blocktranslate


def test_missing_msgids_filled_in_with_po_add_satisfy_the_check(tmp_path):
    # given billing code with a plain, a context and a plural msgid, and no English yet
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "views.py").write_text(
        "from django.utils.translation import gettext as _, ngettext, pgettext_lazy\n"
        "A = _('余额')\n"
        "B = pgettext_lazy('开关', '开')\n"
        "C = ngettext('%(n)d 个应用', '%(n)d 个应用', 2)\n",
        encoding="utf-8",
    )
    missing = missing_translations(tmp_path)
    assert {(k.msgid, k.context, k.plural) for k in missing} == {
        ("余额", None, None),
        ("开", "开关", None),
        ("%(n)d 个应用", None, "%(n)d 个应用"),
    }
    # when the --json skeleton is filled in and added with scripts/po_add.py
    pairs = {key.msgid: pairs_entry(key) for key in missing}
    pairs["余额"] = "Balance"
    pairs["开"]["text"] = "On"
    pairs["%(n)d 个应用"]["text"] = ["%(n)d app", "%(n)d apps"]
    (tmp_path / "pairs.json").write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
    po = tmp_path / "billing" / "locale" / "en" / "LC_MESSAGES" / "django.po"
    _po_add().main(str(po), str(tmp_path / "pairs.json"))
    # then nothing is missing and the plural keeps its placeholder
    assert missing_translations(tmp_path) == {}
    assert placeholder_mismatches(tmp_path) == []
    # and a later run corrects an existing translation rather than keeping the old one
    (tmp_path / "fix.json").write_text(json.dumps({"余额": "Balance due"}), encoding="utf-8")
    _po_add().main(str(po), str(tmp_path / "fix.json"))
    assert english_catalogues(tmp_path)["billing"][Key(msgid="余额")] == "Balance due"


def _po_add():
    spec = importlib.util.spec_from_file_location(
        "po_add", Path(django_settings.BASE_DIR) / "scripts" / "po_add.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_chinese_msgid_in_code_and_templates_has_an_english_translation():
    missing = missing_translations()
    listing = "\n".join(
        f"  [{found.app}] {key}  ({', '.join(found.locations[:2])})" for key, found in missing.items()
    )
    assert not missing, (
        f"{len(missing)} msgid(s) without English; add them to <app>/locale/en/LC_MESSAGES/django.po "
        f"(manage.py catalog_check --json DIR, then scripts/po_add.py):\n{listing}"
    )


def test_english_translations_keep_the_msgids_placeholders():
    bad = placeholder_mismatches()
    assert not bad, "\n".join(f"[{app}] {key} -> {msgstr!r}" for app, key, msgstr in bad)


# --- pages in English ----------------------------------------------------------------------------

# Language names are shown in their own language in the switch (简体中文 for Chinese readers).
NATIVE_LANGUAGE_NAMES = {"简体中文"}
VISIBLE_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-confirm"}


class _VisibleText(HTMLParser):
    """Text a reader sees: text nodes and labelling attributes, not scripts or JSON data."""

    def __init__(self):
        super().__init__()
        self.chunks = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in {"script", "style"}:
            self._hidden += 1
        attrs = dict(attrs)
        # An <input type=submit>'s value is its label; a <button>'s value is only posted.
        is_input_button = tag == "input" and attrs.get("type") in {"submit", "button"}
        shown = VISIBLE_ATTRIBUTES | ({"value"} if is_input_button else set())
        self.chunks.extend(attrs[name] for name in shown if attrs.get(name))

    def handle_endtag(self, tag):
        if tag in {"script", "style"}:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.chunks.append(data)


def chinese_in_page(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    return [
        chunk.strip()
        for chunk in parser.chunks
        if CJK.search(chunk) and chunk.strip() not in NATIVE_LANGUAGE_NAMES
    ]


@pytest.fixture(scope="module")
def _compiled_catalogues():
    call_command("compile_catalogs", verbosity=0)


@pytest.fixture
def english(client, settings, _compiled_catalogues):
    """A client whose user picked English (the switch's cookie); translations reloaded from the
    freshly compiled .mo files (changing LOCALE_PATHS makes Django drop its cached catalogues)."""
    settings.LOCALE_PATHS = list(django_settings.LOCALE_PATHS)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def english_page(client, url):
    resp = client.get(url)
    assert resp.status_code == 200, resp.status_code
    html = resp.content.decode()
    assert 'lang="en"' in html
    return html


@pytest.mark.django_db
def test_without_the_english_choice_the_same_page_reads_in_chinese(client, _compiled_catalogues):
    """The page check is not blind: the default zh-hans wallet page is full of Chinese chrome."""
    member = main_member(OrganizationFactory(name="Galaxy ISV", kind="service_provider"))
    client.force_login(member.user)
    html = client.get(reverse("billing:wallet")).content.decode()
    assert 'lang="zh-hans"' in html and "钱包" in chinese_in_page(html)


@pytest.mark.django_db
def test_developer_pages_read_in_english(english):
    member = main_member(OrganizationFactory(name="Galaxy ISV", kind="service_provider"))
    member.user.display_name = "Ada"
    member.user.save()
    # a settled month the balance cannot cover: the ledger has a row and the FEE-6.2 banner shows
    wallet_charge_for_month(organization_id=member.organization_id, year=2024, month=3, amount_fen=123)
    english.force_login(member.user)
    for name in ("dashboard", "notifications", "billing:wallet", "billing:bills", "billing:invoices"):
        html = english_page(english, reverse(name))
        assert chinese_in_page(html) == [], name
    assert "Your account is in arrears: ¥1.23" in english_page(english, reverse("billing:wallet"))


@pytest.mark.django_db
def test_shop_grant_and_gift_pages_read_in_english(english):
    member = main_member(OrganizationFactory(name="Global Goods", kind="shop"))
    member.user.display_name = "Bo"
    member.user.save()
    today = clock.today()
    creator = CreatorFactory(nickname="Luna", user=UserFactory(display_name="Luna"))
    GrantFactory(
        creator=creator,
        organization=member.organization,
        start_date=today - dt.timedelta(days=3),
        end_date=today + dt.timedelta(days=20),
    )
    gifts = [
        approved_gift(
            shop=member.organization,
            name=name,
            brand="Lancome",
            kind="skincare",
            category=CategoryFactory(name="Skincare"),
        )
        for name in ("Travel cream", "Eye mask")
    ]
    product = ProductFactory(shop=member.organization, title="Night serum", subtitle="Bonded")
    for gift in gifts:  # the product list joins its gifts with a separator
        ProductGift.objects.create(product=product, gift=gift, attached_by=member.user)
    english.force_login(member.user)
    for name in ("authorization:org-grants", "authorization:live-rooms", "gifts:gift-list", "gifts:products"):
        html = english_page(english, reverse(name))
        assert chinese_in_page(html) == [], name
    assert "Luna" in english_page(english, reverse("authorization:org-grants"))
    assert "Eye mask, Travel cream" in english_page(english, reverse("gifts:products"))


@pytest.mark.django_db
def test_sign_in_page_reads_in_english(english):
    html = english_page(english, reverse("login"))
    assert chinese_in_page(html) == []
