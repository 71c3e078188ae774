"""Billing II writes: catalog, prices, apps and keys, out-of-cloud permissions, discounts.

Every change a gate decision depends on drops its cache entry here (after commit, so a
reader cannot re-cache the old row between our delete and our commit). Usage ingest is in
``billing.services.usage``, the gate in ``billing.services.gate``, settlement in
``billing.services.settlement``.
"""

import datetime as dt
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from billing.locks_metering import NS_PRICES, advisory_xact_lock, advisory_xact_lock_shared
from billing.models import (
    TIER_HISTORY_START,
    Api,
    ApiPrice,
    ApiTierChange,
    App,
    Bill,
    Discount,
    OutOfCloudPermission,
    SettlementRun,
)
from billing.selectors.metering import api_day_annotations
from billing.services import gate
from portal import clock
from portal.errors import Conflict, DomainError, NotFound
from portal.models import Membership
from portal.services import audit_record


def _staff_audit(actor, action, obj, details=None):
    if actor is not None:
        audit_record(actor=actor, action=action, obj=obj, details=details or {})


# --- catalog (FEE-2.1) ------------------------------------------------------------------------


@transaction.atomic
def api_create(*, code: str, tier: str, title: str = "", actor=None) -> Api:
    if tier not in Api.Tier.values:
        raise DomainError("FEE-2.1", gettext("未知的API类型。"), field="tier")
    api = Api.objects.create(code=code.strip(), tier=tier, title=title)
    # A new API has no usage yet: its tier is in force from before any (FEE-2.1 tier history).
    # Same transaction: the database refuses, at commit, an API without this row.
    ApiTierChange.objects.create(
        api=api, tier=tier, effective_from=TIER_HISTORY_START, actor=_user_or_none(actor)
    )
    _staff_audit(actor, "billing.api_create", api, {"tier": tier})
    transaction.on_commit(lambda: gate.gate_invalidate_api(code=api.code))
    return api


@transaction.atomic
def api_update(
    *, api: Api, tier: str | None = None, title: str | None = None, actor=None, today: dt.date | None = None
) -> Api:
    """Change an API's title (at once) or schedule a tier change (from tomorrow).

    Settlement bills per Asia/Shanghai day by the tier in force that day, so a tier change made
    on ``today`` (the day it is made; default the business date) takes effect from the next day:
    the tier history gets a row from ``today + 1`` (a second change that day replaces it) and
    ``Api.tier``, which the gate reads, is left alone until ``api_tiers_apply_due`` flips it
    at midnight. Calls made today are billed, and gated, under the tier in force today.

    The requested tier is compared with the tier in force tomorrow, not ``Api.tier``: asking
    for the tier in force today while a change is pending cancels that change (its row is
    removed). Refused when the effective day lies in a settled month (FEE-4.2).
    """
    if tier is not None:
        if tier not in Api.Tier.values:
            raise DomainError("FEE-2.1", gettext("未知的API类型。"), field="tier")
        # The price lock covers the tier history too: a change waits for a month being planned
        # (it reads tiers under the shared lock), and a plan starting now waits for this change,
        # so the check below sees every run. It also serialises two changes of one API (so the
        # tier in force read below is the one this change replaces) and orders a change against
        # the midnight ``api_tiers_apply_due``: the day is read under the lock, so a change that
        # commits after the job ran is dated from the job's day and is due at the next one.
        advisory_xact_lock(NS_PRICES, 0)
    current_tier = Api.objects.filter(pk=api.pk).values_list("tier", flat=True).first()
    details = None
    if tier is not None:
        day = today or clock.today()
        effective = day + dt.timedelta(days=1)
        # Every API has a history row from TIER_HISTORY_START (FEE-2.1, a database trigger), so
        # the days before this change keep the tier they had.
        scheduled = api_tier_in_force(api=api, day=effective)
        details = {"tier": [scheduled, tier]}
        if tier != scheduled:
            api_tier_check(api=api, effective_from=effective)
            if api_tier_in_force(api=api, day=day) == tier:
                # Back to the tier in force the day before: the row from ``effective`` only
                # repeats it (a pending change cancelled). Removing it changes no day's tier.
                ApiTierChange.objects.filter(api=api, effective_from=effective).delete()
            else:
                ApiTierChange.objects.update_or_create(
                    api=api, effective_from=effective, defaults={"tier": tier, "actor": _user_or_none(actor)}
                )
            details["from"] = effective.isoformat()
            # The gate caches the tier in force with the moment of its next change: re-read it.
            transaction.on_commit(lambda: gate.gate_invalidate_api(code=api.code))
    if title is not None and api.pk is not None:
        Api.objects.filter(pk=api.pk).update(title=title)
        api.title = title
    if current_tier is not None:
        api.tier = current_tier  # a caller's instance (admin's form) never carries the new tier
    _staff_audit(actor, "billing.api_update", api, details or {"tier": [current_tier, current_tier]})
    return api


