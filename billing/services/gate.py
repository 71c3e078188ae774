"""The gate (FEE-3.1(1), FEE-6.1): may this app call this API from this location, now?

Hot path. Static facts are cached in Redis with explicit invalidation by the services that
change them (admin goes through those services too):
- ``billing:gate:app:<app_key>`` → [app_id, organization_id] (or 0 for an unknown key);
  dropped when an app is created, rotated or deleted;
- ``billing:gate:api:<code>`` → [api_id, tier in force today, end] (or 0); dropped when a tier
  changes; ``end`` is the epoch second of the next scheduled tier change (00:00 Asia/Shanghai of
  its day) or null: from then on the entry is read again, so a change made "from tomorrow" is
  gated from midnight even when the midnight job that updates ``Api.tier`` runs late;
- ``billing:gate:perm:<app_key>:<code>`` → 1/0; dropped when a permission is granted or
  revoked. Keyed by the request's own names so all three facts come in one MGET.
All four facts (with Billing I's arrears key; the organization of an app key is memoised
per process: it never changes) come in one MGET through ``portal.hotcache``: served from
process memory while unchanged, and Redis pushes an invalidation to every process that read a
key when it changes, so a warm check makes no round trip at all and a change is still seen
on the next call. Writes and deletes go through ``django.core.cache``.
Arrears are read through Billing I's ``wallet_in_arrears`` selector, which caches at
``billing:arrears:<org>`` and is invalidated on every balance change, so a settlement charge
or a top-up is seen on the next call. Free APIs always pass and never touch the wallet.
"""

import datetime as dt
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.utils.translation import gettext as _

from billing.models import Api, App, Location, OutOfCloudPermission
from billing.selectors.metering import api_day_annotations
from portal import clock, hotcache

CACHE_SECONDS = 24 * 60 * 60  # invalidation is explicit; the TTL only bounds stale memory
OUT_OF_CLOUD = "FEE-3.1-OUT-OF-CLOUD"
ARREARS = "FEE-6.1-ARREARS"


def app_cache_key(app_key: str) -> str:
    return f"billing:gate:app:{app_key}"


def api_cache_key(code: str) -> str:
    return f"billing:gate:api:{code}"


def perm_cache_key(app_key: str, code: str) -> str:
    return f"billing:gate:perm:{app_key}:{code}"


def gate_invalidate_app(*, app_key: str) -> None:
    hotcache.delete_many([app_cache_key(app_key)])


def gate_invalidate_api(*, code: str) -> None:
    hotcache.delete_many([api_cache_key(code)])


def gate_invalidate_permission(*, app_key: str, code: str) -> None:
    hotcache.delete_many([perm_cache_key(app_key, code)])


@dataclass(frozen=True)
class GateDecision:
    allow: bool
    code: str | None = None
    message: str = ""
    tier: str | None = None


class UnknownTarget(Exception):
    def __init__(self, field: str):
        super().__init__(field)
        self.field = field


# app key → organization id, per process. An app never moves to another organization (the
# field is read-only in admin and no service changes it), so this needs no invalidation; it
# lets the arrears key join the facts' MGET: a warm check is one Redis round trip.
_app_org: dict[str, int] = {}


def _api_fact(api_code: str, now: float) -> list | int:
    """[api_id, tier in force today, epoch second of its next scheduled change or None], or 0.

    The tier in force is the API's latest tier-history row from today or before (``Api.tier``
    on a day before the history, which the database keeps from 2000-01-01), as settlement reads it.
    """
    today = clock.today(dt.datetime.fromtimestamp(now, dt.UTC))
    row = (
        Api.objects.filter(code=api_code)
        .annotate(**api_day_annotations(today))
        .values_list("id", "tier", "tier_today", "next_tier_from")
        .first()
    )
    if row is None:
        return 0
    api_id, tier, in_force, next_change = row
    return [api_id, in_force or tier, clock.start_of_day(next_change).timestamp() if next_change else None]


def _facts(app_key: str, api_code: str, now: float) -> tuple[list | int, list | int, int | None, object]:
    """(app, api, permission, cached arrears or None) from one MGET; misses are read from the
    database and cached (arrears misses are left to Billing I's selector). An API entry whose
    tier has a scheduled change that is now in force counts as a miss."""
    from billing.selectors.wallet import arrears_cache_key

    keys = [app_cache_key(app_key), api_cache_key(api_code), perm_cache_key(app_key, api_code)]
    org_hint = _app_org.get(app_key)
    if org_hint is not None:
        keys.append(arrears_cache_key(org_hint))
    got = hotcache.get_many(keys)
    app, api, perm = (got.get(k) for k in keys[:3])
    arrears = got.get(keys[3]) if org_hint is not None else None
    missing = {}
    if app is None:
        row = App.objects.filter(app_key=app_key).values_list("id", "organization_id").first()
        app = list(row) if row else 0
        missing[keys[0]] = app
    if api is None or (api and len(api) > 2 and api[2] is not None and now >= api[2]):
        api = _api_fact(api_code, now)
        missing[keys[1]] = api
    if perm is None and app and api:
        perm = int(OutOfCloudPermission.objects.filter(app_id=app[0], api_id=api[0]).exists())
        missing[keys[2]] = perm
    if missing:
        cache.set_many(missing, CACHE_SECONDS)
    if app:
        _app_org[app_key] = app[1]
    return app, api, perm, arrears


def _in_arrears(organization_id: int, cached) -> bool:
    """FEE-6.1 through Billing I's contract: its cached answer when the MGET brought it, else its
    selector (which reads the wallet and caches under the same key)."""
    if cached is not None:
        return bool(cached)
    from billing.selectors.wallet import wallet_in_arrears

    return wallet_in_arrears(organization_id=organization_id)


def gate_check(*, app_key: str, api: str, location: str, now: dt.datetime | None = None) -> GateDecision:
    """Decide one call (at ``now``, default the current time). Raises ``UnknownTarget`` for an
    unknown app key or API."""
    if location not in Location.values:
        raise ValueError("location")
    app, api_row, perm, arrears = _facts(app_key, api, now.timestamp() if now else time.time())
    if not app:
        raise UnknownTarget("app_key")
    if not api_row:
        raise UnknownTarget("api")
    _app_id, org_id = app
    tier = api_row[1]
    if tier == Api.Tier.FREE:
        return GateDecision(True, tier=tier)
    if tier == Api.Tier.VALUE_ADDED and location == Location.OUT_OF_CLOUD and not perm:
        return GateDecision(
            False,
            OUT_OF_CLOUD,
            _("增值API不得在抖店云外调用, 除非已获授权 (FEE-3.1)。"),
            tier,
        )
    if _in_arrears(org_id, arrears):
        return GateDecision(False, ARREARS, _("账户欠费, 付费API暂停调用 (FEE-6.1)。"), tier)
    return GateDecision(True, tier=tier)
