"""Reads shared by pages, API and admin, always scoped by the acting party."""

from django.db.models import Q, QuerySet

from portal.errors import DomainError
from portal.models import ApiKey, Membership, Notification, Organization


def membership_active_for_user(*, user, org_id=None) -> Membership | None:
    qs = Membership.objects.select_related("organization").filter(user=user).order_by("id")
    if org_id is not None:
        chosen = qs.filter(organization_id=org_id).first()
        if chosen is not None:
            return chosen
    return qs.first()


def membership_list_for_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.select_related("organization").filter(user=user).order_by("id")


def organization_search(
    *, query: str, kinds: list[str] | None = None, limit: int = 20
) -> QuerySet[Organization]:
    """Name search for pickers (GRANT-2 and others). Served by the trigram GIN index."""
    qs = Organization.objects.all()
    if kinds:
        qs = qs.filter(kind__in=kinds)
    query = (query or "").strip()
    if "\x00" in query:
        # PostgreSQL refuses NUL in text; pages that pass a raw ?q= get a 400, not a 500.
        raise DomainError("invalid", "The search text contains a NUL character.", field="q")
    if query:
        qs = qs.filter(name__icontains=query)
    return qs.order_by("name", "id")[:limit]


def notification_list_for_user(*, user, membership: Membership | None) -> QuerySet[Notification]:
    cond = Q(user=user)
    if membership is not None:
        cond |= Q(user__isnull=True, organization_id=membership.organization_id)
    return Notification.objects.filter(cond).order_by("-created_at", "-id")


def notification_list_for_organization(*, organization_id: int) -> QuerySet[Notification]:
    """Notices addressed to the organization as a whole (what an Api-Key may read)."""
    return Notification.objects.filter(user__isnull=True, organization_id=organization_id).order_by(
        "-created_at", "-id"
    )


def dashboard_roles(*, user, membership: Membership | None) -> list[str]:
    """Which dashboard sections a user sees: developer, creator, shop_main, shop_sub, agency."""
    roles = []
    if hasattr(user, "creator"):
        roles.append("creator")
    if membership is not None:
        org = membership.organization
        if org.kind == Organization.Kind.SERVICE_PROVIDER or _has_apps(org):
            roles.append("developer")
        if org.kind == Organization.Kind.SHOP:
            roles.append("shop_main" if membership.is_main else "shop_sub")
        if org.kind == Organization.Kind.AGENCY:
            roles.append("agency")
    return roles


def _has_apps(org: Organization) -> bool:
    # Shops that build their own tools are developers too (FEE-3.1); billing.App's
    # related_name is "apps". Portal must not import billing, so it looks it up by name.
    apps = getattr(org, "apps", None)
    return apps is not None and apps.exists()


def api_key_list(*, membership: Membership) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(organization_id=membership.organization_id).order_by("-created_at")
