# ruff: noqa: RUF001
"""Every write of the gifts app. A state change is one function here: it locks the row, checks the
allowed transition and the rule, writes the new state and a ``GiftEvent`` in the same
transaction, and queues side effects (notifications) with the transaction.

Staff services take ``actor`` and are audited (``portal.services.audit_record``); permissions are
checked by the admin that calls them (jobs and the shell call them too).
"""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from gifts import listing_check as checks
from gifts import locks, selectors
from gifts.compensation import compensation_calculate, units_returned_intact_in_range
from gifts.errors import Conflict, DomainError, GiftRuleError, ListingBreach, NotFound, TransitionError
from gifts.models import (
    DisputeEvidence,
    DocumentRequest,
    Gift,
    GiftCategory,
    GiftDispute,
    GiftEvent,
    GiftShipment,
    Order,
    Product,
    ProductGift,
    Qualification,
    SpotCheck,
    Violation,
    ViolationAnnulment,
)
from gifts.uploads import delete_stored, store_upload
from gifts.value import LOOK_UP, gift_value_on_order, gift_value_promised, gift_value_resolve, value_basis_for
from portal import clock
from portal.errors import AlreadyDone
from portal.models import Membership, Organization
from portal.money import format_fen
from portal.services import audit_record, notification_send, request_key_clean

S = Gift.State

# Violation types of 《【全球购】违规管理规则》 each GIFT rule refers to.
VIOLATION_TYPES = {
    "GIFT-2.2": "发布禁售商品/信息",
    "GIFT-2.3": "扰乱平台秩序",
    "GIFT-2.4": "商品发布违规",
    "GIFT-2.5": "商品下架",
    "GIFT-3.1": "商品质量不合格",
    "GIFT-3.2": "商品发布违规",
    "GIFT-4.1": "发货超时",
    "GIFT-4.2": "违背承诺",
}


def dispute_response_hours() -> int:
    """The merchant's time to answer a gift dispute (GIFT-5): settings.GIFT_DISPUTE_RESPONSE_HOURS,
    read from the environment variable of the same name, 48 hours by default."""
    return int(settings.GIFT_DISPUTE_RESPONSE_HOURS)


# --- helpers ------------------------------------------------------------------------------------


def _event(
    *, shop_id, kind, actor=None, at=None, from_state="", to_state="", rule_id="", details=None, **subject
):
    return GiftEvent.objects.create(
        shop_id=shop_id,
        kind=kind,
        from_state=from_state,
        to_state=to_state,
        rule_id=rule_id,
        details=details or {},
        actor=actor if (actor is not None and actor.is_authenticated) else None,
        at=at or clock.now(),
        **subject,
    )


# The code billing's Idempotency-Key answers with for a key reused with another request body.
REQUEST_KEY_REUSED = "IDEMPOTENCY-KEY-REUSED"


def _made_by_request(model, *, shop, request_key: str | None):
    """The row of ``model`` this shop's request (``request_key``) already made, if any."""
    return model.objects.filter(shop=shop, request_key=request_key).first() if request_key else None


def _insert_once(row, *, request_key: str | None):
    """Insert ``row`` (a new row of a shop, whose ``request_key`` is unique per shop; the caller
    looked for one this request made already with ``_made_by_request``). Returns (the row,
    whether it was inserted now): two at once queue on the unique key, and the second returns
    the first's row, committed by then."""
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        done = _made_by_request(type(row), shop=row.shop, request_key=request_key)
        if done is None:
            raise
        return done, False
    return row, True


def _require_shop_member(membership: Membership | None, *, main: bool) -> Organization:
    """Shop pages and services act for the membership's shop. Sub-accounts (子账号) may read,
    pre-check and answer disputes; registering, uploading licences and editing listings is the
    main account's (主账号) job."""
    shop = selectors.shop_of(membership)
    if shop is None:
        raise NotFound()
    if main and not membership.is_main:
        raise DomainError("GIFT-MAIN-ONLY", _("只有主账号可以执行此操作"), status=403)
    return shop


def _move(
    gift: Gift,
    *,
    to: str,
    allowed: tuple,
    actor,
    kind: str,
    rule_id: str = "",
    reason: str = "",
    now=None,
    details=None,
):
    """Move a locked gift to ``to`` if its state is in ``allowed``; write the event."""
    if gift.state not in allowed:
        raise TransitionError(_("赠品状态「%(state)s」不允许此操作") % {"state": gift.get_state_display()})
    old = gift.state
    gift.state = to
    gift.state_reason = reason
    fields = ["state", "state_reason", "updated_at"]
    if to in (S.APPROVED, S.REJECTED, S.REVISIONS_REQUESTED):
        gift.decided_at = now or clock.now()
        fields.append("decided_at")
    if to == S.SUBMITTED:
        gift.submitted_at = now or clock.now()
        fields.append("submitted_at")
    gift.save(update_fields=fields)
    _event(
        shop_id=gift.shop_id,
        gift=gift,
        kind=kind,
        actor=actor,
        at=now,
        from_state=old,
        to_state=to,
        rule_id=rule_id,
        details={"reason": reason, **(details or {})},
    )
    return gift


def _notify_shop(
    shop_id: int, *, kind: str, title: str, params: dict, body: str = "", url: str = "", dedupe_key=None
):
    """``title`` and ``body`` are gettext_noop msgids filled from ``params`` when shown."""
    shop = Organization.objects.get(pk=shop_id)
    notification_send(
        kind=kind,
        title=title,
        body=body,
        params=params,
        url=url,
        organization=shop,
        dedupe_key=dedupe_key,
        email=True,
    )


# --- violations (GIFT-6.2) ------------------------------------------------------------------------


@dataclass(frozen=True)
class ViolationOutcome:
    violation: Violation | None
    skipped_reason: str = ""

    @property
    def recorded(self) -> bool:
        return self.violation is not None


def violation_weight(value_fen: int | None) -> int:
    """GIFT-4.2 weighs the breach by the gift's value: under ¥100 → 1, under ¥1,000 → 2, else 3.
    An unknown value weighs as the lowest tier (read in the merchant's favour: no value, no
    evidence of a heavier breach)."""
    if value_fen is None or value_fen < 10_000:
        return 1
    if value_fen < 100_000:
        return 2
    return 3


def violation_record(
    *,
    shop_id: int,
    rule_id: str,
    occurred_at: dt.datetime,
    source_key: str,
    gift: Gift | None = None,
    product: Product | None = None,
    evidence: dict | None = None,
    penalty_note: str = "",
    actor=None,
    weigh_by_value: bool = False,
    quantity: int | None = None,
) -> ViolationOutcome:
    """Record a breach under the rule version in force on the day of the conduct (GIFT-6.2).

    Conduct before the rules took effect is not judged by them: nothing is recorded, and the skip
    is written as an event on the gift/product so shop and staff can see why. Idempotent on
    ``source_key`` (a job that runs twice records once). ``quantity`` is the quantity of the gift
    the conduct concerns (an order's gift line); without it, the listing's quantity per order.
    """
    existing = Violation.objects.filter(source_key=source_key).first()
    if existing is not None:
        return ViolationOutcome(existing)
    version = selectors.rule_version_in_force(on_date=clock.today(occurred_at))
    if version is None:
        reason = f"GIFT-6.2: {clock.today(occurred_at)} 的行为不适用本规则（规则尚未生效），不记违规"
        _event(
            shop_id=shop_id,
            gift=gift,
            product=product,
            kind="violation_not_judged",
            actor=actor,
            rule_id=rule_id,
            details={"reason": reason, "occurred_at": occurred_at.isoformat(), "source_key": source_key},
        )
        return ViolationOutcome(None, reason)
    # GIFT-4.2 weighs by the gift's value: one unit's value times the quantity promised (GIFT-2.4).
    value = gift_value_promised(gift, quantity=quantity) if gift is not None else None
    weight = violation_weight(value.amount_fen if value else None) if weigh_by_value else 1
    if weigh_by_value and value is not None:
        evidence = {**(evidence or {}), "gift_value": value.as_dict()}
    try:
        with transaction.atomic():
            violation = Violation.objects.create(
                shop_id=shop_id,
                rule_id=rule_id,
                rule_version=version,
                violation_type=VIOLATION_TYPES.get(rule_id, rule_id),
                gift=gift,
                product=product,
                evidence=evidence or {},
                penalty_note=penalty_note,
                gift_value_fen=value.amount_fen if value else None,
                weight=weight,
                occurred_at=occurred_at,
                recorded_by=actor if (actor is not None and actor.is_authenticated) else None,
                source_key=source_key,
            )
    except IntegrityError:
        # Two runs raced on the same conduct: the unique source_key kept exactly one.
        return ViolationOutcome(Violation.objects.get(source_key=source_key))
    _event(
        shop_id=shop_id,
        gift=gift,
        product=product,
        kind="violation_recorded",
        actor=actor,
        rule_id=rule_id,
        details={"violation_id": violation.pk, "type": violation.violation_type},
    )
    _notify_shop(
        shop_id,
        kind="gift_violation",
        title=gettext_noop("违规记录：%(type)s（%(rule)s）"),
        body="%(note)s",
        params={"type": violation.violation_type, "rule": rule_id, "note": penalty_note},
        url="/gifts/violations/",
        dedupe_key=f"gifts:violation:{violation.pk}",
    )
    return ViolationOutcome(violation)


# --- categories (staff) -------------------------------------------------------------------------


@transaction.atomic
def category_save(
    *, category: GiftCategory, actor, changed: list[str] | None = None, now=None
) -> GiftCategory:
    """Staff create or change a gift category. A change takes effect on the gifts already in it at
    once, so no listed product is left in breach (``_category_enforce``)."""
    if category.licence_required and not category.licence_type.strip():
        raise GiftRuleError("GIFT-2.3", _("需要资质的类目必须写明资质类型"), field="licence_type")
    creating = category.pk is None
    if not creating:
        # GIFT-2.3: the licences the change judges the gifts by are locked before the products and
        # the category (see gifts.locks), so a revocation or approval of one at the same moment
        # queues with the change instead of being missed by it.
        locks.lock_category_with_its_products(
            category.pk, licences_of_type=category.licence_type if category.licence_required else ""
        )
    category.save()
    audit_record(
        actor=actor,
        action="gifts.category_create" if creating else "gifts.category_change",
        obj=category,
        details={
            "name": category.name,
            "is_prohibited": category.is_prohibited,
            "licence_required": category.licence_required,
            "licence_type": category.licence_type,
            "changed": changed or [],
        },
    )
    if not creating:
        _category_enforce(category, actor=actor, now=now)
    return category


