"""GRANT-11 webhooks set by the organization's main account: secret rotation time and the
record of deliveries the settings page lists."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("authorization", "0003_grant_list_keyset_indexes"),
        ("portal", "0002_staff_groups"),
    ]

    operations = [
        migrations.AddField(
            model_name="organizationwebhook",
            name="secret_rotated_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="密钥生成时间"),
        ),
        migrations.AddField(
            model_name="organizationwebhook",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
        migrations.CreateModel(
            name="WebhookDelivery",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("event", models.CharField(max_length=50, verbose_name="事件")),
                ("payload", models.JSONField()),
                ("url", models.URLField(blank=True, max_length=500, verbose_name="回调地址")),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "发送中"), ("delivered", "已送达"), ("failed", "失败")],
                        default="pending",
                        max_length=20,
                        verbose_name="状态",
                    ),
                ),
                ("attempts", models.PositiveIntegerField(default=0, verbose_name="尝试次数")),
                (
                    "response_status",
                    models.PositiveIntegerField(blank=True, null=True, verbose_name="响应状态码"),
                ),
                ("error", models.CharField(blank=True, max_length=300, verbose_name="错误")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="portal.organization",
                    ),
                ),
            ],
            options={
                "verbose_name": "回调发送记录",
                "verbose_name_plural": "回调发送记录",
                "indexes": [
                    models.Index(fields=["organization", "-created_at", "-id"], name="authz_delivery_org")
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("status__in", ["pending", "delivered", "failed"])),
                        name="authorization_delivery_status_valid",
                    )
                ],
            },
        ),
    ]
