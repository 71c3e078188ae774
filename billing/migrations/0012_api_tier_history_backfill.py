"""Give every existing API one tier history row: its current tier, from before any usage.

Until now an API's tier had no history, so its current tier is the only one known; it is in
force from 2000-01-01 (``TIER_HISTORY_START``), before any usage, as settlement assumed.
"""

import datetime as dt

from django.db import migrations

START = dt.date(2000, 1, 1)  # billing.models.TIER_HISTORY_START, frozen here


def backfill(apps, schema_editor):
    Api = apps.get_model("billing", "Api")
    ApiTierChange = apps.get_model("billing", "ApiTierChange")
    ApiTierChange.objects.bulk_create(
        [
            ApiTierChange(api_id=pk, tier=tier, effective_from=START)
            for pk, tier in Api.objects.values_list("pk", "tier")
        ],
        ignore_conflicts=True,
    )


def unbackfill(apps, schema_editor):
    apps.get_model("billing", "ApiTierChange").objects.filter(effective_from=START).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_api_tier_history"),
    ]

    operations = [
        migrations.RunPython(backfill, unbackfill),
    ]