def _category_enforce(category: GiftCategory, *, actor, now=None) -> None:
    """What a category's rules now say about the gifts in it (called with the category locked):

    - GIFT-2.2 prohibited: its gifts leave every product they are attached to, so no listing goes
      on offering prohibited goods (发布禁售商品/信息). No violation is recorded: the merchant
      attached them when that was allowed, and conduct is judged by the rules in force when it
      happened (GIFT-6.2). The gifts stay registered; they cannot be attached while prohibited.
    - GIFT-2.3 a licence now needed (or another licence type): approved gifts whose shop holds no
      valid licence of that type are suspended, as when a licence lapses, and so leave their
      listings too. Gifts suspended for want of a licence the category no longer needs, or that
      their shop now holds, are back in force.
    """
    now = now or clock.now()
    if category.is_prohibited:
        reason = f"GIFT-2.2: 类目「{category.name}」已被列为禁售商品，不得作为赠品"
        linked = Gift.objects.filter(category=category, product_links__isnull=False).distinct()
        for gift in linked.order_by("pk"):
            _detach_gift_from_products(gift, actor=actor, now=now, rule_id="GIFT-2.2", reason=reason)
    today = clock.today(now)
    _suspend_gifts_lacking_licence(today=today, now=now, actor=actor, category_id=category.pk)
    for gift_id in (
        Gift.objects.filter(category=category, state=S.SUSPENDED).order_by("pk").values_list("pk", flat=True)
    ):
        # The licence is read under its lock: a revocation at the same moment either commits first
        # (and the gift stays suspended) or waits and then suspends the reinstated gift.
        gift = locks.lock_gift_with_its_licences(gift_id)
        lacking = category.licence_required and not selectors.shop_has_valid_licence(
            shop_id=gift.shop_id, licence_type=category.licence_type, today=today
        )
        if gift.state == S.SUSPENDED and not lacking:
            _move(
                gift,
                to=S.APPROVED,
                allowed=(S.SUSPENDED,),
                actor=actor,
                kind="reinstated",
                rule_id="GIFT-2.3",
                reason="类目资质要求已变更",
                now=now,
            )


# --- registration (GIFT-2.1) --------------------------------------------------------------------

GIFT_FIELDS = (
    "name",
    "brand",
    "category",
    "kind",
    "spec",
    "quantity_per_order",
    "ship_from",
    "declared_value_fen",
    "near_expiry",
    "expiry_date",
    "is_lottery",
)


def _apply_gift_data(gift: Gift, data: dict) -> None:
    for name in GIFT_FIELDS:
        if name in data:
            value = data[name]
            if isinstance(value, str):
                value = value.strip()
            setattr(gift, name, value)
    if not gift.name:
        raise DomainError("invalid", _("请填写赠品名称"), field="name")
    if not gift.brand:
        raise DomainError("invalid", _("请填写赠品品牌"), field="brand")
    if gift.declared_value_fen is not None:
        if gift.declared_value_fen < 0:
            raise GiftRuleError("GIFT-1.2", _("申报价值不能为负"), field="declared_value_fen")
        if not gift.ship_from:
            raise GiftRuleError(
                "GIFT-1.2", _("申报价值的依据取决于发货地，请先选择发货地"), field="ship_from"
            )
    # GIFT-1.2: the basis follows where the gift ships from (customs for cross-border).
    gift.value_basis = value_basis_for(gift.ship_from, gift.declared_value_fen)
    if gift.ship_from != Gift.ShipFrom.DOMESTIC:
        gift.domestic_shipping_approved = False
    # GIFT-2.7 / GIFT-2.4: the draft form and the API both save through here, so both refuse alike.
    refusals = checks.draft_refusals(gift)
    if refusals:
        raise GiftRuleError(refusals[0].rule, refusals[0].message, field=refusals[0].field)


@transaction.atomic
def gift_register(
    *, membership, actor, data: dict, submit: bool = False, request_key: str | None = None, now=None
) -> Gift:
    """GIFT-2.1: register a gift (and submit it for review when ``submit``).

    ``request_key`` (the form's one-time token, the API's Idempotency-Key) makes a repeat of
    the same request return the gift it registered, in whatever state it is now, instead of
    registering it twice: a double click, a browser re-sending the POST, a client retrying a
    call whose answer it lost. Two at once queue on the unique key; the second returns the
    first's gift."""
    shop = _require_shop_member(membership, main=True)
    request_key = request_key_clean(request_key)
    done = _made_by_request(Gift, shop=shop, request_key=request_key)
    if done is not None:
        return done
    gift = Gift(shop=shop, created_by=actor, request_key=request_key)
    _apply_gift_data(gift, data)
    gift, inserted = _insert_once(gift, request_key=request_key)
    if not inserted:
        return gift
    _event(
        shop_id=shop.pk,
        gift=gift,
        kind="registered",
        actor=actor,
        at=now,
        to_state=gift.state,
        rule_id="GIFT-2.1",
    )
    if submit:
        gift = gift_submit(membership=membership, actor=actor, gift=gift, now=now)
    return gift


@transaction.atomic
def gift_update(*, membership, actor, gift: Gift, data: dict, submit: bool = False) -> Gift:
    """Edit a draft or a gift sent back for revisions; with ``submit``, then submit it for review,
    in the same transaction (both or neither), as ``gift_register`` does."""
    shop = _require_shop_member(membership, main=True)
    # A category the edit moves the gift into is locked with its own, before the gift (gifts.locks):
    # submitting below relies on it (GIFT-2.2), and a staff change of it queues with the edit.
    moving_to = data["category"].pk if data.get("category") is not None else None
    gift = locks.lock_gift(gift.pk, moving_to=moving_to)
    if gift.shop_id != shop.pk:
        raise NotFound()
    if gift.state not in (S.DRAFT, S.REVISIONS_REQUESTED):
        raise TransitionError(_("只有草稿或待修改的赠品可以编辑"))
    if moving_to is not None and moving_to != gift.category_id:
        # as staff left it, read under the lock (the caller's copy may be older, or deleted since)
        category = GiftCategory.objects.filter(pk=moving_to).first()
        if category is None:
            raise NotFound("category", field="category")
        data = {**data, "category": category}
    _apply_gift_data(gift, data)
    gift.save()
    _event(shop_id=shop.pk, gift=gift, kind="edited", actor=actor, details={"fields": sorted(data)})
    if submit:
        gift = gift_submit(membership=membership, actor=actor, gift=gift)
    return gift


@transaction.atomic
def gift_submit(*, membership, actor, gift: Gift, request_key: str | None = None, now=None) -> Gift:
    """Submit for review (报备). A prohibited category is rejected at once (GIFT-2.2).

    ``request_key`` (the submit button's one-time token) tells a repeat of this very submit (a
    double click, the browser re-sending it) from another: the repeat raises ``AlreadyDone``
    instead of the state error, checked under the gift's row lock, so two at once queue and the
    second finds the first's event. Any other submit of a gift no longer a draft is refused."""
    now = now or clock.now()
    shop = _require_shop_member(membership, main=True)
    gift = locks.lock_gift(gift.pk)
    if gift.shop_id != shop.pk:
        raise NotFound()
    request_key = request_key_clean(request_key)
    if (
        request_key
        and GiftEvent.objects.filter(gift=gift, kind="submitted", details__request_key=request_key).exists()
    ):
        raise AlreadyDone(gift)
    submitted = {"request_key": request_key} if request_key else None
    allowed = (S.DRAFT, S.REVISIONS_REQUESTED)
    if gift.state not in allowed:
        raise TransitionError(_("赠品状态「%(state)s」不能提交") % {"state": gift.get_state_display()})
    over_cap = checks.lottery_value_over_cap(gift)
    if over_cap is not None:
        raise GiftRuleError(
            "GIFT-2.7",
            checks.lottery_cap_refusal(over_cap),
            field="declared_value_fen",
        )
    gift = _move(
        gift,
        to=S.SUBMITTED,
        allowed=allowed,
        actor=actor,
        kind="submitted",
        now=now,
        rule_id="GIFT-2.1",
        details=submitted,
    )
    if gift.category.is_prohibited:
        reason = f"GIFT-2.2: 类目「{gift.category.name}」为禁售商品，不得作为赠品"
        _move(
            gift,
            to=S.REJECTED,
            allowed=(S.SUBMITTED,),
            actor=None,
            kind="auto_rejected",
            rule_id="GIFT-2.2",
            reason=reason,
            now=now,
        )
        violation_record(
            shop_id=gift.shop_id,
            rule_id="GIFT-2.2",
            occurred_at=now,
            source_key=f"gift:{gift.pk}:prohibited",
            gift=gift,
            evidence={"category": gift.category.name},
            penalty_note="依据《【全球购】违规管理规则》“发布禁售商品/信息”处理",
        )
    return gift


def _approval_blockers(gift: Gift, today) -> list[checks.Finding]:
    # The state (GIFT-2.1) is what approval changes; domestic shipping (GIFT-4.3) has its own
    # approval. Everything else found about the gift blocks approval.
    return [f for f in checks.gift_findings(gift, today=today) if f.rule not in ("GIFT-2.1", "GIFT-4.3")]


@transaction.atomic
def gift_approve(*, gift: Gift, actor, now=None) -> Gift:
    now = now or clock.now()
    # GIFT-2.3: the licence the approval relies on is locked with the gift, so a revocation at the
    # same moment either comes first (and the check below refuses) or finds the gift approved.
    gift = locks.lock_gift_with_its_licences(gift.pk)
    if gift.state != S.SUBMITTED:
        raise TransitionError(_("赠品状态「%(state)s」不能审核通过") % {"state": gift.get_state_display()})
    blockers = _approval_blockers(gift, clock.today(now))
    if blockers:
        raise GiftRuleError(blockers[0].rule, "；".join(f.message for f in blockers), field=blockers[0].field)
    _move(
        gift, to=S.APPROVED, allowed=(S.SUBMITTED,), actor=actor, kind="approved", rule_id="GIFT-2.1", now=now
    )
    audit_record(actor=actor, action="gifts.gift_approve", obj=gift, details={"name": gift.name})
    _notify_shop(
        gift.shop_id,
        kind="gift_review",
        title=gettext_noop("赠品「%(gift)s」已审核通过"),
        params={"gift": gift.name},
        url=f"/gifts/{gift.pk}/",
    )
    return gift


@transaction.atomic
def gift_reject(*, gift: Gift, actor, reason: str, now=None) -> Gift:
    if not (reason or "").strip():
        raise DomainError("invalid", _("驳回必须写明原因"), field="reason")
    gift = locks.lock_gift(gift.pk)
    _move(gift, to=S.REJECTED, allowed=(S.SUBMITTED,), actor=actor, kind="rejected", reason=reason, now=now)
    audit_record(actor=actor, action="gifts.gift_reject", obj=gift, details={"reason": reason})
    _notify_shop(
        gift.shop_id,
        kind="gift_review",
        title=gettext_noop("赠品「%(gift)s」已驳回"),
        body="%(reason)s",
        params={"gift": gift.name, "reason": reason},
        url=f"/gifts/{gift.pk}/",
    )
    return gift


