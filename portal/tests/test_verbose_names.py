"""Admin column headers and form labels come from the model fields' verbose names: a field
without one shows its raw English name ("organization", "created at") to staff reading the
admin in Chinese, and a Chinese one left out of the English catalogue stays Chinese in English."""

import pytest
from django.apps import apps
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from portal.management.commands.catalog_check import CJK
from portal.tests.factories import UserFactory

APPS = ("portal", "billing", "authorization", "gifts")


def _models():
    for app in APPS:
        yield from apps.get_app_config(app).get_models()


def _labelled_fields():
    """Every field staff can see as a column or a form input: concrete, and not one Django adds
    by itself (the automatic id, reverse relations)."""
    for model in _models():
        for field in model._meta.get_fields():
            if getattr(field, "concrete", False) and not field.auto_created:
                yield f"{model._meta.label}.{field.name}", field


def test_every_admin_column_and_form_label_is_named_rather_than_the_raw_field_name():
    # given every model field of the four apps, in the language staff read the admin in
    with translation.override(settings.LANGUAGE_CODE):
        unnamed = [
            label
            for label, field in _labelled_fields()
            if str(field.verbose_name) == field.name.replace("_", " ")
        ]
    # then each has a verbose name of its own, not the one Django derives from the field name
    assert not unnamed, (
        f"{len(unnamed)} field(s) show their raw name in the admin; give each a verbose_name, "
        'e.g. models.DateTimeField(_("创建时间"), ...):\n  ' + "\n  ".join(unnamed)
    )


def test_every_admin_column_and_form_label_reads_in_english_for_an_english_user():
    # given every model field's verbose name as written in the code (the Chinese msgid)
    with translation.override(None):  # no catalogue: gettext returns the msgid
        sources = {label: str(field.verbose_name) for label, field in _labelled_fields()}
    # when the admin is shown in English
    with translation.override("en"):
        english = {label: str(field.verbose_name) for label, field in _labelled_fields()}
    # then no label is still Chinese: either translated, or English to begin with
    untranslated = [
        f"{label}: {source}"
        for label, source in sources.items()
        if CJK.search(source) and english[label] == source
    ]
    assert not untranslated, (
        f"{len(untranslated)} field label(s) stay Chinese in English; wrap them in gettext_lazy and "
        "add them to the English catalogue (manage.py catalog_check --json DIR, then "
        "scripts/po_add.py):\n  " + "\n  ".join(untranslated)
    )


def test_every_model_reads_singular_for_one_object_and_plural_for_the_list_in_english():
    # given every model's names in English, where Chinese uses one word for both (same msgid)
    with translation.override("en"):
        names = {
            model._meta.label: (str(model._meta.verbose_name), str(model._meta.verbose_name_plural))
            for model in _models()
        }
    # then "Add …" and "The … was added" name one object, the changelist title names many
    same = [
        f"{label}: {singular!r} / {plural!r}"
        for label, (singular, plural) in names.items()
        if singular.casefold() == plural.casefold()
    ]
    assert not same, (
        f"{len(same)} model(s) read the same in English for one object and for many; give the "
        "form the plain msgid does not translate a context of its own, e.g. verbose_name = "
        'pgettext_lazy("singular", "赠品") when "赠品" reads "Gifts", or verbose_name_plural = '
        'pgettext_lazy("plural", "商品") when "商品" reads "Product", and translate it in the '
        "English catalogue:\n  " + "\n  ".join(same)
    )


def test_every_relation_to_one_object_is_labelled_in_the_singular_in_english():
    # given every foreign key and one-to-one field, in English
    with translation.override("en"):
        plural = []
        for label, field in _labelled_fields():
            if not (field.many_to_one or field.one_to_one):
                continue
            text = str(field.verbose_name).casefold()
            target = field.related_model._meta
            # then its column header names the one object it holds: the target's singular, or a
            # label of its own ("Shop", "Created by"), never the target's plural
            if text == str(target.verbose_name_plural).casefold() != str(target.verbose_name).casefold():
                plural.append(f"{label}: {field.verbose_name!s} (the plural of {target.label})")
    assert not plural, (
        f"{len(plural)} field(s) holding one object are labelled in the plural in English; use "
        'verbose_name=pgettext_lazy("singular", "<msgid>"):\n  ' + "\n  ".join(plural)
    )


ADMIN_NAMES = {
    "zh-hans": ["开放平台运营后台", "计费", "门户", "全球购赠品", "数据授权"],
    "en": ["Open platform back office", "Billing", "Portal", "Cross-border gifts", "Data grants"],
}


@pytest.mark.django_db
@pytest.mark.parametrize(("language", "other"), [("zh-hans", "en"), ("en", "zh-hans")])
def test_the_admin_names_itself_and_its_sections_in_the_staff_members_language(client, language, other):
    client.force_login(UserFactory(is_staff=True, is_superuser=True, language=language))
    html = client.get(reverse("admin:index")).content.decode()
    assert [text for text in ADMIN_NAMES[language] if text not in html] == []
    assert [text for text in ADMIN_NAMES[other] if text in html] == []
