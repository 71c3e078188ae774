"""Every write of the authorization app. Each service is one transaction; the rule is checked
under the creator's row lock (locks.py), then the change and its GrantEvent are written, and
side effects (cache version bump, signal, webhook, notices) are queued with on_commit.
"""

import datetime as dt

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from authorization import locks
from authorization.errors import GrantRuleError
from authorization.models import Grant, GrantEvent, GrantState, LiveRoom, LiveRoomRequest, Scope
from authorization.selectors import access_cache_invalidate, state_of
from authorization.signals import grant_access_revoked
from portal import clock
from portal.errors import AlreadyDone
from portal.models import Creator, Membership, Organization
from portal.services import audit_record, notification_send, request_key_clean

GRANTABLE_KINDS = (Organization.Kind.SHOP, Organization.Kind.AGENCY)


def _after_commit_changed(grants: list[Grant]) -> None:
    pairs = {(g.organization_id, g.creator_id) for g in grants}

    def bump():
        for org_id, creator_id in pairs:
            access_cache_invalidate(organization_id=org_id, creator_id=creator_id)

    transaction.on_commit(bump)


def _after_commit_revoked(items: list[dict]) -> None:
    """GRANT-11 event hook: one webhook delivery per hooked organization, recorded in the
    caller's transaction (an outbox: a worker dying right after the commit leaves the rows
    pending, and ``webhook_deliveries_requeue_stale`` sends them), queued and signalled after
    the commit."""
    if not items:
        return
    from authorization.services_webhooks import deliveries_queue, deliveries_record

    by_org: dict[int, list[dict]] = {}
    for item in items:
        by_org.setdefault(item["organization_id"], []).append(item)
    deliveries = deliveries_record(by_org, event="grant.access_revoked")

    def fire():
        grant_access_revoked.send(sender=Grant, grants=items)
        deliveries_queue(deliveries)

    transaction.on_commit(fire)


def _event_item(grant: Grant, reason: str) -> dict:
    return {
        "grant_id": grant.pk,
        "organization_id": grant.organization_id,
        "creator_id": grant.creator_id,
        "scope": grant.scope,
        "live_room_id": grant.live_room_id,
        "reason": reason,
    }


def _main_users(organization_id: int):
    """GRANT-9: all_data notices go to the main account only, never to the whole organization."""
    return [
        m.user
        for m in Membership.objects.select_related("user").filter(
            organization_id=organization_id, role=Membership.Role.MAIN
        )
    ]


def _notify_org(
    grant: Grant, *, kind: str, title: str, params: dict, body: str = "", dedupe_key=None, email=False
):
    url = f"/authorization/grants/{grant.pk}/"
    if grant.scope == Scope.ALL_DATA:
        for user in _main_users(grant.organization_id):
            notification_send(
                kind=kind,
                title=title,
                body=body,
                params=params,
                url=url,
                user=user,
                dedupe_key=f"{dedupe_key}:u{user.pk}" if dedupe_key else None,
                email=email,
            )
    else:
        notification_send(
            kind=kind,
            title=title,
            body=body,
            params=params,
            url=url,
            organization=grant.organization,
            dedupe_key=dedupe_key,
            email=email,
        )


def _notify_creator(
    grant: Grant, *, kind: str, title: str, params: dict, body: str = "", dedupe_key=None, email=False
):
    notification_send(
        kind=kind,
        title=title,
        body=body,
        params=params,
        url=f"/authorization/grants/{grant.pk}/",
        user=grant.creator.user,
        dedupe_key=dedupe_key,
        email=email,
    )


def _event(
    grant: Grant, operation: str, *, actor, old=(None, None), reason: str = "", request_key=None
) -> GrantEvent:
    return GrantEvent.objects.create(
        grant=grant,
        operation=operation,
        actor=actor if (actor is not None and actor.is_authenticated) else None,
        old_start_date=old[0],
        old_end_date=old[1],
        new_start_date=grant.start_date,
        new_end_date=grant.end_date,
        reason=reason,
        request_key=request_key,
    )


