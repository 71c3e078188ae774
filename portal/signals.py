"""Cache coherence for Api-Key authentication (``portal.api_auth``).

A key's cache entry carries the organization's main membership and its user. When either
changes — the main account handed to another member, a membership removed, the main user
deactivated — the organization's entries are dropped after the commit, so the next call with
its keys reloads them (and a deactivated user's key is refused) instead of acting as the old
main account until the entry's TTL.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from portal.api_auth import key_cache_forget_organization, key_cache_mark_revoked
from portal.models import ApiKey, Membership


def _forget_after_commit(organization_id: int) -> None:
    transaction.on_commit(lambda: key_cache_forget_organization(organization_id))


@receiver(post_save, sender=ApiKey, dispatch_uid="portal.apikey.saved")
@receiver(post_delete, sender=ApiKey, dispatch_uid="portal.apikey.deleted")
def _api_key_changed(sender, instance: ApiKey, **kwargs):
    """A key revoked, deleted or moved in admin (not through ``api_key_revoke``) is refused or
    reloaded on the next call too, not after the cache entry's TTL."""
    prefix, organization_id = instance.prefix, instance.organization_id
    if instance.revoked_at is not None or kwargs.get("signal") is post_delete:
        transaction.on_commit(lambda: key_cache_mark_revoked(prefix))
    else:
        _forget_after_commit(organization_id)


@receiver(post_save, sender=Membership, dispatch_uid="portal.apikey.membership_saved")
@receiver(post_delete, sender=Membership, dispatch_uid="portal.apikey.membership_deleted")
def _membership_changed(sender, instance: Membership, **kwargs):
    _forget_after_commit(instance.organization_id)


@receiver(post_save, sender=get_user_model(), dispatch_uid="portal.apikey.user_saved")
def _user_changed(sender, instance, created=False, update_fields=None, **kwargs):
    if created or (update_fields is not None and set(update_fields) <= {"last_login", "language"}):
        return  # a new user is nobody's main account yet; a login or a language changes nothing cached
    for organization_id in Membership.objects.filter(user=instance, role=Membership.Role.MAIN).values_list(
        "organization_id", flat=True
    ):
        _forget_after_commit(organization_id)


@receiver(user_logged_in, dispatch_uid="portal.language.logged_in")
def _language_at_sign_in(sender, request, user, **kwargs):
    """A user with no stored language yet keeps (and stores) the one this browser's switch
    picked; from then on pages follow ``User.language`` on any browser."""
    if user.language or request is None:
        return
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if chosen in dict(settings.LANGUAGES):
        from portal.services import user_language_set

        user_language_set(user=user, language=chosen)