@transaction.atomic
def gift_request_revisions(*, gift: Gift, actor, reason: str, now=None) -> Gift:
    if not (reason or "").strip():
        raise DomainError("invalid", _("请写明需要修改的内容"), field="reason")
    gift = locks.lock_gift(gift.pk)
    _move(
        gift,
        to=S.REVISIONS_REQUESTED,
        allowed=(S.SUBMITTED,),
        actor=actor,
        kind="revisions_requested",
        reason=reason,
        now=now,
    )
    audit_record(actor=actor, action="gifts.gift_request_revisions", obj=gift, details={"reason": reason})
    _notify_shop(
        gift.shop_id,
        kind="gift_review",
        title=gettext_noop("赠品「%(gift)s」需要修改"),
        body="%(reason)s",
        params={"gift": gift.name, "reason": reason},
        url=f"/gifts/{gift.pk}/",
    )
    return gift


@transaction.atomic
def gift_domestic_shipping_approve(*, gift: Gift, actor, now=None) -> Gift:
    """GIFT-4.3: a domestic ship-from needs the platform's own assessment."""
    gift = locks.lock_gift(gift.pk)
    if gift.ship_from != Gift.ShipFrom.DOMESTIC:
        raise GiftRuleError("GIFT-4.3", _("只有国内发货的赠品需要国内发货评估"), field="ship_from")
    if gift.domestic_shipping_approved:
        return gift
    if gift.state in (S.REJECTED, S.REMOVED):
        raise TransitionError(_("已驳回或已删除的赠品不能批准国内发货"))
    gift.domestic_shipping_approved = True
    gift.save(update_fields=["domestic_shipping_approved", "updated_at"])
    _event(
        shop_id=gift.shop_id,
        gift=gift,
        kind="domestic_shipping_approved",
        actor=actor,
        at=now,
        rule_id="GIFT-4.3",
    )
    audit_record(actor=actor, action="gifts.gift_domestic_shipping_approve", obj=gift)
    return gift


REMOVABLE = (S.DRAFT, S.SUBMITTED, S.APPROVED, S.REJECTED, S.REVISIONS_REQUESTED, S.SUSPENDED)


@transaction.atomic
def gift_remove(*, gift: Gift, actor, reason: str, rule_id: str = "", now=None) -> Gift:
    """Staff or a job removes a gift (GIFT-2.7, GIFT-3(3)); it can never be attached again."""
    if not (reason or "").strip():
        raise DomainError("invalid", _("删除必须写明原因"), field="reason")
    gift = locks.lock_gift_with_its_products(gift.pk)  # its products are detached below
    _move(
        gift,
        to=S.REMOVED,
        allowed=REMOVABLE,
        actor=actor,
        kind="removed",
        rule_id=rule_id,
        reason=reason,
        now=now,
    )
    audit_record(
        actor=actor, action="gifts.gift_remove", obj=gift, details={"reason": reason, "rule": rule_id}
    )
    _detach_gift_from_products(gift, actor=actor, now=now, rule_id=rule_id, reason=reason)
    _notify_shop(
        gift.shop_id,
        kind="gift_removed",
        title=gettext_noop("赠品「%(gift)s」已删除"),
        body="%(reason)s",
        params={"gift": gift.name, "reason": reason},
        url=f"/gifts/{gift.pk}/",
    )
    return gift


@transaction.atomic
def gift_withdraw(*, membership, actor, gift: Gift, now=None) -> Gift:
    shop = _require_shop_member(membership, main=True)
    if not Gift.objects.filter(pk=gift.pk, shop_id=shop.pk).exists():
        raise NotFound()
    gift = locks.lock_gift_with_its_products(gift.pk)  # its products are detached below
    _move(gift, to=S.REMOVED, allowed=REMOVABLE, actor=actor, kind="withdrawn", reason="商家撤回", now=now)
    _detach_gift_from_products(gift, actor=actor, now=now, reason="商家撤回", by_platform=False)
    return gift


def _detach_gift_from_products(
    gift: Gift, *, actor, now=None, rule_id: str = "", reason: str = "", by_platform: bool = True
) -> list[int]:
    """A gift that may no longer be given (removed, suspended, its category prohibited) leaves every
    product it was attached to: a listing must not go on promising consumers a gift that cannot
    be given (GIFT-2.6), and the listing check would find it in breach (GIFT-2.1..2.3). The
    product stays as it is (listed or not); each detachment is kept in the gift's and the
    product's history. Done by the platform (staff or a job), it is audited and the shop is told
    for each listed product. Called with the products locked before the gift or its category.
    Returns the ids of the products it left."""
    now = now or clock.now()
    links = list(ProductGift.objects.filter(gift=gift).select_related("product").order_by("product_id"))
    for link in links:
        product = link.product
        _event(
            shop_id=gift.shop_id,
            product=product,
            gift=gift,
            kind="gift_detached",
            actor=actor,
            at=now,
            rule_id=rule_id,
            details={"reason": reason, "product_state": product.state},
        )
        if not by_platform:
            continue
        audit_record(
            actor=actor,
            action="gifts.product_gift_detach",
            obj=product,
            details={"gift": gift.pk, "rule": rule_id, "reason": reason, "product_state": product.state},
        )
        if product.state == Product.State.LISTED:
            _notify_shop(
                gift.shop_id,
                kind="gift_detached",
                title=gettext_noop("商品「%(product)s」已解除赠品「%(gift)s」"),
                body="%(reason)s",
                params={"product": product.title, "gift": gift.name, "reason": reason},
                url=f"/gifts/products/{product.pk}/",
                dedupe_key=f"gifts:gift-detached:{product.pk}:{gift.pk}:{now.isoformat()}",
            )
    ProductGift.objects.filter(pk__in=[link.pk for link in links]).delete()
    return [link.product_id for link in links]


@transaction.atomic
def gift_suspend(*, gift: Gift, reason: str, rule_id: str, actor=None, now=None) -> Gift:
    """GIFT-2.3: the licence a gift needs lapsed or was revoked (a job or staff). The gift is
    suspended until a valid licence is approved, and leaves the products it was attached to: a
    suspended gift may not be attached (GIFT-2.1), so no listing goes on offering it.

    The reason is checked again under the locks: the caller listed the gift before it took them,
    and a licence approved meanwhile (or a category that no longer needs one) means there is
    nothing to suspend. The shop's licences are locked with the gift, so an approval in progress
    either commits before the check or waits and then reinstates the gift."""
    now = now or clock.now()
    gift = locks.lock_gift_with_its_licences_and_products(gift.pk)  # its products are detached below
    if gift.state == S.APPROVED and (
        not gift.category.licence_required
        or selectors.shop_has_valid_licence(
            shop_id=gift.shop_id, licence_type=gift.category.licence_type, today=clock.today(now)
        )
    ):
        raise GiftRuleError(
            "GIFT-2.3",
            _("店铺持有赠品所需的有效资质，赠品不予暂停"),
            field="gift",
        )
    _move(
        gift,
        to=S.SUSPENDED,
        allowed=(S.APPROVED,),
        actor=actor,
        kind="suspended",
        rule_id=rule_id,
        reason=reason,
        now=now,
    )
    audit_record(
        actor=actor, action="gifts.gift_suspend", obj=gift, details={"reason": reason, "rule": rule_id}
    )
    _detach_gift_from_products(gift, actor=actor, now=now, rule_id=rule_id, reason=reason)
    _notify_shop(
        gift.shop_id,
        kind="gift_suspended",
        title=gettext_noop("赠品「%(gift)s」已暂停"),
        body="%(reason)s",
        params={"gift": gift.name, "reason": reason},
        url=f"/gifts/{gift.pk}/",
        dedupe_key=f"gifts:suspended:{gift.pk}:{now.isoformat()}",
    )
    return gift


@transaction.atomic
def gift_fair_value_set(
    *, gift: Gift, amount_fen: int, reason: str, actor, overrides_declared: bool = False, now=None
) -> Gift:
    """GIFT-1.2: staff set a fair market value (who/when/why, audited). It overrides a
    merchant-declared value only when that value is clearly off the market; a customs-declared
    value is never overridden."""
    now = now or clock.now()
    if amount_fen is None or amount_fen < 0:
        raise GiftRuleError("GIFT-1.2", _("公允价值必须是非负金额"), field="amount_fen")
    if not (reason or "").strip():
        raise GiftRuleError("GIFT-1.2", _("请写明公允价值的评估依据"), field="reason")
    gift = locks.lock_gift(gift.pk)
    if overrides_declared and gift.value_basis != Gift.ValueBasis.MERCHANT_DECLARED:
        raise GiftRuleError(
            "GIFT-1.2",
            _("只有国内发货的商家声明价值可以被公允价值取代；跨境赠品以海关申报价值为准"),
            field="overrides_declared",
        )
    before = gift_value_resolve(gift)
    gift.fair_value_fen = amount_fen
    gift.fair_value_overrides_declared = overrides_declared
    gift.fair_value_reason = reason.strip()
    gift.fair_value_set_by = actor
    gift.fair_value_set_at = now
    gift.save()
    after = gift_value_resolve(gift)
    details = {
        "before": before.as_dict(),
        "after": after.as_dict(),
        "reason": reason,
        "overrides": overrides_declared,
    }
    _event(
        shop_id=gift.shop_id,
        gift=gift,
        kind="fair_value_set",
        actor=actor,
        at=now,
        rule_id="GIFT-1.2",
        details=details,
    )
    audit_record(actor=actor, action="gifts.gift_fair_value_set", obj=gift, details=details)
    over_cap = checks.lottery_value_over_cap(gift)
    if over_cap is not None and gift.state != S.REMOVED:
        with translation.override(settings.LANGUAGE_CODE):  # stored in the event: the default language
            figures = checks.value_figures_text(over_cap)
        gift_remove(
            gift=gift,
            actor=actor,
            reason=f"GIFT-2.7: 抽奖赠品价值超过人民币50000元（{figures}）",
            rule_id="GIFT-2.7",
            now=now,
        )
        gift.refresh_from_db()
    return gift


# --- products and listings (GIFT-2.1, 2.4, 2.5) ----------------------------------------------------

PRODUCT_FIELDS = (
    "title",
    "subtitle",
    "main_image_shows_gift_alone",
    "gift_more_prominent",
    "promised_ship_hours",
)


def _apply_product_data(product: Product, data: dict) -> None:
    for name in PRODUCT_FIELDS:
        if name in data:
            value = data[name]
            setattr(product, name, value.strip() if isinstance(value, str) else value)
    if not product.title:
        raise DomainError("invalid", _("请填写商品标题"), field="title")


