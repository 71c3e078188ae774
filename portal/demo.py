"""Demo parties for ``manage.py seed_demo``. Idempotent: keyed by username and org name."""

from django.contrib.auth.models import Group
from django.db import transaction

from portal.models import Creator, Membership, Organization, User
from portal.permissions import staff_groups_ensure

DEMO_PASSWORD = "demo-pass-2026"  # demo data only; printed by seed_demo

ORGS = {
    "provider": ("星河软件服务商 Galaxy ISV", Organization.Kind.SERVICE_PROVIDER),
    "shop": ("跨境好物旗舰店 Global Goods", Organization.Kind.SHOP),
    "shop2": ("美妆全球购 Beauty Global", Organization.Kind.SHOP),
    "agency": ("星光MCN机构 Starlight MCN", Organization.Kind.AGENCY),
}
# username: (display name, org key, role, description)
MEMBERS = {
    "dev": ("开发者小王", "provider", "main", "developer (service provider, main account)"),
    "dev_sub": ("开发者小李", "provider", "sub", "developer (service provider, sub-account)"),
    "shop": ("好物店主", "shop", "main", "shop main account"),
    "shop_sub": ("好物店员", "shop", "sub", "shop sub-account"),
    "shop2": ("美妆店主", "shop2", "main", "second shop main account"),
    "agency": ("星光运营", "agency", "main", "agency member (main)"),
    "agency_sub": ("星光助理", "agency", "sub", "agency member (sub)"),
}
CREATORS = {
    "creator": ("小鹿带货", "xiaolu_live", "creator"),
    "creator2": ("阿杰好物", "ajie_haowu", "creator"),
}
STAFF = {
    "admin": ("超级管理员", None, "superuser"),
    "billing_ops": ("计费运营", "billing-ops", "staff: billing-ops"),
    "grant_ops": ("授权运营", "grant-ops", "staff: grant-ops"),
    "gift_reviewer": ("赠品审核", "gift-reviewers", "staff: gift-reviewers"),
}


def _user(username: str, display_name: str, **extra) -> User:
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"display_name": display_name, "email": f"{username}@example.com", **extra},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


@transaction.atomic
def seed() -> list[tuple[str, str]]:
    """Create the demo parties; return (username, description) for the printed logins."""
    staff_groups_ensure()
    logins = []
    orgs = {}
    for key, (name, kind) in ORGS.items():
        orgs[key], _ = Organization.objects.get_or_create(
            name=name, defaults={"kind": kind, "contact_email": f"{key}@example.com"}
        )
    for username, (display, org_key, role, desc) in MEMBERS.items():
        user = _user(username, display)
        Membership.objects.get_or_create(user=user, organization=orgs[org_key], defaults={"role": role})
        logins.append((username, desc))
    for username, (nickname, douyin_id, desc) in CREATORS.items():
        user = _user(username, nickname)
        Creator.objects.get_or_create(user=user, defaults={"nickname": nickname, "douyin_id": douyin_id})
        logins.append((username, desc))
    for username, (display, group, desc) in STAFF.items():
        extra = {"is_staff": True, "is_superuser": group is None}
        user = _user(username, display, **extra)
        if group:
            user.groups.add(Group.objects.get(name=group))
        logins.append((username, desc))
    return logins


def organization(key: str) -> Organization:
    return Organization.objects.get(name=ORGS[key][0])


def user(username: str) -> User:
    return User.objects.get(username=username)
