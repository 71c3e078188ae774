"""billing-ops staff get the permissions of the billing models (P-4: least privilege)."""

from django.db import migrations

from portal.permissions import grant_app_permissions


def forwards(apps, schema_editor):
    grant_app_permissions(apps, group="billing-ops", app_label="billing")


def backwards(apps, schema_editor):
    pass  # permissions are left in place; the group existed before this migration


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_usage_hourly_partitioned"), ("portal", "0002_staff_groups")]

    operations = [migrations.RunPython(forwards, backwards)]