@transaction.atomic
def product_create(*, membership, actor, data: dict, request_key: str | None = None) -> Product:
    """A draft listing. ``request_key`` (the create form's one-time token) makes a repeat of the
    same request return the product it created instead of creating a second one, as
    ``gift_register`` does: two at once queue on the unique key; the second returns the first's."""
    shop = _require_shop_member(membership, main=True)
    request_key = request_key_clean(request_key)
    done = _made_by_request(Product, shop=shop, request_key=request_key)
    if done is not None:
        return done
    product = Product(shop=shop, request_key=request_key)
    _apply_product_data(product, data)
    product, inserted = _insert_once(product, request_key=request_key)
    if not inserted:
        return product
    _event(shop_id=shop.pk, product=product, kind="product_created", actor=actor, to_state=product.state)
    return product


def _refuse_listed_product_breach(before: list[checks.Finding], after: list[checks.Finding]) -> None:
    """A listed product must not be edited into breach (GIFT-2.1..2.7, 4.3): the listing check that
    guards publishing runs on every change to a listed product, and the change is refused if it
    finds anything the product did not already have. Findings it already had are left to staff
    and do not block edits that may well fix them (staff actions that would put a listed product
    in breach take the gift off it themselves: ``_detach_gift_from_products``)."""

    def key(f):
        return (f.code, f.gift_id, f.field)

    known = {key(f) for f in before}
    new = [f for f in after if key(f) not in known]
    if new:
        raise ListingBreach(
            _("商品已上架，此修改会违反赠品规范：%(findings)s") % {"findings": checks.findings_text(new)},
            findings=new,
        )


@transaction.atomic
def product_update(*, membership, actor, product: Product, data: dict, now=None) -> Product:
    shop = _require_shop_member(membership, main=True)
    product = locks.lock_product(product.pk)
    if product.shop_id != shop.pk:
        raise NotFound()
    listed = product.state == Product.State.LISTED
    today = clock.today(now)
    before = checks.product_listing_check(product, today=today) if listed else []
    _apply_product_data(product, data)
    if listed:
        _refuse_listed_product_breach(before, checks.product_listing_check(product, today=today))
    product.save()
    _event(
        shop_id=shop.pk, product=product, kind="product_edited", actor=actor, details={"fields": sorted(data)}
    )
    return product


@transaction.atomic
def product_gift_attach(*, membership, actor, product: Product, gift: Gift, now=None) -> ProductGift:
    """GIFT-2.1: only an approved gift can be attached (a trigger refuses anything else); not one
    whose category is prohibited (GIFT-2.2) or needs a licence the shop lacks (GIFT-2.3)."""
    shop = _require_shop_member(membership, main=True)
    # GIFT-2.3: the licence the attach relies on is locked (FOR SHARE) before the product and the gift,
    # so a revocation at the same moment either comes first (and the check below refuses) or waits and
    # then finds the gift attached, suspends it and takes it off the product.
    product, gift = locks.lock_product_with_gift_and_its_licences(product.pk, gift.pk)
    if product.shop_id != shop.pk:
        raise NotFound()
    if gift.shop_id != shop.pk:
        raise NotFound()
    if gift.state != S.APPROVED:
        raise GiftRuleError(
            "GIFT-2.1",
            _("赠品须报备并审核通过后方可附赠（当前：%(state)s）") % {"state": gift.get_state_display()},
            field="gift",
        )
    # GIFT-2.2: staff may mark a category prohibited after the gift was approved in it.
    if gift.category.is_prohibited:
        raise GiftRuleError(
            "GIFT-2.2", _("类目「%(category)s」禁止作为赠品") % {"category": gift.category.name}, field="gift"
        )
    if gift.ship_from == Gift.ShipFrom.DOMESTIC and not gift.domestic_shipping_approved:
        raise GiftRuleError("GIFT-4.3", _("国内发货的赠品须经平台评估通过后方可附赠"), field="gift")
    today = clock.today(now)
    if gift.category.licence_required and not selectors.shop_has_valid_licence(
        shop_id=shop.pk, licence_type=gift.category.licence_type, today=today
    ):
        raise GiftRuleError(
            "GIFT-2.3",
            _("缺少有效的「%(licence_type)s」资质") % {"licence_type": gift.category.licence_type},
            field="gift",
        )
    if product.state == Product.State.LISTED:
        attached = list(product.gifts.select_related("category").all())
        if gift not in attached:
            _refuse_listed_product_breach(
                checks.product_listing_check(product, gifts=attached, today=today),
                checks.product_listing_check(product, gifts=[*attached, gift], today=today),
            )
    link, created = ProductGift.objects.get_or_create(
        product=product, gift=gift, defaults={"attached_by": actor}
    )
    if created:
        _event(
            shop_id=shop.pk,
            product=product,
            gift=gift,
            kind="gift_attached",
            actor=actor,
            at=now,
            rule_id="GIFT-2.1",
        )
    return link


@transaction.atomic
def product_gift_detach(*, membership, actor, product: Product, gift: Gift) -> None:
    shop = _require_shop_member(membership, main=True)
    product = locks.lock_product(product.pk)
    if product.shop_id != shop.pk:
        raise NotFound()
    deleted, _ = ProductGift.objects.filter(product=product, gift_id=gift.pk).delete()
    if deleted:
        _event(shop_id=shop.pk, product=product, gift=gift, kind="gift_detached", actor=actor)


@transaction.atomic
def product_publish(*, membership, actor, product: Product, now=None) -> Product:
    """Listing goes live only when the listing check finds nothing (GIFT-2.1..2.7, 4.3)."""
    shop = _require_shop_member(membership, main=True)
    product = locks.lock_product(product.pk)
    if product.shop_id != shop.pk:
        raise NotFound()
    findings = checks.product_listing_check(product, today=clock.today(now))
    if findings:
        raise ListingBreach(checks.findings_text(findings), findings=findings)
    old = product.state
    product.state = Product.State.LISTED
    product.save(update_fields=["state"])
    _event(
        shop_id=shop.pk,
        product=product,
        kind="product_listed",
        actor=actor,
        at=now,
        from_state=old,
        to_state=product.state,
    )
    return product


@transaction.atomic
def product_take_down(
    *, product: Product, actor, reason: str, now=None
) -> tuple[Product, list[ViolationOutcome]]:
    """Staff take a listing down; each GIFT-2.4/2.5 finding becomes a violation."""
    now = now or clock.now()
    if not (reason or "").strip():
        raise DomainError("invalid", _("下架必须写明原因"), field="reason")
    product = locks.lock_product(product.pk)
    if product.state == Product.State.TAKEN_DOWN:
        raise TransitionError(_("商品已下架"))
    with translation.override(settings.LANGUAGE_CODE):  # stored in the event: keep the default language
        findings = checks.product_listing_check(product, today=clock.today(now))
    old = product.state
    product.state = Product.State.TAKEN_DOWN
    product.save(update_fields=["state"])
    _event(
        shop_id=product.shop_id,
        product=product,
        kind="product_taken_down",
        actor=actor,
        at=now,
        from_state=old,
        to_state=product.state,
        details={"reason": reason, "findings": [f.as_dict() for f in findings]},
    )
    audit_record(actor=actor, action="gifts.product_take_down", obj=product, details={"reason": reason})
    outcomes = []
    for rule in sorted({f.rule for f in findings if f.rule in ("GIFT-2.4", "GIFT-2.5")}):
        outcomes.append(
            violation_record(
                shop_id=product.shop_id,
                rule_id=rule,
                occurred_at=now,
                source_key=f"product:{product.pk}:takedown:{rule}:{now.isoformat()}",
                product=product,
                evidence={"findings": [f.as_dict() for f in findings if f.rule == rule]},
                penalty_note=reason,
                actor=actor,
            )
        )
    return product, outcomes


# --- qualifications (GIFT-2.3, GIFT-3) --------------------------------------------------------------


def qualification_upload(
    *, membership, actor, licence_type: str, upload, document_request_id=None, request_key=None, now=None
) -> Qualification:
    """GIFT-2.3: the shop uploads a licence document for staff to review.

    ``request_key`` (the upload form's one-time token) stores the licence once: the same form
    posted again (a double click, the browser re-sending it) returns the licence it stored, and
    the repeat's file is dropped. Two at once queue on the unique key; the second returns the
    first's licence."""
    shop = _require_shop_member(membership, main=True)
    licence_type = (licence_type or "").strip()
    if not licence_type:
        raise DomainError("invalid", _("请选择资质类型"), field="licence_type")
    request_key = request_key_clean(request_key)
    done = _made_by_request(Qualification, shop=shop, request_key=request_key)
    if done is not None:
        return done
    # Slow I/O (hashing, writing the file) stays outside the transaction; the file is deleted
    # again if the rows cannot be committed.
    stored = store_upload(upload, folder=f"gifts/qualifications/{shop.pk}")
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    qualification = Qualification.objects.create(
                        shop=shop,
                        licence_type=licence_type,
                        storage_name=stored.storage_name,
                        original_name=stored.original_name,
                        content_type=stored.content_type,
                        size_bytes=stored.size_bytes,
                        sha256=stored.sha256,
                        uploaded_by=actor,
                        request_key=request_key,
                    )
            except IntegrityError:
                # A concurrent submit of the same form inserted first and has committed by now.
                done = _made_by_request(Qualification, shop=shop, request_key=request_key)
                if done is None:
                    raise
                raise _AlreadyStored(done) from None
            _event(
                shop_id=shop.pk,
                qualification=qualification,
                kind="qualification_uploaded",
                actor=actor,
                at=now,
                to_state=qualification.state,
                rule_id="GIFT-2.3",
            )
            _fulfil_document_requests(
                shop=shop, qualification=qualification, request_id=document_request_id, actor=actor, now=now
            )
    except _AlreadyStored as done:
        delete_stored(stored.storage_name)
        return done.qualification
    except BaseException:
        delete_stored(stored.storage_name)
        raise
    return qualification


class _AlreadyStored(Exception):
    """This upload form was already stored by a concurrent submit: its file is dropped."""

    def __init__(self, qualification: Qualification):
        super().__init__(qualification.pk)
        self.qualification = qualification


def _fulfil_document_requests(*, shop, qualification, request_id, actor, now):
    qs = DocumentRequest.objects.filter(gift__shop=shop, state=DocumentRequest.State.OPEN)
    if request_id:
        qs = qs.filter(pk=request_id)
        if not qs.exists():
            raise NotFound("document request")
    else:
        qs = qs.filter(gift__category__licence_type=qualification.licence_type)
    for req_id in qs.order_by("pk").values_list("pk", flat=True):
        req = locks.lock_document_request(req_id)
        if req.state != DocumentRequest.State.OPEN:
            continue
        _document_request_move(
            req, to=DocumentRequest.State.FULFILLED, qualification=qualification, actor=actor, now=now
        )


