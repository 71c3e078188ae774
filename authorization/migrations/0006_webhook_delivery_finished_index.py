"""The partial index the daily prune of finished webhook deliveries reads (by finished_at).

Built CONCURRENTLY (so outside a transaction): the table is the one that grew unpruned, and a
plain CREATE INDEX would block the delivery task's writes for as long as the build takes.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("authorization", "0005_grant_ops_delivery_permissions"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="webhookdelivery",
            index=models.Index(
                condition=models.Q(("status__in", ("delivered", "failed"))),
                fields=["finished_at"],
                name="authz_delivery_finished",
            ),
        ),
    ]