# The code billing's Idempotency-Key answers with for a key reused with another request body.
REQUEST_KEY_REUSED = "IDEMPOTENCY-KEY-REUSED"


def _refuse_repeat(grant: Grant, operation: str, request_key: str | None, **asked) -> None:
    """This very request (its one-time token) was already carried out on the grant: say so
    (``AlreadyDone``) instead of the rule the repeat would now meet. Called under the grant's
    lock, so a repeat sent at the same moment waits and then finds the first's event.

    A key names one request: used for another operation or other dates (``asked``: the event's
    fields the request decides, e.g. ``new_end_date``), it is refused (409), never reported done
    for a request that was not carried out."""
    if not request_key:
        return
    done = GrantEvent.objects.filter(grant=grant, request_key=request_key).first()
    if done is None:
        return
    if done.operation == operation and all(getattr(done, f) == v for f, v in asked.items()):
        raise AlreadyDone(grant)
    raise GrantRuleError(
        REQUEST_KEY_REUSED,
        _("该请求已用于此授权的另一次操作，请刷新页面后重新提交。"),  # noqa: RUF001
        field="request_key",
        status=409,
    )


# --- all_data: authorize, revoke, early renew, renew ----------------------------------------------


@transaction.atomic
def grant_authorize_all_data(
    *,
    creator: Creator,
    organizations,
    start_date: dt.date,
    end_date: dt.date,
    actor,
    today: dt.date | None = None,
) -> list[Grant]:
    """GRANT-2: the creator authorizes all_data to one or several organizations at once."""
    today = today or clock.today()
    orgs = sorted({o.pk: o for o in organizations}.values(), key=lambda o: o.pk)
    if not orgs:
        raise GrantRuleError("GRANT-2", _("请选择至少一个店铺或机构。"), field="organizations")
    if any(o.kind not in GRANTABLE_KINDS for o in orgs):
        raise GrantRuleError("GRANT-1", _("只能授权给店铺或机构。"), field="organizations")
    if start_date < today:
        raise GrantRuleError("GRANT-2", _("开始日期不能早于今天。"), field="start_date")
    if end_date < start_date:
        raise GrantRuleError("GRANT-2", _("截止日期不能早于开始日期。"), field="end_date")
    locks.lock_creator(creator.pk)  # serializes every grant operation of this creator
    existing = dict(
        Grant.objects.filter(
            creator=creator, organization__in=orgs, scope=Scope.ALL_DATA, revoked_at__isnull=True
        ).values_list("organization_id", "end_date")
    )
    if existing:
        names = ", ".join(o.name for o in orgs if o.pk in existing)
        raise GrantRuleError(
            "GRANT-2",
            _("已授权给 %(names)s。请使用提前续约或续约。") % {"names": names},
            field="organizations",
            status=409,
        )
    Grant.objects.filter(
        creator=creator, organization__in=orgs, scope=Scope.ALL_DATA, is_current=True
    ).update(is_current=False)
    grants = []
    for org in orgs:
        grant = Grant.objects.create(
            creator=creator,
            organization=org,
            scope=Scope.ALL_DATA,
            start_date=start_date,
            end_date=end_date,
            created_by=actor,
        )
        _event(grant, GrantEvent.Operation.AUTHORIZE, actor=actor)
        _notify_org(
            grant,
            kind="grant.authorized",
            title=gettext_noop("%(creator)s 授权了全部带货数据 %(start)s 至 %(end)s"),
            params={"creator": creator.nickname, "start": start_date, "end": end_date},
        )
        grants.append(grant)
    _after_commit_changed(grants)
    return grants


