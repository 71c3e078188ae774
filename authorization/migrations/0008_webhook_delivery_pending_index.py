"""The partial index the sweeper of lost webhook deliveries reads: pending rows by when they
were last queued (``COALESCE(requeued_at, created_at)``, the expression it filters on).

Built CONCURRENTLY (so outside a transaction), as 0006: the delivery task writes this table
all day and a plain CREATE INDEX would block it for the whole build.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models.functions import Coalesce


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("authorization", "0007_webhook_delivery_requeue_fields"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="webhookdelivery",
            index=models.Index(
                Coalesce("requeued_at", "created_at"),
                condition=models.Q(("status", "pending")),
                name="authz_delivery_pending_queued",
            ),
        ),
    ]
