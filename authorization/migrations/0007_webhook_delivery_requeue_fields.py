"""Bookkeeping of the sweeper that re-queues webhook deliveries the broker lost: when a row was
last re-queued and how many times. Nullable / a constant default: no table rewrite."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("authorization", "0006_webhook_delivery_finished_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="requeued_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="重新排队时间"),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="requeues",
            field=models.PositiveIntegerField(default=0, verbose_name="重新排队次数"),
        ),
    ]