def _document_request_move(req: DocumentRequest, *, to: str, qualification: Qualification, actor, now):
    """A locked demand for documents becomes fulfilled by ``qualification``, or open again after
    that document was rejected; the change is kept as an event of the gift (GIFT-3)."""
    fulfilled = to == DocumentRequest.State.FULFILLED
    old = req.state
    req.state = to
    req.fulfilled_by = qualification if fulfilled else None
    req.closed_at = (now or clock.now()) if fulfilled else None
    req.save(update_fields=["state", "fulfilled_by", "closed_at"])
    _event(
        shop_id=qualification.shop_id,
        gift_id=req.gift_id,
        qualification=qualification,
        kind="document_request_fulfilled" if fulfilled else "document_request_reopened",
        actor=actor,
        at=now,
        from_state=old,
        to_state=to,
        rule_id="GIFT-3",
        details={} if fulfilled else {"deadline_at": req.deadline_at.isoformat()},
    )


@transaction.atomic
def qualification_approve(
    *, qualification: Qualification, actor, licence_number: str, valid_until: dt.date, now=None
) -> Qualification:
    now = now or clock.now()
    licence_number = (licence_number or "").strip()
    if not licence_number:
        raise GiftRuleError("GIFT-2.3", _("请填写许可证编号"), field="licence_number")
    if valid_until is None or valid_until < clock.today(now):
        raise GiftRuleError("GIFT-2.3", _("许可证已过期，不能审核通过"), field="valid_until")
    q = locks.lock_qualification(qualification.pk)
    if q.state != Qualification.State.PENDING:
        raise TransitionError(_("只有待审核的资质可以审核"))
    q.state = Qualification.State.APPROVED
    q.licence_number = licence_number
    q.valid_until = valid_until
    q.reviewed_by = actor
    q.reviewed_at = now
    q.save()
    _event(
        shop_id=q.shop_id,
        qualification=q,
        kind="qualification_approved",
        actor=actor,
        at=now,
        from_state="pending",
        to_state="approved",
        rule_id="GIFT-2.3",
        details={"licence_number": licence_number, "valid_until": valid_until.isoformat()},
    )
    audit_record(
        actor=actor,
        action="gifts.qualification_approve",
        obj=q,
        details={"licence_number": licence_number, "valid_until": valid_until.isoformat()},
    )
    # Gifts suspended for want of this licence are back in force.
    for gift in Gift.objects.filter(
        shop_id=q.shop_id, state=S.SUSPENDED, category__licence_type=q.licence_type
    ).order_by("pk"):
        locked = locks.lock_gift(gift.pk)
        if locked.state == S.SUSPENDED:
            _move(
                locked,
                to=S.APPROVED,
                allowed=(S.SUSPENDED,),
                actor=actor,
                kind="reinstated",
                rule_id="GIFT-2.3",
                reason="资质已更新",
                now=now,
            )
    _notify_shop(
        q.shop_id,
        kind="gift_qualification",
        title=gettext_noop("资质「%(licence)s」已审核通过"),
        params={"licence": q.licence_type},
        url="/gifts/qualifications/",
    )
    return q


@transaction.atomic
def qualification_reject(*, qualification: Qualification, actor, reason: str, now=None) -> Qualification:
    if not (reason or "").strip():
        raise DomainError("invalid", _("驳回必须写明原因"), field="reason")
    q = locks.lock_qualification(qualification.pk)
    if q.state != Qualification.State.PENDING:
        raise TransitionError(_("只有待审核的资质可以审核"))
    q.state = Qualification.State.REJECTED
    q.reject_reason = reason.strip()
    q.reviewed_by = actor
    q.reviewed_at = now or clock.now()
    q.save()
    _event(
        shop_id=q.shop_id,
        qualification=q,
        kind="qualification_rejected",
        actor=actor,
        at=now,
        from_state="pending",
        to_state="rejected",
        details={"reason": reason},
    )
    audit_record(actor=actor, action="gifts.qualification_reject", obj=q, details={"reason": reason})
    _reopen_document_requests(qualification=q, actor=actor, now=now)
    _notify_shop(
        q.shop_id,
        kind="gift_qualification",
        title=gettext_noop("资质「%(licence)s」已驳回"),
        body="%(reason)s",
        params={"licence": q.licence_type, "reason": reason},
        url="/gifts/qualifications/",
    )
    return q


@transaction.atomic
def qualification_revoke(*, qualification: Qualification, actor, reason: str, now=None) -> Qualification:
    """GIFT-2.3: staff learn an approved licence was revoked by its issuing authority or is not
    valid. From now on it counts for nothing: the gifts that needed it are suspended and leave
    their listings, as when a licence lapses (unless the shop holds another valid licence of the
    type). Audited; the shop is told."""
    now = now or clock.now()
    if not (reason or "").strip():
        raise DomainError("invalid", _("吊销必须写明原因"), field="reason")
    # The shop's other licences of the type are locked too: whether one of them is still valid decides
    # below whether the gifts that needed this one are suspended, so a revocation of one of them at the
    # same moment must queue with this one rather than each reading the other as still valid.
    q = locks.lock_qualification_with_its_siblings(qualification.pk)
    if q.state != Qualification.State.APPROVED:
        raise TransitionError(_("只有已通过的资质可以吊销"))
    q.state = Qualification.State.REVOKED
    q.revoke_reason = reason.strip()
    q.revoked_by = actor if (actor is not None and actor.is_authenticated) else None
    q.revoked_at = now
    q.save(update_fields=["state", "revoke_reason", "revoked_by", "revoked_at"])
    _event(
        shop_id=q.shop_id,
        qualification=q,
        kind="qualification_revoked",
        actor=actor,
        at=now,
        from_state="approved",
        to_state="revoked",
        rule_id="GIFT-2.3",
        details={"reason": q.revoke_reason, "licence_number": q.licence_number},
    )
    audit_record(
        actor=actor,
        action="gifts.qualification_revoke",
        obj=q,
        details={
            "reason": q.revoke_reason,
            "licence_type": q.licence_type,
            "licence_number": q.licence_number,
        },
    )
    _notify_shop(
        q.shop_id,
        kind="gift_qualification",
        title=gettext_noop("资质「%(licence)s」已吊销"),
        body="%(reason)s",
        params={"licence": q.licence_type, "reason": q.revoke_reason},
        url="/gifts/qualifications/",
    )
    _suspend_gifts_lacking_licence(
        today=clock.today(now),
        now=now,
        actor=actor,
        reason=f"GIFT-2.3: 赠品所需资质「{q.licence_type}」已被吊销",
        shop_id=q.shop_id,
        category__licence_type=q.licence_type,
    )
    return q


def _reopen_document_requests(*, qualification: Qualification, actor, now=None) -> None:
    """GIFT-3(3): a rejected document provides nothing. A demand it fulfilled is open again until
    its own deadline; past it, document_request_expire_run removes the gift on its next run."""
    fulfilled = DocumentRequest.objects.filter(
        fulfilled_by=qualification, state=DocumentRequest.State.FULFILLED
    ).order_by("pk")
    for req_id in fulfilled.values_list("pk", flat=True):
        req = locks.lock_document_request(req_id)
        if req.state != DocumentRequest.State.FULFILLED or req.fulfilled_by_id != qualification.pk:
            continue
        if DocumentRequest.objects.filter(gift_id=req.gift_id, state=DocumentRequest.State.OPEN).exists():
            continue  # staff have demanded documents for this gift again: that demand governs
        _document_request_move(
            req, to=DocumentRequest.State.OPEN, qualification=qualification, actor=actor, now=now
        )
        _notify_shop(
            qualification.shop_id,
            kind="gift_documents_requested",
            title=gettext_noop("资质已驳回：请重新提供赠品「%(gift)s」的资质"),
            body=gettext_noop("截止 %(deadline)s，逾期未提供，赠品将被删除。"),
            params={"gift": req.gift.name, "deadline": f"{clock.local(req.deadline_at):%Y-%m-%d %H:%M}"},
            url="/gifts/qualifications/",
            dedupe_key=f"gifts:document-request-reopened:{req.pk}:{qualification.pk}",
        )


EXPIRY_NOTICE_DAYS = 30


def qualification_expiry_run(*, today: dt.date | None = None) -> dict:
    """Daily: tell shops 30 days before a licence expires; suspend gifts whose licence lapsed
    (GIFT-2.3). Safe to run twice: notices are deduplicated, suspension is a state transition."""
    today = today or clock.today()
    noticed = 0
    horizon = today + dt.timedelta(days=EXPIRY_NOTICE_DAYS)
    expiring = selectors.valid_licence_qs(today=today).filter(valid_until__lte=horizon).order_by("pk")
    for q in expiring:
        sent = notification_send(
            kind="gift_licence_expiring",
            title=gettext_noop("资质「%(licence)s」将于 %(date)s 到期"),
            body=gettext_noop("到期后依赖该资质的赠品将被暂停并从商品中解除，请及时上传新的资质文件。"),
            params={"licence": q.licence_type, "date": q.valid_until},
            url="/gifts/qualifications/",
            organization=q.shop,
            dedupe_key=f"gifts:licence-expiring:{q.pk}",
            email=True,
        )
        noticed += sent is not None
    suspended = _suspend_gifts_lacking_licence(today=today, now=clock.start_of_day(today))
    return {"noticed": noticed, "suspended": suspended}


def _suspend_gifts_lacking_licence(
    *, today: dt.date, now: dt.datetime, actor=None, reason: str = "", **filters
) -> int:
    """GIFT-2.3: suspend the approved gifts (narrowed by ``filters``) whose shop holds no valid
    licence of the type their category needs today; each leaves its listings (``gift_suspend``)."""
    reason = reason or "GIFT-2.3: 赠品所需资质已过期或缺失"
    suspended = 0
    for gift_id in (
        selectors.gifts_lacking_licence(today=today).filter(**filters).values_list("pk", flat=True)
    ):
        try:
            gift_suspend(gift=Gift(pk=gift_id), reason=reason, rule_id="GIFT-2.3", actor=actor, now=now)
            suspended += 1
        except TransitionError:
            continue  # changed state meanwhile (withdrawn, removed): nothing to suspend
        except GiftRuleError:
            continue  # the shop holds a valid licence by now, or the category needs none
    return suspended


@transaction.atomic
def document_request_create(
    *, gift: Gift, actor, reason: str, deadline_at: dt.datetime, now=None
) -> DocumentRequest:
    """GIFT-3(3): the platform demands the gift's qualification documents by a deadline."""
    now = now or clock.now()
    if not (reason or "").strip():
        raise DomainError("invalid", _("请写明索取原因"), field="reason")
    if deadline_at <= now:
        raise DomainError("invalid", _("截止时间必须晚于现在"), field="deadline_at")
    gift = locks.lock_gift(gift.pk)
    if gift.state in (S.REMOVED, S.REJECTED):
        raise TransitionError(_("已删除或已驳回的赠品无需索取资质"))
    if DocumentRequest.objects.filter(gift=gift, state=DocumentRequest.State.OPEN).exists():
        raise Conflict("GIFT-3", _("该赠品已有待提供的资质索取"), field="gift")
    req = DocumentRequest.objects.create(
        gift=gift, reason=reason.strip(), deadline_at=deadline_at, requested_by=actor
    )
    _event(
        shop_id=gift.shop_id,
        gift=gift,
        kind="documents_requested",
        actor=actor,
        at=now,
        to_state="open",
        rule_id="GIFT-3",
        details={"reason": reason, "deadline_at": deadline_at.isoformat()},
    )
    audit_record(
        actor=actor,
        action="gifts.document_request_create",
        obj=req,
        details={"gift": gift.pk, "deadline_at": deadline_at.isoformat()},
    )
    _notify_shop(
        gift.shop_id,
        kind="gift_documents_requested",
        title=gettext_noop("平台要求提供赠品「%(gift)s」的资质"),
        body=gettext_noop("%(reason)s（截止 %(deadline)s）"),
        params={
            "gift": gift.name,
            "reason": reason,
            "deadline": f"{clock.local(deadline_at):%Y-%m-%d %H:%M}",
        },
        url="/gifts/qualifications/",
    )
    return req


