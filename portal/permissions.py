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


STAFF_GROUPS = {"billing-ops": "billing", "grant-ops": "authorization", "gift-reviewers": "gifts"}
SHARED_VIEW = ["view_organization", "view_membership", "view_creator", "view_auditentry"]


def staff_groups_ensure() -> None:
    """(Re)create the staff groups with least privilege from the live models.

    The data migration creates them once; this makes seed_demo self-sufficient on a database
    whose rows were flushed (transactional tests do that), and picks up models added since.
    """
    from django.apps import apps as live_apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    for app_config in live_apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for name, app_label in STAFF_GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        own = Permission.objects.filter(content_type__app_label=app_label)
        shared = Permission.objects.filter(content_type__app_label="portal", codename__in=SHARED_VIEW)
        group.permissions.add(*own, *shared)
