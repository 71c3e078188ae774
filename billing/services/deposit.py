"""Deposits and account closure (FEE-6.3).

- A deposit account per organization (服务市场保证金), balance ≥ 0 (database check); its
  entries are append-only like the ledger.
- Arrears older than one month may be covered from the deposit: the staff admin action and
  the daily beat job both call ``deposit_transfer_arrears``; both are audited and idempotent
  (the amount is recomputed under the locks, so a second run finds nothing left to move, and
  one transfer per organization per day is a unique key).
- Closure is refused while in arrears, naming the rule; the deposit is returned only when a
  closure is approved, never while in arrears.
"""

import dataclasses
import datetime as dt
import logging
import uuid

from django.db import connection, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing import errors, locks
from billing.models import (
    App,
    ClosureRequest,
    DepositEntry,
    LedgerEntry,
    Wallet,
)
from billing.services.settlement import settlement_months_not_done
from billing.services.wallet import wallet_credit_deposit_transfer
from portal import clock
from portal.money import format_fen
from portal.services import audit_record, notification_send

log = logging.getLogger(__name__)


def _one_month_before(day: dt.date) -> dt.date:
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def old_arrears_fen(*, wallet: Wallet, today: dt.date) -> int:
    """Arrears older than one month, as of ``today`` (Asia/Shanghai).

    Credits pay the oldest charges first, so what is still owed is the most recent charges:
    old arrears = max(0, arrears - charges booked since the same day last month).
    """
    arrears = max(0, -wallet.balance_fen)
    cutoff = clock.start_of_day(_one_month_before(today))
    recent = -int(
        LedgerEntry.objects.filter(
            wallet=wallet, kind=LedgerEntry.Kind.SETTLEMENT_CHARGE, created_at__gte=cutoff
        ).aggregate(s=Sum("amount_fen", default=0))["s"]
    )
    return max(0, arrears - recent)


def deposit_pay_in(
    *, organization_id: int, amount_fen: int, actor, note: str = "", idempotency_key: str | None = None
) -> DepositEntry:
    """Staff record a deposit the organization paid in (audited). Creates the organization's
    deposit account when it has none yet (``locks.deposit_account_lock``).

    Money only comes in here (amount > 0; FEE-4.1). With ``idempotency_key`` (the admin form's
    one-time token) a repeated submission returns the first entry instead of paying in twice;
    the key is checked under the account's row lock, so two concurrent submissions queue.
    """
    if not isinstance(amount_fen, int) or amount_fen <= 0:
        raise errors.BillingError("invalid", _("金额必须为正数。"), field="amount_fen")
    key = f"paid_in:{idempotency_key or uuid.uuid4().hex}"
    with transaction.atomic():
        account = locks.deposit_account_lock(organization_id=organization_id)
        done = DepositEntry.objects.filter(idempotency_key=key).first()
        if done is not None:
            if done.account_id != account.pk or done.amount_fen != amount_fen:
                raise errors.BillingConflict("conflict", _("这个缴纳令牌已用于另一笔缴纳。"))
            return done
        entry = DepositEntry.objects.create(
            account=account,
            kind=DepositEntry.Kind.PAID_IN,
            amount_fen=amount_fen,
            idempotency_key=key,
            actor=actor,
            note=note[:200],
        )
        account.balance_fen += amount_fen
        account.save(update_fields=["balance_fen"])
        audit_record(
            actor=actor,
            action="billing.deposit_pay_in",
            obj=entry,
            details={
                "organization_id": organization_id,
                "amount_fen": amount_fen,
                "balance_after_fen": account.balance_fen,
                "note": note[:200],
            },
        )
        return entry