def document_request_expire_run(*, now: dt.datetime | None = None) -> int:
    """GIFT-3(3): no documents by the deadline → the gift is removed. Idempotent."""
    now = now or clock.now()
    removed = 0
    due = DocumentRequest.objects.filter(state=DocumentRequest.State.OPEN, deadline_at__lt=now).order_by("pk")
    for req_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            req = locks.lock_document_request(req_id)
            if req.state != DocumentRequest.State.OPEN:
                continue
            req.state = DocumentRequest.State.EXPIRED
            req.closed_at = now
            req.save(update_fields=["state", "closed_at"])
            gift = req.gift
            _event(
                shop_id=gift.shop_id,
                gift=gift,
                kind="document_request_expired",
                at=now,
                from_state="open",
                to_state="expired",
                rule_id="GIFT-3",
            )
            if gift.state != S.REMOVED:
                gift_remove(
                    gift=gift,
                    actor=None,
                    reason="GIFT-3: 未在期限内提供资质，删除赠品",
                    rule_id="GIFT-3",
                    now=now,
                )
                removed += 1
    return removed


# --- orders and shipping (GIFT-2.6, GIFT-4) -----------------------------------------------------------


@transaction.atomic
def order_upsert(
    *,
    shop: Organization,
    order_no: str,
    product: Product,
    paid_amount_fen: int,
    paid_at: dt.datetime,
    signed_for_at: dt.datetime | None = None,
    gift_lines: list[tuple[Gift, int]] | None = None,
) -> Order:
    """The order system tells us about an order; its gifts become shipments due with the product's
    promised ship time (GIFT-4.2). Re-sending the same order updates only the signed-for time."""
    if product.shop_id != shop.pk:
        raise NotFound("product")
    if paid_amount_fen is None or paid_amount_fen < 0:
        raise DomainError("invalid", _("实付金额不能为负"), field="paid_amount_fen")
    # Order numbers are the shop's own (unique per shop): another shop's order never matches.
    order = Order.objects.select_for_update().filter(shop=shop, order_no=order_no).first()
    created = False
    if order is None:
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    order_no=order_no,
                    shop=shop,
                    product=product,
                    paid_amount_fen=paid_amount_fen,
                    paid_at=paid_at,
                    ship_by_at=paid_at + dt.timedelta(hours=product.promised_ship_hours),
                    signed_for_at=signed_for_at,
                )
                created = True
        except IntegrityError:
            # The order system sent the same order twice at once: the other call inserted it;
            # wait for its row and treat this call as the re-send it is.
            order = Order.objects.select_for_update().get(shop=shop, order_no=order_no)
    if not created:
        if order.paid_amount_fen != paid_amount_fen or order.product_id != product.pk:
            raise Conflict("GIFT-ORDER-MISMATCH", _("订单号已存在且金额或商品不一致"), field="order_no")
        if signed_for_at and order.signed_for_at is None:
            order.signed_for_at = signed_for_at
            order.save(update_fields=["signed_for_at"])
    if gift_lines is None:
        gift_lines = [(g, g.quantity_per_order or 1) for g in product.gifts.all()]
    for gift, quantity in gift_lines:
        if gift.shop_id != shop.pk:
            raise NotFound("gift")
        GiftShipment.objects.get_or_create(order=order, gift=gift, defaults={"quantity": quantity or 1})
    return order


def _judge_shipment(shipment: GiftShipment, *, occurred_at, actor=None, kind: str) -> ViolationOutcome:
    gift = shipment.gift
    due = shipment.due_by_at
    if shipment.late_cause == GiftShipment.LateCause.CUSTOMS_UNREGISTERED:
        rule, note = (
            "GIFT-4.1",
            "未向海关报备导致清关异常无法及时发货，依据《【全球购】发货行为规则》“发货超时”处理",
        )
    else:
        rule, note = "GIFT-4.2", "赠品发货时间与交易商品承诺不一致，根据赠品价值依据“违背承诺”处理"
    return violation_record(
        shop_id=shipment.order.shop_id,
        rule_id=rule,
        occurred_at=occurred_at,
        source_key=f"shipment:{shipment.pk}:{kind}",
        gift=gift,
        evidence={
            "order_no": shipment.order.order_no,
            "due_by_at": due.isoformat(),
            "shipped_at": shipment.shipped_at.isoformat() if shipment.shipped_at else None,
            "kind": kind,
        },
        penalty_note=note,
        actor=actor,
        weigh_by_value=True,
        quantity=shipment.quantity,
    )


def _annul_not_shipped_judgement(
    shipment: GiftShipment, *, actor=None, now=None
) -> ViolationAnnulment | None:
    """GIFT-4.2: a gift the overdue job judged "not shipped" turns out to have left by its due
    time (the shipment was recorded late, not made late). The violation stays as evidence and
    gets an annulment naming the shipment; from then on it counts for nothing. The shop is told,
    as it was told of the violation. A late shipping time keeps the violation (the caller checks).

    Called with the shipment locked."""
    now = now or clock.now()
    violation = Violation.objects.filter(source_key=f"shipment:{shipment.pk}:not_shipped").first()
    if violation is None:  # not judged under the rules (GIFT-6.2): nothing to annul
        return None
    if ViolationAnnulment.objects.filter(violation=violation).exists():
        return None  # annulled once; the one-to-one key backs this
    due = shipment.due_by_at
    reason = (
        f"GIFT-4.2: 发货时间 {clock.local(shipment.shipped_at):%Y-%m-%d %H:%M} 不晚于应发货时间 "
        f"{clock.local(due):%Y-%m-%d %H:%M}，超时判定后才登记发货，撤销“{violation.violation_type}”违规记录"
    )
    details = {
        "order_no": shipment.order.order_no,
        "due_by_at": due.isoformat(),
        "shipped_at": shipment.shipped_at.isoformat(),
        "tracking_no": shipment.tracking_no,
        "judged_at": shipment.judged_at.isoformat() if shipment.judged_at else None,
        "weight": violation.weight,
    }
    annulment = ViolationAnnulment.objects.create(
        violation=violation,
        cause=ViolationAnnulment.Cause.SHIPPED_IN_TIME,
        reason=reason,
        shipment=shipment,
        details=details,
        annulled_at=now,
        annulled_by=actor if (actor is not None and actor.is_authenticated) else None,
    )
    _event(
        shop_id=violation.shop_id,
        gift_id=violation.gift_id,
        kind="violation_annulled",
        actor=actor,
        at=now,
        rule_id=violation.rule_id,
        details={"violation_id": violation.pk, "reason": reason, **details},
    )
    audit_record(
        actor=actor,
        action="gifts.violation_annul",
        obj=violation,
        details={"cause": annulment.cause, "shipment": shipment.pk, **details},
    )
    _notify_shop(
        violation.shop_id,
        kind="gift_violation",
        title=gettext_noop("违规记录已撤销：%(type)s（%(rule)s）"),
        body="%(reason)s",
        params={"type": violation.violation_type, "rule": violation.rule_id, "reason": reason},
        url="/gifts/violations/",
        dedupe_key=f"gifts:violation-annulled:{violation.pk}",
    )
    return annulment


SHIPPED_AT_CLOCK_SKEW = dt.timedelta(minutes=5)  # the order system's clock may run a little ahead


@transaction.atomic
def gift_shipment_mark_shipped(
    *,
    shipment: GiftShipment,
    shipped_at: dt.datetime,
    tracking_no: str,
    late_cause: str = "",
    actor=None,
    request_key: str | None = None,
) -> tuple[GiftShipment, ViolationOutcome | None]:
    """GIFT-4.2: the order system records a gift shipped; a late one is judged.

    ``request_key`` (the API's Idempotency-Key) tells the order system's retry of this very call
    (its answer lost) from a second record: the retry raises ``AlreadyDone`` with the shipment,
    checked under the shipment's row lock; the key with another record (409
    ``IDEMPOTENCY-KEY-REUSED``), and any other record of a shipped gift, is refused."""
    shipment = locks.lock_shipment(shipment.pk)
    request_key = request_key_clean(request_key)
    if shipment.shipped_at is not None:
        if (
            request_key
            and GiftEvent.objects.filter(
                gift_id=shipment.gift_id,  # the gift's index: the event table holds every gift's history
                kind="gift_shipped",
                details__shipment=shipment.pk,
                details__request_key=request_key,
            ).exists()
        ):
            # The key names one record: the same key with another record was not carried out.
            recorded = (shipment.shipped_at, shipment.tracking_no, shipment.late_cause)
            if recorded != (shipped_at, (tracking_no or "").strip(), late_cause or ""):
                raise Conflict(
                    REQUEST_KEY_REUSED,
                    _("该请求键已用于另一条发货记录。"),
                    field="request_key",
                )
            raise AlreadyDone(shipment)
        raise Conflict("GIFT-4.2", _("该赠品已登记发货"), field="shipment")
    if not (tracking_no or "").strip():
        raise DomainError("invalid", _("请填写运单号"), field="tracking_no")
    # A shipping time before the payment, or still to come, would decide GIFT-4.2 on a date
    # that never happened.
    if shipped_at < shipment.order.paid_at:
        raise DomainError("invalid", _("发货时间不能早于订单付款时间"), field="shipped_at")
    if shipped_at > clock.now() + SHIPPED_AT_CLOCK_SKEW:
        raise DomainError("invalid", _("发货时间不能晚于当前时间"), field="shipped_at")
    if (
        late_cause == GiftShipment.LateCause.CUSTOMS_UNREGISTERED
        and shipment.gift.ship_from == Gift.ShipFrom.DOMESTIC
    ):
        raise GiftRuleError("GIFT-4.1", _("国内发货的赠品不经海关, 不适用海关报备原因"), field="late_cause")
    shipment.shipped_at = shipped_at
    shipment.tracking_no = tracking_no.strip()
    shipment.late_cause = late_cause or ""
    outcome = None
    fields = ["shipped_at", "tracking_no", "late_cause"]
    if shipped_at > shipment.due_by_at and shipment.judged_at is None:
        outcome = _judge_shipment(shipment, occurred_at=shipment.due_by_at, actor=actor, kind="late")
        shipment.judged_at = clock.now()
        fields.append("judged_at")
    elif shipment.judged_at is not None and shipped_at <= shipment.due_by_at:
        # The overdue job judged it "not shipped" before this record arrived; the parcel left in
        # time. Both run under the shipment's row lock, so whichever comes second sees the other.
        _annul_not_shipped_judgement(shipment, actor=actor)
    shipment.save(update_fields=fields)
    gift = shipment.gift
    if gift.category.licence_required and not selectors.shop_has_valid_licence(
        shop_id=gift.shop_id, licence_type=gift.category.licence_type, today=clock.today(shipped_at)
    ):
        violation_record(
            shop_id=gift.shop_id,
            rule_id="GIFT-2.3",
            occurred_at=shipped_at,
            source_key=f"shipment:{shipment.pk}:no-licence",
            gift=gift,
            evidence={"order_no": shipment.order.order_no, "licence_type": gift.category.licence_type},
            penalty_note="附赠需资质的赠品时无有效资质，依据“扰乱平台秩序”处理",
            actor=actor,
        )
    _event(
        shop_id=gift.shop_id,
        gift=gift,
        kind="gift_shipped",
        actor=actor,
        details={
            "order_no": shipment.order.order_no,
            "tracking_no": shipment.tracking_no,
            "shipment": shipment.pk,
            **({"request_key": request_key} if request_key else {}),
        },
    )
    return shipment, outcome


