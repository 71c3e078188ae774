"""Key-based authentication for machine clients: ``Authorization: Api-Key <prefix>.<secret>``.

The request's user is the organization's main account (so object permissions are the
organization's), and ``request.auth`` is the ApiKey row.

A key is resolved with one cache read when warm, through ``portal.hotcache`` (from process
memory while the entry is unchanged; Redis pushes a change to every process that read it).
Per prefix we cache the key's hash, its revoked flag, the key row and the organization's main
membership (with user and organization), loaded in one query on a miss, for
``KEY_CACHE_TTL`` seconds. The secret is still compared with ``hmac.compare_digest`` on every
call. ``api_key_revoke`` overwrites the entry with a revoked marker after commit
(``key_cache_mark_revoked``), so a revoked key is refused on the very next call; fills use
``cache.add``, so a concurrent miss that read the row before the revocation committed cannot
put the live entry back.
"""

import hmac

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from portal import hotcache
from portal.models import ApiKey, Membership, Organization

KEY_CACHE_TTL = 60  # seconds; also bounds how long a change of main account goes unseen
_REVOKED = {"revoked": True}


def _key_cache_key(prefix: str) -> str:
    return f"portal:apikey:{prefix}"


def key_cache_mark_revoked(prefix: str) -> None:
    """After the revoking commit: the next call with this key is refused without a query."""
    hotcache.set(_key_cache_key(prefix), _REVOKED, KEY_CACHE_TTL)


def key_cache_forget_organization(organization_id: int) -> None:
    """After a change of the organization's main membership or its user (``portal.signals``):
    the next call with any of its keys reloads the entry."""
    prefixes = ApiKey.objects.filter(organization_id=organization_id).values_list("prefix", flat=True)
    hotcache.delete_many([_key_cache_key(p) for p in prefixes])


def _columns(obj, *, exclude: tuple[str, ...] = ()) -> dict:
    """The row's column values: the cached entry holds plain values, not pickled models, so a
    warm read is cheap to decode and the hot path needs no model instances at all."""
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if f.attname not in exclude}


def _load(prefix: str) -> dict | None:
    """One query: the key's columns joined to its organization's main membership + user."""
    main = (
        Membership.objects.select_related("user", "organization")
        .defer("user__password")  # the entry lives in Redis: no password hash in it
        .filter(organization__api_keys__prefix=prefix, role=Membership.Role.MAIN)
        .annotate(
            k_id=F("organization__api_keys__id"),
            k_name=F("organization__api_keys__name"),
            k_hash=F("organization__api_keys__key_hash"),
            k_created_by=F("organization__api_keys__created_by_id"),
            k_created_at=F("organization__api_keys__created_at"),
            k_revoked_at=F("organization__api_keys__revoked_at"),
        )
        .first()
    )
    if main is None:  # unknown prefix, or an organization without a main account
        return None
    if main.k_revoked_at is not None:
        return _REVOKED
    return {
        "revoked": False,
        "hash": main.k_hash,
        "organization_id": main.organization_id,
        "user_active": main.user.is_active,
        "key": {
            "id": main.k_id,
            "organization_id": main.organization_id,
            "name": main.k_name,
            "prefix": prefix,
            "key_hash": main.k_hash,
            "created_by_id": main.k_created_by,
            "created_at": main.k_created_at,
            "revoked_at": None,
        },
        "membership": _columns(main),
        "user": _columns(main.user, exclude=("password",)),
        "organization": _columns(main.organization),
    }


def _instance(model, columns: dict):
    """A model instance as if loaded from the database (missing columns deferred)."""
    names = list(columns)
    return model.from_db("default", names, [columns[n] for n in names])


def _checked_entry(header: str) -> dict | None:
    """The cached entry of a valid ``Api-Key <raw>`` header; None if not an Api-Key header.

    Raises AuthenticationFailed for an unknown, revoked or wrong key, or when the
    organization's main account is deactivated.
    """
    if not header.startswith(ApiKeyAuthentication.keyword + " "):
        return None
    raw = header[len(ApiKeyAuthentication.keyword) + 1 :].strip()
    prefix = raw.split(".", 1)[0]
    if not prefix or len(prefix) > ApiKey.PREFIX_LEN:
        raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
    ckey = _key_cache_key(prefix)
    entry = hotcache.get(ckey)
    if entry is None:
        entry = _load(prefix)
        if entry is not None:
            cache.add(ckey, entry, KEY_CACHE_TTL)
    if (
        entry is None
        or entry["revoked"]
        or not hmac.compare_digest(entry["hash"], ApiKey.hash(raw))
        or not entry["user_active"]  # the organization's main account was deactivated
    ):
        raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
    return entry


def api_key_organization_id(header: str) -> int | None:
    """The hot path's resolution: the organization a valid key acts for (as its main account),
    without building any model instance; None if not an Api-Key header. Raises like
    ``api_key_resolve``."""
    entry = _checked_entry(header)
    return None if entry is None else entry["organization_id"]


def api_key_resolve(header: str) -> tuple[Membership, ApiKey] | None:
    """``Api-Key <raw>`` → (main membership, key); None if not an Api-Key header.

    Raises AuthenticationFailed for an unknown, revoked or wrong key. Fresh instances on every
    call, so nothing a request does to them reaches another request.
    """
    entry = _checked_entry(header)
    if entry is None:
        return None
    organization = _instance(Organization, entry["organization"])
    main = _instance(Membership, entry["membership"])
    main.user = _instance(get_user_model(), entry["user"])
    main.organization = organization
    key = _instance(ApiKey, entry["key"])
    key.organization = organization
    return main, key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        resolved = api_key_resolve(header)
        if resolved is None:
            return None
        main, key = resolved
        request.api_key_used_at = timezone.now()
        request.active_membership = main
        return main.user, key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Api-Key <key>"}
