from portal.extensions import collect
from portal.selectors import dashboard_roles, membership_list_for_user


def portal(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = getattr(request, "active_membership", None)
    return {
        "active_membership": membership,
        "memberships": membership_list_for_user(user=user),
        "roles": dashboard_roles(user=user, membership=membership),
        "nav_items": collect("nav", request),
    }