@transaction.atomic
def grant_revoke(
    *,
    grant: Grant,
    actor,
    reason: str = "",
    request_key: str | None = None,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Grant:
    """GRANT-4 解除授权: access ends with this call (the next check sees it).
    ``request_key``: a repeat of the same request raises ``AlreadyDone`` (``_refuse_repeat``)."""
    today = today or clock.today()
    request_key = request_key_clean(request_key)
    locks.lock_creator(grant.creator_id)
    grant = locks.lock_grant(grant.pk)
    _refuse_repeat(grant, GrantEvent.Operation.REVOKE, request_key)
    state = state_of(grant, today)
    if state == GrantState.REVOKED:
        raise GrantRuleError("GRANT-4", _("该授权已被解除。"), field="grant", status=409)
    if state == GrantState.EXPIRED:
        raise GrantRuleError("GRANT-4", _("该授权已到期。无需解除。"), field="grant", status=409)
    grant.revoked_at = now or clock.now()
    grant.revoked_by = actor if (actor is not None and actor.is_authenticated) else None
    grant.revoke_reason = reason[:300]
    grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    _event(
        grant,
        GrantEvent.Operation.REVOKE,
        actor=actor,
        old=(grant.start_date, grant.end_date),
        reason=reason,
        request_key=request_key,
    )
    _notify_org(
        grant,
        kind="grant.revoked",
        title=gettext_noop("%(creator)s 解除了数据授权"),
        params={"creator": grant.creator.nickname},
    )
    _after_commit_changed([grant])
    _after_commit_revoked([_event_item(grant, "revoked")])
    return grant


def _require_all_data(grant: Grant, code: str):
    if grant.scope != Scope.ALL_DATA:
        raise GrantRuleError(code, _("直播间授权只支持授权和解除授权。"), field="grant")


@transaction.atomic
def grant_early_renew(
    *, grant: Grant, end_date: dt.date, actor, request_key: str | None = None, today: dt.date | None = None
) -> Grant:
    """GRANT-5 提前续约: only before expiry (the end date itself included). The renewal starts
    tomorrow (fixed); the end must be strictly later than the current end. The row's window
    becomes [min(start, tomorrow), end]: the union of the current window and the renewal.
    ``request_key``: a repeat of the same request raises ``AlreadyDone`` (``_refuse_repeat``).
    """
    today = today or clock.today()
    request_key = request_key_clean(request_key)
    locks.lock_creator(grant.creator_id)
    grant = locks.lock_grant(grant.pk)
    _refuse_repeat(grant, GrantEvent.Operation.EARLY_RENEW, request_key, new_end_date=end_date)
    _require_all_data(grant, "GRANT-5")
    state = state_of(grant, today)
    if state == GrantState.REVOKED:
        raise GrantRuleError("GRANT-5", _("已解除的授权不能续约。请重新授权。"), field="grant", status=409)
    if state == GrantState.EXPIRED:
        raise GrantRuleError("GRANT-5", _("授权已到期。请使用续约。"), field="grant", status=409)
    if end_date <= grant.end_date:
        raise GrantRuleError(
            "GRANT-5", _("截止日期必须晚于当前截止日期 %(end)s。") % {"end": grant.end_date}, field="end_date"
        )
    old = (grant.start_date, grant.end_date)
    tomorrow = today + dt.timedelta(days=1)
    grant.start_date = min(grant.start_date, tomorrow)
    grant.end_date = end_date
    grant.save(update_fields=["start_date", "end_date"])
    _event(
        grant,
        GrantEvent.Operation.EARLY_RENEW,
        actor=actor,
        old=old,
        reason=f"renewal from {tomorrow.isoformat()}",
        request_key=request_key,
    )
    _notify_org(
        grant,
        kind="grant.renewed",
        title=gettext_noop("%(creator)s 提前续约了数据授权。截止 %(end)s"),
        params={"creator": grant.creator.nickname, "end": end_date},
    )
    _after_commit_changed([grant])
    return grant


@transaction.atomic
def grant_renew(
    *,
    grant: Grant,
    start_date: dt.date,
    end_date: dt.date,
    actor,
    request_key: str | None = None,
    today: dt.date | None = None,
) -> Grant:
    """GRANT-6 续约: only an expired grant; start today or later; end on or after start.
    ``request_key``: a repeat of the same request raises ``AlreadyDone`` (``_refuse_repeat``)."""
    today = today or clock.today()
    request_key = request_key_clean(request_key)
    locks.lock_creator(grant.creator_id)
    grant = locks.lock_grant(grant.pk)
    _refuse_repeat(
        grant, GrantEvent.Operation.RENEW, request_key, new_start_date=start_date, new_end_date=end_date
    )
    _require_all_data(grant, "GRANT-6")
    state = state_of(grant, today)
    if state != GrantState.EXPIRED:
        raise GrantRuleError("GRANT-6", _("只有已到期的授权可以续约。"), field="grant", status=409)
    if start_date < today:
        raise GrantRuleError("GRANT-6", _("开始日期只能选择今日及之后。"), field="start_date")
    if end_date < start_date:
        raise GrantRuleError("GRANT-6", _("截止日期必须大于等于开始日期。"), field="end_date")
    old = (grant.start_date, grant.end_date)
    grant.start_date, grant.end_date = start_date, end_date
    grant.save(update_fields=["start_date", "end_date"])
    _event(grant, GrantEvent.Operation.RENEW, actor=actor, old=old, request_key=request_key)
    _notify_org(
        grant,
        kind="grant.renewed",
        title=gettext_noop("%(creator)s 续约了数据授权 %(start)s 至 %(end)s"),
        params={"creator": grant.creator.nickname, "start": start_date, "end": end_date},
    )
    _after_commit_changed([grant])
    return grant


# --- live_room: request, authorize, reject ----------------------------------------------------------


@transaction.atomic
def live_room_request_create(
    *, membership: Membership, live_room: LiveRoom, actor, now: dt.datetime | None = None
) -> LiveRoomRequest:
    """GRANT-3: 解锁更多数据 after the confirm dialog. Main and sub accounts may ask (GRANT-9).
    Asking twice while a request is pending returns the pending one.
    """
    now = now or clock.now()
    org = membership.organization
    if org.kind not in GRANTABLE_KINDS:
        raise GrantRuleError("GRANT-1", _("只有店铺或机构可以申请直播间数据。"), field="organization")
    room = locks.lock_live_room(live_room.pk)
    if Grant.objects.filter(
        organization=org, live_room=room, scope=Scope.LIVE_ROOM, revoked_at__isnull=True
    ).exists():
        raise GrantRuleError("GRANT-3", _("已获得该直播间的数据授权。"), field="live_room", status=409)
    pending = LiveRoomRequest.objects.filter(
        organization=org, live_room=room, status=LiveRoomRequest.Status.PENDING
    ).first()
    if pending is not None:
        if pending.expires_at > now:
            return pending
        pending.status = LiveRoomRequest.Status.EXPIRED  # lapsed: recorded now, the job may not have run
        pending.save(update_fields=["status"])
    req = LiveRoomRequest.objects.create(
        organization=org,
        live_room=room,
        creator_id=room.creator_id,
        requested_by=actor,
        created_at=now,
        expires_at=now + dt.timedelta(days=LiveRoomRequest.VALID_DAYS),
    )
    notification_send(
        kind="grant.live_room_requested",
        user=room.creator.user,
        url="/authorization/creator/",
        title=gettext_noop("%(org)s 申请查看直播间「%(room)s」的数据"),
        params={"org": org.name, "room": room.title},
    )
    return req


def _pending_request(req_id: int, now) -> LiveRoomRequest:
    req = locks.lock_request(req_id)
    if req.status != LiveRoomRequest.Status.PENDING:
        raise GrantRuleError("GRANT-3", _("该申请已处理。"), field="request", status=409)
    if req.expires_at <= now:
        req.status = LiveRoomRequest.Status.EXPIRED
        req.save(update_fields=["status"])
        raise GrantRuleError("GRANT-3", _("该申请已超过 7 天。已过期。"), field="request", status=409)
    return req


def live_room_request_authorize(
    *, request: LiveRoomRequest, actor, today: dt.date | None = None, now: dt.datetime | None = None
) -> Grant:
    """GRANT-3/4: the creator authorizes the room; main and sub accounts then see its data.

    An expired request is recorded as such even though the call is refused, so the outer
    transaction commits that write and the refusal is raised after it.
    """
    now = now or clock.now()
    today = today or clock.today(now)
    with transaction.atomic():
        locks.lock_creator(request.creator_id)
        try:
            req = _pending_request(request.pk, now)
        except GrantRuleError as exc:
            refusal = exc
        else:
            refusal = None
            Grant.objects.filter(
                organization_id=req.organization_id,
                live_room_id=req.live_room_id,
                scope=Scope.LIVE_ROOM,
                is_current=True,
            ).update(is_current=False)
            grant = Grant.objects.create(
                creator_id=req.creator_id,
                organization_id=req.organization_id,
                scope=Scope.LIVE_ROOM,
                live_room_id=req.live_room_id,
                start_date=today,
                end_date=None,
                created_by=actor,
            )
            _event(grant, GrantEvent.Operation.AUTHORIZE, actor=actor)
            req.status, req.decided_at, req.decided_by, req.grant = (
                LiveRoomRequest.Status.AUTHORIZED,
                now,
                actor,
                grant,
            )
            req.save(update_fields=["status", "decided_at", "decided_by", "grant"])
            _notify_org(
                grant,
                kind="grant.live_room_authorized",
                title=gettext_noop("直播间「%(room)s」的数据已授权"),
                params={"room": req.live_room.title},
            )
            _after_commit_changed([grant])
    if refusal is not None:
        raise refusal
    return grant


def live_room_request_reject(
    *, request: LiveRoomRequest, actor, now: dt.datetime | None = None
) -> LiveRoomRequest:
    now = now or clock.now()
    with transaction.atomic():
        locks.lock_creator(request.creator_id)
        try:
            req = _pending_request(request.pk, now)
        except GrantRuleError as exc:
            refusal = exc
        else:
            refusal = None
            req.status, req.decided_at, req.decided_by = LiveRoomRequest.Status.REJECTED, now, actor
            req.save(update_fields=["status", "decided_at", "decided_by"])
            notification_send(
                kind="grant.live_room_rejected",
                organization=req.organization,
                url=f"/authorization/org/live-rooms/{req.live_room_id}/",
                title=gettext_noop("直播间「%(room)s」的数据申请被拒绝"),
                params={"room": req.live_room.title},
            )
    if refusal is not None:
        raise refusal
    return req


# --- staff ---------------------------------------------------------------------------------------


def grant_revoke_by_staff(*, grant: Grant, actor, reason: str, today: dt.date | None = None) -> Grant:
    """Staff (grant-ops) revoke with a reason; audited (P-4)."""
    if not (reason or "").strip():
        raise GrantRuleError("GRANT-4", _("请填写解除原因。"), field="reason")
    with transaction.atomic():
        grant = grant_revoke(grant=grant, actor=actor, reason=reason.strip(), today=today)
        audit_record(actor=actor, action="grant.revoke", obj=grant, details={"reason": reason.strip()})
    return grant


# --- daily jobs (GRANT-10): the access decision never waits for them ------------------------------

EXPIRY_SQL = """
WITH due AS (
    SELECT id FROM authorization_grant
    WHERE scope = 'all_data' AND revoked_at IS NULL AND end_date < %(today)s
      AND (expiry_recorded_for IS NULL OR expiry_recorded_for < end_date)
    LIMIT %(batch)s
), marked AS (
    -- The due condition is repeated here: PostgreSQL re-checks it on a row that a concurrent
    -- renewal or revocation changed meanwhile, so such a row is left for a later run.
    UPDATE authorization_grant g SET expiry_recorded_for = g.end_date
    FROM due WHERE g.id = due.id
      AND g.revoked_at IS NULL AND g.end_date < %(today)s
      AND (g.expiry_recorded_for IS NULL OR g.expiry_recorded_for < g.end_date)
    RETURNING g.id, g.organization_id, g.creator_id, g.start_date, g.end_date
), events AS (
    INSERT INTO authorization_grantevent
        (grant_id, operation, old_start_date, old_end_date, new_start_date, new_end_date, reason, at)
    SELECT id, 'expire', start_date, end_date, start_date, end_date, '', %(now)s FROM marked
    ON CONFLICT DO NOTHING
)
SELECT NULL::bigint, NULL::bigint, NULL::bigint, (SELECT count(*) FROM marked)
UNION ALL
SELECT m.id, m.organization_id, m.creator_id, NULL FROM marked m
WHERE %(all_rows)s OR EXISTS (
    SELECT 1 FROM authorization_organizationwebhook w
    WHERE w.organization_id = m.organization_id AND w.is_active
)
"""


def grant_expiry_record(
    *, today: dt.date | None = None, now: dt.datetime | None = None, batch: int = 500_000
) -> int:
    """Record every expiry (end date before today) as an ``expire`` event, once per end date,
    and tell the signal's receivers and hooked organizations. Set-based (one statement per
    batch) so it scales to millions; the marking column and its partial index keep reruns
    idempotent and cheap. Access never depends on it (GRANT-10).
    """
    today = today or clock.today()
    now = now or clock.now()
    want_all = grant_access_revoked.has_listeners(Grant)
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(EXPIRY_SQL, {"today": today, "now": now, "batch": batch, "all_rows": want_all})
            rows = cur.fetchall()
            done = next(r[3] for r in rows if r[0] is None)
            _after_commit_revoked(
                [
                    {
                        "grant_id": gid,
                        "organization_id": org,
                        "creator_id": cid,
                        "scope": Scope.ALL_DATA.value,
                        "live_room_id": None,
                        "reason": "expired",
                    }
                    for gid, org, cid, _n in rows
                    if gid is not None
                ]
            )
        total += done
        if done < batch:
            return total


def live_room_request_expire_due(*, now: dt.datetime | None = None) -> int:
    """Record lapsed requests (pending for 7 days) as expired; reads already treat them so."""
    now = now or clock.now()
    return LiveRoomRequest.objects.filter(status=LiveRoomRequest.Status.PENDING, expires_at__lte=now).update(
        status=LiveRoomRequest.Status.EXPIRED
    )


REMINDER_DAYS = 7


def grant_reminders_send(*, today: dt.date | None = None) -> int:
    """Remind both parties of an all_data grant's end date (inbox + email) once per grant and
    end date, from 7 days before it: a run that was missed or failed is caught up the next day,
    and a grant authorized or renewed with less than 7 days left is reminded too."""
    today = today or clock.today()
    sent = 0
    grants = (
        Grant.objects.filter(
            scope=Scope.ALL_DATA,
            is_current=True,
            revoked_at__isnull=True,
            end_date__gt=today,
            end_date__lte=today + dt.timedelta(days=REMINDER_DAYS),
        )
        .filter(Q(reminder_sent_for__isnull=True) | ~Q(reminder_sent_for=F("end_date")))
        .select_related("creator__user", "organization")
        .order_by("pk")
    )
    for grant in grants.iterator(chunk_size=1000):
        end = grant.end_date
        key = f"grant-reminder:{grant.pk}:{end.isoformat()}"
        with transaction.atomic():
            _notify_creator(
                grant,
                kind="grant.ending",
                email=True,
                dedupe_key=f"{key}:creator",
                title=gettext_noop("你对 %(org)s 的数据授权将于 %(end)s 到期"),
                params={"org": grant.organization.name, "end": end},
            )
            _notify_org(
                grant,
                kind="grant.ending",
                email=True,
                dedupe_key=f"{key}:org",
                title=gettext_noop("%(creator)s 的数据授权将于 %(end)s 到期"),
                params={"creator": grant.creator.nickname, "end": end},
            )
            Grant.objects.filter(pk=grant.pk).update(reminder_sent_for=end)
        sent += 1
    return sent
