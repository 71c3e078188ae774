"""FEE-2.1: give every API still without a tier history row in force from 2000-01-01 one.

Such an API was inserted around ``api_create`` (shell, raw SQL) or lost its first row since
0012. Until now, settlement, the gate and the pages read a day before an API's first row by
its current tier (``Api.tier``); the row added here carries that same tier from 2000-01-01, so
no day's tier changes and no settled month reads differently. Migration 0017's triggers keep
it so from now on.
"""

import datetime as dt

from django.db import migrations
from django.db.models import Exists, OuterRef

START = dt.date(2000, 1, 1)  # billing.models.TIER_HISTORY_START, frozen here


def backfill(apps, schema_editor):
    Api = apps.get_model("billing", "Api")
    ApiTierChange = apps.get_model("billing", "ApiTierChange")
    covered = ApiTierChange.objects.filter(api=OuterRef("pk"), effective_from__lte=START)
    ApiTierChange.objects.bulk_create(
        [
            ApiTierChange(api_id=pk, tier=tier, effective_from=START)
            for pk, tier in Api.objects.exclude(Exists(covered)).values_list("pk", "tier")
        ]
    )


def keep(apps, schema_editor):
    pass  # the rows added are the APIs' history now; 0017's triggers would refuse removing them


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0017_api_tier_history_required"),
    ]

    operations = [
        migrations.RunPython(backfill, keep),
    ]