def deposit_transfer_arrears(
    *, organization_id: int, actor=None, today: dt.date | None = None
) -> DepositEntry | None:
    """FEE-6.3: move min(old arrears, deposit) from the deposit into the wallet.

    Returns the transfer, the day's earlier transfer when there was one, or None when there
    is nothing to move. Locks wallet then deposit account (``billing.locks`` order).
    """
    today = today or clock.today()
    key = f"arrears:{organization_id}:{today.isoformat()}"
    with transaction.atomic():
        wallet = locks.wallet_lock(organization_id=organization_id)
        account = locks.deposit_account_lock(organization_id=organization_id)
        done = DepositEntry.objects.filter(idempotency_key=key).first()
        if done is not None:
            return done
        amount = min(old_arrears_fen(wallet=wallet, today=today), account.balance_fen)
        if amount <= 0:
            return None
        entry = DepositEntry.objects.create(
            account=account,
            kind=DepositEntry.Kind.ARREARS_TRANSFER,
            amount_fen=-amount,
            idempotency_key=key,
            actor=actor if getattr(actor, "is_authenticated", False) else None,
            note=f"FEE-6.3 arrears older than one month ({today.isoformat()})",
        )
        account.balance_fen -= amount
        account.save(update_fields=["balance_fen"])
        ledger = wallet_credit_deposit_transfer(wallet=wallet, deposit_entry=entry)
        audit_record(
            actor=actor,
            action="billing.deposit_transfer_arrears",
            obj=entry,
            details={
                "organization_id": organization_id,
                "amount_fen": amount,
                "ledger_entry_id": ledger.pk,
                "balance_after_fen": ledger.balance_after_fen,
                "by": "staff" if actor else "beat",
            },
        )
        notification_send(
            kind="billing.deposit_transfer",
            title=gettext_noop("保证金已抵扣欠费 %(amount)s"),
            params={"amount": format_fen(amount)},
            url="/billing/wallet/",
            organization=wallet.organization,
            dedupe_key=f"billing.deposit_transfer:{entry.pk}",
        )
        return entry


@dataclasses.dataclass
class DepositSweepResult:
    """What one run of the daily FEE-6.3 job did: organizations whose arrears were covered,
    and organizations whose transfer failed (rolled back, retried by the next run)."""

    transferred: list[int] = dataclasses.field(default_factory=list)
    failed: list[int] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "transferred": len(self.transferred),
            "failed": len(self.failed),
            "failed_organization_ids": self.failed,
        }


def deposit_transfer_all_due(*, today: dt.date | None = None) -> DepositSweepResult:
    """Daily beat job: every organization in arrears that has a deposit. Safe to run twice.

    Each organization runs in its own transaction (a savepoint when a caller already holds
    one): an error in one organization's transfer — a lock timeout, a constraint, a bug —
    rolls back that organization only, is logged with its id, and the job goes on with the
    others instead of leaving every later organization untouched until tomorrow.
    """
    today = today or clock.today()
    org_ids = list(
        Wallet.objects.filter(balance_fen__lt=0, organization__deposit_account__balance_fen__gt=0)
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
    )
    result = DepositSweepResult()
    for org_id in org_ids:
        try:
            with transaction.atomic():
                entry = deposit_transfer_arrears(organization_id=org_id, today=today)
        except Exception:
            log.exception("FEE-6.3 deposit transfer failed for organization %s (%s)", org_id, today)
            result.failed.append(org_id)
            continue
        if entry is not None:
            result.transferred.append(org_id)
    if result.failed:
        log.error(
            "FEE-6.3 deposit transfers on %s: %d done, %d failed (organizations %s)",
            today,
            len(result.transferred),
            len(result.failed),
            result.failed,
        )
    return result


def closure_request_create(*, organization_id: int, actor, reason: str = "") -> ClosureRequest:
    """A main account asks to close the account; refused while in arrears (FEE-6.3)."""
    with transaction.atomic():
        wallet = locks.wallet_lock(organization_id=organization_id)
        if wallet.balance_fen < 0:
            raise errors.BillingError(
                errors.FEE_6_3,
                _("FEE-6.3: 欠费期间不能注销账户, 保证金不予退还。请先充值结清欠费 %(arrears)s。")
                % {"arrears": format_fen(-wallet.balance_fen)},
                status=409,
            )
        if ClosureRequest.objects.filter(
            organization_id=organization_id,
            state__in=[ClosureRequest.State.PENDING, ClosureRequest.State.APPROVED],
        ).exists():
            raise errors.BillingConflict("conflict", _("已有进行中的注销申请。"))
        return ClosureRequest.objects.create(
            organization_id=organization_id, requested_by=actor, reason=(reason or "")[:300]
        )


