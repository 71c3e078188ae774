"""Data: the gift-reviewers group gets the gifts app's permissions (P-4), and the gift rules'
first version, effective 2022-07-01 (GIFT-6.2), exists in every database.
"""

import datetime

from django.db import migrations

from portal.permissions import grant_app_permissions


def forwards(apps, schema_editor):
    grant_app_permissions(apps, group="gift-reviewers", app_label="gifts")
    RuleVersion = apps.get_model("gifts", "RuleVersion")
    RuleVersion.objects.get_or_create(
        code="GIFT",
        version="2022-07-01",
        defaults={"title": "【全球购】赠品管理规范", "effective_from": datetime.date(2022, 7, 1)},
    )


def backwards(apps, schema_editor):
    RuleVersion = apps.get_model("gifts", "RuleVersion")
    RuleVersion.objects.filter(code="GIFT", version="2022-07-01", violations__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("gifts", "0001_initial"),
        ("portal", "0002_staff_groups"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
