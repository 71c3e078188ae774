"""GRANT-7/8 keyset pages: the organization's list index on (organization, LIST_END, id).

Built CONCURRENTLY (the grant table is large and written by every grant operation), so the
migration is not atomic; the new index exists before the old one is dropped.
"""

import datetime

import django.db.models.functions.comparison
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


def _list_end():
    return django.db.models.functions.comparison.Coalesce(
        "end_date", models.Value(datetime.date(9999, 12, 31)), output_field=models.DateField()
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("authorization", "0002_grant_ops_permissions"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="grant",
            index=models.Index(
                models.F("organization"),
                _list_end(),
                models.F("id"),
                condition=models.Q(("is_current", True)),
                name="authz_grant_org_keyset",
            ),
        ),
        AddIndexConcurrently(
            model_name="grant",
            index=models.Index(
                models.F("organization"),
                _list_end(),
                models.F("id"),
                condition=models.Q(("is_current", True), ("scope", "live_room")),
                name="authz_grant_org_rooms",
            ),
        ),
        RemoveIndexConcurrently(model_name="grant", name="authz_grant_org_list"),
    ]
