"""Admin column headers and form labels come from the model fields' verbose names: a field
without one shows its raw English name ("organization", "created at") to staff reading the
admin in Chinese, and a Chinese one left out of the English catalogue stays Chinese in English."""

from django.apps import apps
from django.conf import settings
from django.utils import translation

from portal.management.commands.catalog_check import CJK

APPS = ("portal", "billing", "authorization", "gifts")


def _labelled_fields():
    """Every field staff can see as a column or a form input: concrete, and not one Django adds
    by itself (the automatic id, reverse relations)."""
    for app in APPS:
        for model in apps.get_app_config(app).get_models():
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
