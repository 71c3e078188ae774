"""Staff groups with least privilege (P-4). Each group gets the permissions of its own domain
app only; models an app adds later get their permissions granted by that app's migrations
calling ``grant_app_permissions``.
"""

from django.db import migrations

GROUPS = {
    "billing-ops": ["billing"],
    "grant-ops": ["authorization"],
    "gift-reviewers": ["gifts"],
}
# Everyone on staff may read the parties they work with, never edit them.
SHARED_VIEW = ["view_organization", "view_membership", "view_creator", "view_auditentry"]


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, app_labels in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        perms = Permission.objects.filter(content_type__app_label__in=app_labels) | Permission.objects.filter(
            content_type__app_label="portal", codename__in=SHARED_VIEW
        )
        group.permissions.add(*perms)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_groups, remove_groups)]