_USED_IN_MONTH_SQL = """
SELECT EXISTS (
    SELECT 1 FROM billing_usage_hourly
    WHERE app_id = ANY(%(apps)s) AND calls > 0 AND hour >= %(start)s AND hour < %(end)s
)
"""


def _unsettled_usage_months(organization_id: int, *, today: dt.date | None = None) -> list[tuple[int, int]]:
    """Months in which the organization's apps made calls that no finished settlement has
    charged yet (the current month included: it is charged on the 5th of the next). Only the
    months not yet settled are looked at, each in its own usage partition."""
    apps = list(App.objects.filter(organization_id=organization_id).values_list("pk", flat=True))
    if not apps:
        return []
    today = today or clock.today()
    unsettled = []
    with connection.cursor() as cur:
        for month in settlement_months_not_done(through=(today.year, today.month)):
            start, end = clock.month_range(*month)
            cur.execute(_USED_IN_MONTH_SQL, {"apps": apps, "start": start, "end": end})
            if cur.fetchone()[0]:
                unsettled.append(month)
    return unsettled


def closure_approve(*, closure_id: int, actor, now: dt.datetime | None = None) -> ClosureRequest:
    """Staff approve: re-checked under the wallet lock (no arrears, and no usage that a
    settlement has yet to charge: its fees could only become arrears once the deposit was
    returned), then the deposit is returned (an entry for the record) and the request closed.
    Audited."""
    organization_id = ClosureRequest.objects.values_list("organization_id", flat=True).get(pk=closure_id)
    # Read before the locks (usage is not written under them anyway): top-ups and charges of
    # this wallet do not wait for it.
    unsettled = _unsettled_usage_months(organization_id)
    with transaction.atomic():
        closure = ClosureRequest.objects.select_related("organization").get(pk=closure_id)
        wallet = locks.wallet_lock(organization_id=closure.organization_id)
        account = locks.deposit_account_lock(organization_id=closure.organization_id)
        closure = locks.closure_request_lock(closure_id=closure_id)
        if closure.state != ClosureRequest.State.PENDING:
            raise errors.BillingConflict("conflict", "Only a pending closure can be approved.")
        if wallet.balance_fen < 0:
            raise errors.BillingError(
                errors.FEE_6_3, _("FEE-6.3: 欠费期间不能注销账户, 保证金不予退还。"), status=409
            )
        if unsettled:
            raise errors.BillingError(
                errors.FEE_6_3,
                _("FEE-6.3: %(months)s 的服务费尚未结算(每月5日结算上月); 结清后方可注销并退还保证金。")
                % {"months": ", ".join(f"{y}-{m:02d}" for y, m in unsettled)},
                status=409,
            )
        returned = account.balance_fen
        if returned > 0:
            DepositEntry.objects.create(
                account=account,
                kind=DepositEntry.Kind.RETURNED,
                amount_fen=-returned,
                idempotency_key=f"returned:{closure.pk}",
                actor=actor,
                note="closure approved",
            )
            account.balance_fen = 0
            account.save(update_fields=["balance_fen"])
        closure.state = ClosureRequest.State.APPROVED
        closure.reviewed_by = actor
        closure.reviewed_at = now or clock.now()
        closure.save(update_fields=["state", "reviewed_by", "reviewed_at"])
        audit_record(
            actor=actor,
            action="billing.closure_approve",
            obj=closure,
            details={"deposit_returned_fen": returned},
        )
        return closure


def closure_reject(*, closure_id: int, actor, note: str) -> ClosureRequest:
    with transaction.atomic():
        updated = ClosureRequest.objects.filter(pk=closure_id, state=ClosureRequest.State.PENDING).update(
            state=ClosureRequest.State.REJECTED,
            reviewed_by=actor,
            reviewed_at=clock.now(),
            review_note=note[:300],
        )
        closure = ClosureRequest.objects.get(pk=closure_id)
        if not updated:
            raise errors.BillingConflict("conflict", "Only a pending closure can be rejected.")
        audit_record(actor=actor, action="billing.closure_reject", obj=closure, details={"note": note})
        return closure
