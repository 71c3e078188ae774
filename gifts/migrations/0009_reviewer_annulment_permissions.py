"""gift-reviewers get the permissions of violation annulments (the model added by 0008), as of
every other model of the app (P-4); the admin shows them read-only."""

from django.db import migrations

from portal.permissions import grant_app_permissions

CODENAMES = [f"{action}_violationannulment" for action in ("add", "change", "delete", "view")]


def forwards(apps, schema_editor):
    grant_app_permissions(apps, group="gift-reviewers", app_label="gifts", codenames=CODENAMES)


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="gift-reviewers").first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="gifts", codename__in=CODENAMES)
        )


class Migration(migrations.Migration):
    dependencies = [("gifts", "0008_violation_annulment"), ("portal", "0002_staff_groups")]

    operations = [migrations.RunPython(forwards, backwards)]