def api_tier_in_force(*, api: Api, day: dt.date) -> str | None:
    """The tier of the API's history row in force on ``day`` (None: no row on or before it)."""
    return (
        ApiTierChange.objects.filter(api_id=api.pk, effective_from__lte=day)
        .order_by("-effective_from")
        .values_list("tier", flat=True)
        .first()
    )


@transaction.atomic
def api_tiers_apply_due(*, today: dt.date | None = None) -> list[str]:
    """Set ``Api.tier`` to the tier in force today wherever they differ (the midnight job).

    Idempotent: a second run finds nothing to change. Each flip is a conditional update on the
    tier it read, audited as a system change, and drops the gate's cache entry after commit so
    the gate sees the new tier on the next call. Returns the codes of the APIs changed.
    """
    # Waits for a tier change in flight (see ``api_update``); shared, so planning is not blocked.
    advisory_xact_lock_shared(NS_PRICES, 0)
    day = today or clock.today()
    due = list(
        Api.objects.annotate(**api_day_annotations(day))
        .filter(tier_today__isnull=False)
        .exclude(tier=F("tier_today"))
        .order_by("pk")
        .values_list("pk", "code", "tier", "tier_today")
    )
    changed = []
    for pk, code, old, new in due:
        if not Api.objects.filter(pk=pk, tier=old).update(tier=new):
            continue  # changed meanwhile (another run): that run applied and audited it
        api = Api(pk=pk, code=code, tier=new)
        audit_record(
            actor=None,
            action="billing.api_tier_apply",
            obj=api,
            details={"tier": [old, new], "from": str(day)},
        )
        transaction.on_commit(lambda code=code: gate.gate_invalidate_api(code=code))
        changed.append(code)
    return changed