@transaction.atomic
def gift_shipment_agree_ship_by(
    *, shipment: GiftShipment, agreed_ship_by_at: dt.datetime, note: str, actor=None, now=None
) -> GiftShipment:
    """GIFT-4.2 "unless agreed otherwise": the merchant and the consumer agreed another shipping
    time for this gift (the order system records it). Only while the promise still stands: an
    agreement written after the due time passed would excuse a breach after the fact."""
    now = now or clock.now()
    if not (note or "").strip():
        raise DomainError("invalid", _("请写明与消费者约定的内容"), field="note")
    shipment = locks.lock_shipment(shipment.pk)
    if shipment.shipped_at is not None:
        raise Conflict("GIFT-4.2", _("该赠品已登记发货"), field="shipment")
    if shipment.judged_at is not None or now > shipment.due_by_at:
        raise GiftRuleError("GIFT-4.2", _("发货时限已过, 不能再约定新的发货时间"), field="agreed_ship_by_at")
    if agreed_ship_by_at <= now:
        raise DomainError("invalid", _("约定的发货时间须晚于当前时间"), field="agreed_ship_by_at")
    old = shipment.due_by_at
    shipment.agreed_ship_by_at = agreed_ship_by_at
    shipment.save(update_fields=["agreed_ship_by_at"])
    _event(
        shop_id=shipment.order.shop_id,
        gift_id=shipment.gift_id,
        kind="shipment_ship_by_agreed",
        actor=actor,
        at=now,
        rule_id="GIFT-4.2",
        details={
            "order_no": shipment.order.order_no,
            "from": old.isoformat(),
            "to": agreed_ship_by_at.isoformat(),
            "note": note.strip()[:300],
        },
    )
    return shipment


def gift_shipment_overdue_run(*, now: dt.datetime | None = None) -> int:
    """GIFT-2.6/4.2: a gift not shipped by its due time is judged once (违背承诺)."""
    now = now or clock.now()
    due = (
        GiftShipment.objects.filter(shipped_at__isnull=True, judged_at__isnull=True)
        .annotate(due=Coalesce("agreed_ship_by_at", F("order__ship_by_at")))
        .filter(due__lt=now)
        .order_by("pk")
    )
    judged = 0
    for shipment_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            shipment = locks.lock_shipment(shipment_id)
            if shipment.shipped_at is not None or shipment.judged_at is not None:
                continue
            _judge_shipment(shipment, occurred_at=shipment.due_by_at, kind="not_shipped")
            shipment.judged_at = now
            shipment.save(update_fields=["judged_at"])
            judged += 1
    return judged


@transaction.atomic
def gift_shipment_mark_fake(*, shipment: GiftShipment, actor, note: str) -> ViolationOutcome:
    """GIFT-4.2: fake shipping (虚假发货) found by staff."""
    if not (note or "").strip():
        raise DomainError("invalid", _("请写明核查说明"), field="note")
    shipment = locks.lock_shipment(shipment.pk)
    if shipment.shipped_at is None:
        # Never shipped is not fake shipping: the overdue job judges it as late (GIFT-4.2).
        raise Conflict("GIFT-4.2", _("该赠品尚未登记发货, 不能认定为虚假发货"), field="shipment")
    shipment.fake_shipping = True
    shipment.save(update_fields=["fake_shipping"])
    audit_record(actor=actor, action="gifts.shipment_mark_fake", obj=shipment, details={"note": note})
    return violation_record(
        shop_id=shipment.order.shop_id,
        rule_id="GIFT-4.2",
        occurred_at=shipment.shipped_at or clock.now(),
        source_key=f"shipment:{shipment.pk}:fake",
        gift=shipment.gift,
        evidence={"order_no": shipment.order.order_no, "tracking_no": shipment.tracking_no, "note": note},
        penalty_note="虚假发货，根据赠品价值依据“违背承诺”处理",
        actor=actor,
        weigh_by_value=True,
        quantity=shipment.quantity,
    )


# --- spot checks (GIFT-3) ---------------------------------------------------------------------------

SPOT_CHECK_RULES = {
    SpotCheck.Outcome.UNQUALIFIED_MAKER: (
        "GIFT-3.1",
        "赠品由不具备生产资质的生产商生产，依据“商品质量不合格”处理",
    ),
    SpotCheck.Outcome.SUBSTANDARD: (
        "GIFT-3.1",
        "赠品存在质量问题或不符合强制性标准，依据“商品质量不合格”处理",
    ),
    SpotCheck.Outcome.NOT_AS_DESCRIBED: ("GIFT-3.2", "赠品实物与描述不符，依据“商品发布违规”处理"),
    SpotCheck.Outcome.MISSING_INFO: ("GIFT-3.2", "未说明赠品必须说明的信息，依据“商品发布违规”处理"),
}


@transaction.atomic
def spot_check_record(
    *, gift: Gift, actor, outcome: str, notes: str = "", checked_at=None
) -> tuple[SpotCheck, ViolationOutcome | None]:
    checked_at = checked_at or clock.now()
    if outcome not in SpotCheck.Outcome.values:
        raise DomainError("invalid", _("未知的抽检结果"), field="outcome")
    gift = locks.lock_gift(gift.pk)
    check = SpotCheck.objects.create(
        gift=gift, outcome=outcome, notes=notes, checked_by=actor, checked_at=checked_at
    )
    result = None
    if outcome in SPOT_CHECK_RULES:
        rule, note = SPOT_CHECK_RULES[outcome]
        result = violation_record(
            shop_id=gift.shop_id,
            rule_id=rule,
            occurred_at=checked_at,
            source_key=f"spotcheck:{check.pk}",
            gift=gift,
            evidence={"spot_check": check.pk, "outcome": outcome, "notes": notes},
            penalty_note=note,
            actor=actor,
        )
        if result.violation is not None:
            SpotCheck.objects.filter(pk=check.pk).update(violation=result.violation)
            check.violation = result.violation
    _event(
        shop_id=gift.shop_id,
        gift=gift,
        kind="spot_checked",
        actor=actor,
        at=checked_at,
        rule_id="GIFT-3",
        details={"outcome": outcome, "notes": notes},
    )
    audit_record(actor=actor, action="gifts.spot_check_record", obj=check, details={"outcome": outcome})
    return check, result


# --- disputes (GIFT-5) ----------------------------------------------------------------------------


def dispute_preview(dispute: GiftDispute, *, line_quantity=LOOK_UP):
    """GIFT-5: the compensation as of now, from one unit's value (GIFT-1.2) times the quantity due on
    the dispute's order (GIFT-2.4); on a return, less the units returned intact (GIFT-5.4). A return
    counts the units due when it was recorded (``units_promised``), the ones its intact count is of.
    ``line_quantity``: the order's gift line quantity, when a list has read it already."""
    value = gift_value_on_order(dispute.gift, order_id=dispute.order_id, line_quantity=line_quantity)
    return compensation_calculate(
        kind=dispute.kind,
        unit_value_fen=value.unit.amount_fen,
        quantity=dispute.units_promised or value.quantity,
        value_basis=value.basis,
        paid_amount_fen=dispute.order.paid_amount_fen,
        units_returned_intact=dispute.units_returned_intact,
    )


def _refuse_units_intact_out_of_range(dispute: GiftDispute) -> None:
    """GIFT-5.4: units returned intact are counted on a return, 0 up to the units due on the order.
    The check ``gifts_giftdispute_units_intact_in_range`` is the backstop."""
    intact, quantity = dispute.units_returned_intact, dispute.units_promised
    if intact is None:
        return
    if dispute.kind not in GiftDispute.RETURN_KINDS:
        raise GiftRuleError(
            "GIFT-5.4",
            _("完好退回的赠品数量只适用于退货（%(kinds)s）")
            % {"kinds": "、".join(str(GiftDispute.Kind(k).label) for k in GiftDispute.RETURN_KINDS)},
            field="units_returned_intact",
        )
    if quantity is None or not units_returned_intact_in_range(intact, quantity):
        raise GiftRuleError(
            "GIFT-5.4",
            _("完好退回的赠品数量应在 0 到该订单应有的赠品数量 %(quantity)s 之间，而不是 %(intact)s")
            % {"quantity": quantity, "intact": intact},
            field="units_returned_intact",
        )


def _refuse_second_compensation(
    *, order_id: int, gift_id: int, exclude_pk: int | None = None, field: str = "decision"
) -> None:
    """GIFT-5.3: the consumer is compensated the gift's value once per order and gift, whichever
    kinds of dispute were opened about it. The partial unique constraint
    ``gifts_giftdispute_compensated_once`` is the backstop; this gives the error a reader can act on."""
    paid = GiftDispute.objects.filter(
        order_id=order_id, gift_id=gift_id, decision=GiftDispute.Decision.UPHELD, compensation_fen__gt=0
    )
    if exclude_pk is not None:
        paid = paid.exclude(pk=exclude_pk)
    earlier = paid.order_by("pk").first()
    if earlier is not None:
        raise GiftRuleError(
            "GIFT-5.3",
            _("该订单的该赠品已因「%(kind)s」赔付 %(amount)s，同一订单的同一赠品只按赠品价值赔付一次")
            % {"kind": earlier.get_kind_display(), "amount": format_fen(earlier.compensation_fen)},
            field=field,
        )


