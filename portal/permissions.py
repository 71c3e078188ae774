"""Least-privilege staff groups (P-4). A domain app whose migration adds models grants its
group their permissions with a data migration calling ``grant_app_permissions``:

    def forwards(apps, schema_editor):
        grant_app_permissions(apps, group="billing-ops", app_label="billing")
"""


def grant_app_permissions(apps, *, group: str, app_label: str, codenames: list[str] | None = None) -> None:
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    grp, _ = Group.objects.get_or_create(name=group)
    perms = Permission.objects.filter(content_type__app_label=app_label)
    if codenames is not None:
        perms = perms.filter(codename__in=codenames)
    grp.permissions.add(*perms)
