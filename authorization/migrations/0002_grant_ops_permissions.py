"""grant-ops gets the permissions of the authorization models (P-4, least privilege)."""

from django.db import migrations

from portal.permissions import grant_app_permissions


def forwards(apps, schema_editor):
    grant_app_permissions(apps, group="grant-ops", app_label="authorization")


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="grant-ops").first()
    if group is not None:
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="authorization"))


class Migration(migrations.Migration):
    dependencies = [
        ("authorization", "0001_grants"),
        ("portal", "0002_staff_groups"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