def _user_or_none(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def _settled_months() -> set[tuple[int, int]]:
    """Months whose prices settlement has read: a run was started (any status) or a bill exists."""
    runs = SettlementRun.objects.values_list("year", "month")
    bills = Bill.objects.values_list("year", "month").distinct()
    return set(runs) | set(bills)


def _first_settled_month(*, effective_from: dt.date, later: dt.date | None) -> tuple[int, int] | None:
    """The first settled month with a day in [effective_from, later) (``later`` None: for ever)."""
    start = (effective_from.year, effective_from.month)
    hit = sorted(
        (y, m)
        for y, m in _settled_months()
        if (y, m) >= start and (later is None or dt.date(y, m, 1) < later)
    )
    return hit[0] if hit else None


def api_tier_check(*, api: Api, effective_from: dt.date) -> None:
    """FEE-4.2: settled months never change, so no tier may come into force on one of their days.

    A tier from ``effective_from`` is in force until the API's next tier row (or for ever).
    """
    later = None
    if api.pk is not None:
        later = (
            ApiTierChange.objects.filter(api_id=api.pk, effective_from__gt=effective_from)
            .order_by("effective_from")
            .values_list("effective_from", flat=True)
            .first()
        )
    hit = _first_settled_month(effective_from=effective_from, later=later)
    if hit:
        y, m = hit
        raise DomainError(
            "FEE-4.2",
            gettext("FEE-4.2: %(month)s 已结算, 不可更改; 自 %(date)s 生效的API类型会改变它的计费。")
            % {"month": f"{y}-{m:02d}", "date": effective_from.isoformat()},
            field="tier",
        )


def api_price_check(*, api: Api, effective_from: dt.date) -> None:
    """FEE-4.2: settled months never change, so no price may be in force on one of their days.

    A price from ``effective_from`` is in force until the API's next price (or for ever), so a
    date in an unsettled month still changes a settled month that lies before that next price.

    Except a price that only fills days on which the API had no price at all: settlement
    refuses to bill an organization for such a day (FEE-4.2 "no price in force"), so no bill
    priced those days, and staff must be able to add the missing price for the refused
    organizations to be billed.
    """
    later = None
    if api.pk is not None:
        prices = ApiPrice.objects.filter(api_id=api.pk)
        later = (
            prices.filter(effective_from__gt=effective_from)
            .order_by("effective_from")
            .values_list("effective_from", flat=True)
            .first()
        )
        if not prices.filter(effective_from__lte=effective_from).exists():
            return  # [effective_from, later) had no price in force: nothing billed changes
    hit = _first_settled_month(effective_from=effective_from, later=later)
    if hit:
        y, m = hit
        raise DomainError(
            "FEE-4.2",
            gettext("FEE-4.2: %(month)s 已结算, 不可更改; 自 %(date)s 生效的价格会改变它的计价。")
            % {"month": f"{y}-{m:02d}", "date": effective_from.isoformat()},
            field="effective_from",
        )


@transaction.atomic
def api_price_set(*, api: Api, price_fen_per_1000: int, effective_from: dt.date, actor=None) -> ApiPrice:
    """Add (or correct) the price in force from ``effective_from`` (FEE-2.1 price history).

    Refused when it would change the price of a day in a settled month (FEE-4.2).
    """
    if price_fen_per_1000 < 0:
        raise DomainError("FEE-2.1", gettext("价格不能为负。"), field="price_fen_per_1000")
    # Waits for a month being planned (it reads prices under the shared lock) and makes a
    # plan that starts now wait for this price: the check below then sees every run.
    advisory_xact_lock(NS_PRICES, 0)
    api_price_check(api=api, effective_from=effective_from)
    price, _ = ApiPrice.objects.update_or_create(
        api=api, effective_from=effective_from, defaults={"price_fen_per_1000": price_fen_per_1000}
    )
    _staff_audit(
        actor, "billing.api_price_set", api, {"price": price_fen_per_1000, "from": str(effective_from)}
    )
    return price


# --- apps and keys (FEE-3.1) ------------------------------------------------------------------


def _require_main(membership: Membership | None) -> Membership:
    if membership is None:
        raise NotFound()
    if not membership.is_main:
        raise DomainError("permission_denied", gettext("只有主账号可以管理应用密钥。"), status=403)
    return membership


@transaction.atomic
def app_create(*, membership: Membership, name: str, actor=None) -> tuple[App, str]:
    """Create an app for the membership's organization; returns (app, secret shown once)."""
    _require_main(membership)
    name = (name or "").strip()
    if not name:
        raise DomainError("invalid", gettext("请填写应用名称。"), field="name")
    raw = App.new_secret()
    app = App.objects.create(
        organization_id=membership.organization_id,
        name=name[:120],
        app_key=App.new_key(),
        secret_hash=App.hash_secret(raw),
    )
    key = app.app_key
    transaction.on_commit(lambda: gate.gate_invalidate_app(app_key=key))  # drop a cached "unknown"
    return app, raw


@transaction.atomic
def app_create_for_organization(*, organization_id: int, name: str, actor=None) -> tuple[App, str]:
    """Staff or demo: create an app for any organization (audited when an actor is given)."""
    raw = App.new_secret()
    app = App.objects.create(
        organization_id=organization_id, name=name, app_key=App.new_key(), secret_hash=App.hash_secret(raw)
    )
    _staff_audit(actor, "billing.app_create", app)
    key = app.app_key
    transaction.on_commit(lambda: gate.gate_invalidate_app(app_key=key))
    return app, raw


@transaction.atomic
def app_rename(*, app_id: int, name: str, actor=None) -> App:
    """Staff rename an app; the old and new names go to the audit trail (a no-op is not one)."""
    name = (name or "").strip()[:120]
    if not name:
        raise DomainError("invalid", gettext("请填写应用名称。"), field="name")
    # The row lock makes the recorded old name the one this rename replaced.
    app = App.objects.select_for_update().get(pk=app_id)
    old = app.name
    if old != name:
        app.name = name
        app.save(update_fields=["name"])
        _staff_audit(actor, "billing.app_rename", app, {"name": [old, name]})
    return app


@transaction.atomic
def app_rotate_secret(*, membership: Membership | None, app_id: int, actor=None) -> tuple[App, str]:
    """A main account replaces its app's secret; the new one is shown once, the old stops working."""
    _require_main(membership)
    # The row lock serialises two rotations, so the secret shown is the one stored.
    app = (
        App.objects.select_for_update().filter(pk=app_id, organization_id=membership.organization_id).first()
    )
    if app is None:
        raise NotFound()
    raw = App.new_secret()
    app.secret_hash = App.hash_secret(raw)
    app.secret_rotated_at = timezone.now()
    app.save(update_fields=["secret_hash", "secret_rotated_at"])
    key = app.app_key
    transaction.on_commit(lambda: gate.gate_invalidate_app(app_key=key))
    return app, raw


def app_secret_matches(*, app: App, raw: str) -> bool:
    import hmac

    return hmac.compare_digest(app.secret_hash, App.hash_secret(raw))


# --- out-of-cloud permissions (FEE-3.1(1)) ----------------------------------------------------


@transaction.atomic
def permission_grant(
    *, app: App, api: Api, actor=None, note: str = "", today: dt.date | None = None
) -> OutOfCloudPermission:
    """FEE-3.1(1): let an app call a value-added API out of cloud. Also for an API that becomes
    value-added tomorrow (``api_update``): granted ahead, its out-of-cloud calls are not denied
    from midnight until staff notice."""
    tomorrow = (today or clock.today()) + dt.timedelta(days=1)
    if Api.Tier.VALUE_ADDED not in (api.tier, api_tier_in_force(api=api, day=tomorrow)):
        raise DomainError("FEE-3.1", gettext("只有增值API需要云外调用权限。"), field="api")
    perm, created = OutOfCloudPermission.objects.get_or_create(
        app=app,
        api=api,
        defaults={"granted_by": actor if getattr(actor, "is_authenticated", False) else None, "note": note},
    )
    if created:
        _staff_audit(actor, "billing.oocperm_grant", perm, {"app": app.app_key, "api": api.code})
    app_key, code = app.app_key, api.code
    transaction.on_commit(lambda: gate.gate_invalidate_permission(app_key=app_key, code=code))
    return perm


@transaction.atomic
def permission_revoke(*, permission: OutOfCloudPermission, actor=None) -> None:
    app_key, code = permission.app.app_key, permission.api.code
    _staff_audit(actor, "billing.oocperm_revoke", permission, {"app": app_key, "api": code})
    OutOfCloudPermission.objects.filter(pk=permission.pk).delete()
    transaction.on_commit(lambda: gate.gate_invalidate_permission(app_key=app_key, code=code))


# --- discounts (FEE-5.1) ----------------------------------------------------------------------


def _discount_in_settled_months(
    *, app_id: int | None, rate: Decimal | None, valid_from: dt.date, valid_to: dt.date
) -> dict[tuple[int, int], tuple]:
    """What a discount means to each settled month it touches: (app, rate, first, last day)."""
    out = {}
    for y, m in _settled_months():
        start, end = clock.month_range(y, m)
        first, last = start.date(), end.date() - dt.timedelta(days=1)
        lo, hi = max(valid_from, first), min(valid_to, last)
        if lo <= hi:
            out[(y, m)] = (app_id, Decimal(rate) if rate is not None else None, lo, hi)
    return out


def discount_settled_check(
    *,
    discount: Discount | None = None,
    app: App | None = None,
    rate: Decimal | None = None,
    valid_from: dt.date | None = None,
    valid_to: dt.date | None = None,
    delete: bool = False,
) -> None:
    """FEE-4.2/FEE-5.1: settled months never change, so a discount may not be added, edited or
    deleted in a way that changes the rate of a day in a settled month (its bills were computed
    with the discounts then in force; the change would make them disagree with the "my
    discounts" page and with the month's recheck). Editing the parts outside settled months
    (e.g. extending or ending an ongoing discount after them) is allowed.

    ``discount`` is the saved discount being edited or deleted (its stored values are read, not
    the instance's, which an admin form has already changed); ``app``/``rate``/dates are the new
    values.
    """
    before: dict = {}
    if discount is not None and discount.pk is not None:
        saved = (
            Discount.objects.filter(pk=discount.pk).values("app_id", "rate", "valid_from", "valid_to").first()
        )
        if saved:
            before = _discount_in_settled_months(**saved)
    after: dict = {}
    if not delete:
        after = _discount_in_settled_months(
            app_id=app.pk if app else None, rate=rate, valid_from=valid_from, valid_to=valid_to
        )
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        y, m = changed[0]
        raise DomainError(
            "FEE-4.2",
            gettext("FEE-4.2: %(month)s 已结算, 不可更改; 这个折扣的变更会改变它的计费。")
            % {"month": f"{y}-{m:02d}"},
            field=None if delete else "valid_from",
        )


def discount_set(
    *,
    app: App,
    rate: Decimal,
    valid_from: dt.date,
    valid_to: dt.date,
    actor=None,
    reason: str = "",
    discount: Discount | None = None,
) -> Discount:
    """Create (or edit) an app's discount. Overlapping periods are refused (one rate per day),
    and so is a change to a settled month's days (FEE-4.2, ``discount_settled_check``)."""
    rate = Decimal(rate)
    if not (Decimal(0) < rate < Decimal(1)):
        raise DomainError("FEE-5.1", gettext("折扣率须在 0 与 1 之间(如 0.2 表示减免20%)。"), field="rate")
    if valid_to < valid_from:
        raise DomainError("FEE-5.1", gettext("截止日期不能早于生效日期。"), field="valid_to")
    try:
        with transaction.atomic():
            # Like a price: waits for a month being planned, and a plan starting now waits for
            # this discount, so the check below sees every run (settlement reads discounts).
            advisory_xact_lock(NS_PRICES, 0)
            discount_settled_check(
                discount=discount, app=app, rate=rate, valid_from=valid_from, valid_to=valid_to
            )
            obj = discount or Discount(app=app)
            obj.app = app
            obj.rate, obj.valid_from, obj.valid_to, obj.reason = rate, valid_from, valid_to, reason
            if obj.pk is None and getattr(actor, "is_authenticated", False):
                obj.created_by = actor
            obj.save()
            _staff_audit(
                actor,
                "billing.discount_set",
                obj,
                {"app": app.app_key, "rate": str(rate), "from": str(valid_from), "to": str(valid_to)},
            )
    except IntegrityError as exc:
        raise Conflict(
            "FEE-5.1", gettext("该应用在此期间已有折扣(折扣期不得重叠)。"), field="valid_from"
        ) from exc
    return obj


@transaction.atomic
def discount_delete(*, discount: Discount, actor=None) -> None:
    """Delete a discount; refused when it covers a day of a settled month (FEE-4.2)."""
    advisory_xact_lock(NS_PRICES, 0)
    discount_settled_check(discount=discount, delete=True)
    _staff_audit(actor, "billing.discount_delete", discount, {"rate": str(discount.rate)})
    discount.delete()