def dispute_open(
    *,
    shop: Organization | None,
    actor,
    order_no: str,
    paid_amount_fen: int,
    paid_at: dt.datetime | None,
    product_id: int,
    gift_id: int,
    signed_for_at: dt.datetime | None,
    kind: str,
    consumer_claim: str = "",
    units_returned_intact: int | None = None,
    now=None,
) -> tuple[GiftDispute, bool]:
    """The order system opens a gift dispute. ``shop`` is the caller's organization (an API key
    of the gift's shop); None for staff. Retries return the same dispute (created=False).
    On a return, ``units_returned_intact`` is how many of the units due on the order came back
    intact (GIFT-5.4; None: not stated, deducted as none).

    GIFT-5.1: the order's product dispute is never read or written here.
    """
    now = now or clock.now()
    if kind not in GiftDispute.Kind.values:
        raise DomainError("invalid", _("未知的争议类型"), field="kind")
    gifts = Gift.objects.select_related("category")
    if shop is not None:
        gifts = gifts.filter(shop=shop)
    gift = gifts.filter(pk=gift_id).first()
    if gift is None:
        raise NotFound("gift", field="gift_id")
    product = Product.objects.filter(pk=product_id, shop_id=gift.shop_id).first()
    if product is None:
        raise NotFound("product", field="product_id")
    with transaction.atomic():
        # GIFT-4.2: shipping duties come from the order system's own order (order_upsert through
        # the orders API). A dispute only records the order it is about: creating a shipment here
        # would make the hourly overdue job judge a gift that was returned, signed for or never
        # owed as "not shipped" (违背承诺).
        order = order_upsert(
            shop=gift.shop,
            order_no=order_no,
            product=product,
            paid_amount_fen=paid_amount_fen,
            paid_at=paid_at or now,
            signed_for_at=signed_for_at,
            gift_lines=[],
        )
        existing = GiftDispute.objects.filter(order=order, gift=gift, kind=kind).first()
        if existing is not None:
            return existing, False
        if kind in GiftDispute.COMPENSATING_KINDS:
            _refuse_second_compensation(order_id=order.pk, gift_id=gift.pk, field="kind")
        settle = kind in GiftDispute.SETTLE_KINDS
        dispute = GiftDispute(
            order=order,
            gift=gift,
            shop_id=gift.shop_id,
            kind=kind,
            consumer_claim=consumer_claim,
            state=GiftDispute.State.SETTLE_BETWEEN_PARTIES if settle else GiftDispute.State.AWAITING_MERCHANT,
            opened_at=now,
            response_deadline_at=now + dt.timedelta(hours=dispute_response_hours()),
            opened_by=actor if (actor is not None and actor.is_authenticated) else None,
            units_returned_intact=units_returned_intact,
        )
        if kind in GiftDispute.RETURN_KINDS:
            dispute.units_promised = gift_value_on_order(gift, order_id=order.pk).quantity
        _refuse_units_intact_out_of_range(dispute)
        with translation.override(settings.LANGUAGE_CODE):  # stored: keep it in the default language
            calc = dispute_preview(dispute)
        dispute.calculation = calc.as_dict()
        dispute.return_shipping_payer = calc.return_shipping_payer
        try:
            with transaction.atomic():
                dispute.save()
        except IntegrityError:
            # A concurrent retry of the same call created it first.
            return GiftDispute.objects.get(order=order, gift=gift, kind=kind), False
        _event(
            shop_id=gift.shop_id,
            dispute=dispute,
            gift=gift,
            kind="dispute_opened",
            actor=actor,
            at=now,
            to_state=dispute.state,
            rule_id=calc.rule,
            details={"kind": kind}
            if kind not in GiftDispute.RETURN_KINDS
            else {
                "kind": kind,
                "units_promised": dispute.units_promised,
                "units_returned_intact": units_returned_intact,
            },
        )
        _notify_shop(
            gift.shop_id,
            kind="gift_dispute",
            title=gettext_noop("新的赠品争议：订单 %(order)s"),
            body=gettext_noop("协商处理（GIFT-5.5）") if settle else gettext_noop("请在 %(deadline)s 前举证"),
            params={
                "order": order.order_no,
                "deadline": f"{clock.local(dispute.response_deadline_at):%Y-%m-%d %H:%M}",
            },
            url=f"/gifts/disputes/{dispute.pk}/",
            dedupe_key=f"gifts:dispute-opened:{dispute.pk}",
        )
    return dispute, True


def dispute_respond(
    *, membership, actor, dispute: GiftDispute, response: str, files=(), request_key: str = "", now=None
) -> GiftDispute:
    """The merchant answers with evidence before the deadline (main or sub-account).

    ``request_key`` (the answer form's one-time token) records the answer once: the same form
    posted again (a double click, the browser re-sending it) neither appends the text again nor
    stores the evidence twice. It is checked under the dispute's row lock, so two at once queue
    and the second finds the first's event."""
    now = now or clock.now()
    shop = _require_shop_member(membership, main=False)
    if dispute.shop_id != shop.pk:
        raise NotFound()
    if not (response or "").strip() and not files:
        raise DomainError("invalid", _("请填写说明或上传证据"), field="response")
    request_key = (request_key or "").strip()[:100]
    stored = [store_upload(f, folder=f"gifts/evidence/{shop.pk}") for f in files]
    try:
        with transaction.atomic():
            d = locks.lock_dispute(dispute.pk)
            if (
                request_key
                and GiftEvent.objects.filter(
                    dispute=d, kind="dispute_responded", details__request_key=request_key
                ).exists()
            ):
                raise _AlreadyAnswered(d)
            if d.state not in (GiftDispute.State.AWAITING_MERCHANT, GiftDispute.State.MERCHANT_RESPONDED):
                raise TransitionError(_("该争议已不接受举证"))
            if now > d.response_deadline_at:
                raise GiftRuleError("GIFT-5-DEADLINE", _("举证期限已过"), field="response")
            for s in stored:
                DisputeEvidence.objects.create(
                    dispute=d,
                    storage_name=s.storage_name,
                    original_name=s.original_name,
                    content_type=s.content_type,
                    size_bytes=s.size_bytes,
                    sha256=s.sha256,
                    uploaded_by=actor,
                )
            old = d.state
            if response.strip():
                d.merchant_response = (
                    d.merchant_response + "\n\n" if d.merchant_response else ""
                ) + response.strip()
            d.state = GiftDispute.State.MERCHANT_RESPONDED
            d.responded_at = now
            d.save(update_fields=["merchant_response", "state", "responded_at"])
            _event(
                shop_id=shop.pk,
                dispute=d,
                gift_id=d.gift_id,
                kind="dispute_responded",
                actor=actor,
                at=now,
                from_state=old,
                to_state=d.state,
                details={"files": len(stored), **({"request_key": request_key} if request_key else {})},
            )
    except _AlreadyAnswered as done:
        for s in stored:
            delete_stored(s.storage_name)
        return done.dispute
    except BaseException:
        for s in stored:
            delete_stored(s.storage_name)
        raise
    return d


class _AlreadyAnswered(Exception):
    """This answer form was already recorded: nothing to write (its uploads are dropped)."""

    def __init__(self, dispute: GiftDispute):
        super().__init__(dispute.pk)
        self.dispute = dispute


@transaction.atomic
def dispute_decide(*, dispute: GiftDispute, actor, decision: str, note: str, now=None) -> GiftDispute:
    """Staff decide. Before the deadline only after the merchant answered. The compensation is
    computed from the value in force now (a fair value set meanwhile counts). GIFT-5.1: the
    product's dispute state on the order is left exactly as it was."""
    now = now or clock.now()
    if decision not in (GiftDispute.Decision.UPHELD, GiftDispute.Decision.DISMISSED):
        raise DomainError("invalid", _("请选择裁决结果"), field="decision")
    if not (note or "").strip():
        raise DomainError("invalid", _("请写明裁决说明"), field="note")
    locks.lock_order(dispute.order_id)
    d = locks.lock_dispute(dispute.pk)
    if d.state == GiftDispute.State.SETTLE_BETWEEN_PARTIES:
        raise GiftRuleError("GIFT-5.5", _("该情形由商家与消费者协商处理，平台不裁决"), field="decision")
    if d.state == GiftDispute.State.DECIDED:
        raise TransitionError(_("该争议已裁决"))
    if d.state == GiftDispute.State.AWAITING_MERCHANT and now <= d.response_deadline_at:
        raise GiftRuleError(
            "GIFT-5-DEADLINE", _("商家举证期限未到，请等待商家举证或期限届满"), field="decision"
        )
    with translation.override(settings.LANGUAGE_CODE):  # stored: keep it in the default language
        calc = dispute_preview(d)
    upheld = decision == GiftDispute.Decision.UPHELD
    if upheld and calc.needs_fair_value:
        raise GiftRuleError("GIFT-1.2", _("赠品价值未知：请先设置市场公允价值"), field="decision")
    if upheld and calc.compensation_fen:
        _refuse_second_compensation(order_id=d.order_id, gift_id=d.gift_id, exclude_pk=d.pk)
    old = d.state
    d.state = GiftDispute.State.DECIDED
    d.decision = decision
    d.decision_note = note.strip()
    d.decided_by = actor
    d.decided_at = now
    d.calculation = calc.as_dict()
    d.compensation_fen = (calc.compensation_fen or 0) if upheld else 0
    # GIFT-5.4: the merchant may keep the gift's value back only when staff uphold the claim that
    # the consumer lost or damaged it; a dismissed claim leaves the refund whole.
    if calc.refund_deduction_fen is None:
        d.refund_deduction_fen = None
    else:
        d.refund_deduction_fen = calc.refund_deduction_fen if upheld else 0
    d.return_shipping_payer = calc.return_shipping_payer
    d.save()
    _event(
        shop_id=d.shop_id,
        dispute=d,
        gift_id=d.gift_id,
        kind="dispute_decided",
        actor=actor,
        at=now,
        from_state=old,
        to_state=d.state,
        rule_id=calc.rule,
        details={"decision": decision, "note": note, "calculation": calc.as_dict()},
    )
    audit_record(
        actor=actor,
        action="gifts.dispute_decide",
        obj=d,
        details={"decision": decision, "compensation_fen": d.compensation_fen, "rule": calc.rule},
    )
    if upheld and d.kind == GiftDispute.Kind.LACKS_LICENCE:
        violation_record(
            shop_id=d.shop_id,
            rule_id="GIFT-2.3",
            occurred_at=d.order.paid_at,
            source_key=f"dispute:{d.pk}:lacks-licence",
            gift=d.gift,
            evidence={"dispute": d.pk, "order_no": d.order.order_no},
            penalty_note="商家不具备赠品经营所需资质，依据“扰乱平台秩序”处理",
            actor=actor,
        )
    _notify_shop(
        d.shop_id,
        kind="gift_dispute",
        title=gettext_noop("赠品争议已裁决：订单 %(order)s"),
        body="%(note)s",
        params={"order": d.order.order_no, "note": note},
        url=f"/gifts/disputes/{d.pk}/",
    )
    return d
