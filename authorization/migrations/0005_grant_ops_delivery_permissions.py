"""grant-ops may see webhook deliveries (the model added by 0004), as with every other model
of the app (P-4)."""

from django.db import migrations

from portal.permissions import grant_app_permissions


def forwards(apps, schema_editor):
    grant_app_permissions(
        apps, group="grant-ops", app_label="authorization", codenames=["view_webhookdelivery"]
    )


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="grant-ops").first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="authorization", codename="view_webhookdelivery"
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("authorization", "0004_webhook_settings"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
