"""Top-ups: orders, provider callbacks, expiry, and the API's Idempotency-Key.

State machine of ``TopUpOrder``: pending → paid | failed | expired. A success callback for an
expired or failed order still credits it (the provider really took the money; FEE-4.1 never
loses a paid top-up); a failure callback only moves a pending order.
"""

import datetime as dt
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from billing import errors, locks
from billing.models import TOP_UP_MAX_FEN, TOP_UP_MIN_FEN, IdempotencyKey, PaymentEvent, TopUpOrder
from billing.payments import get_provider
from billing.services import credit_group
from billing.services.wallet import PaidEvent, wallet_credit_paid_event
from portal import clock

log = logging.getLogger(__name__)

ORDER_LIFETIME = dt.timedelta(minutes=30)
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1  # the range of every amount_fen column
PRESETS_FEN = (10_000, 50_000, 100_000, 500_000)  # ¥100, ¥500, ¥1,000, ¥5,000


def top_up_create(
    *, organization_id: int, amount_fen: int, actor=None, now: dt.datetime | None = None
) -> TopUpOrder:
    """A pending order of ¥1..¥1,000,000 (also a database check) that expires in 30 minutes."""
    if not isinstance(amount_fen, int) or not TOP_UP_MIN_FEN <= amount_fen <= TOP_UP_MAX_FEN:
        raise errors.BillingError(
            errors.TOP_UP_AMOUNT, "A top-up is between ¥1 and ¥1,000,000.", field="amount_fen"
        )
    now = now or clock.now()
    return TopUpOrder.objects.create(
        organization_id=organization_id,
        out_trade_no=f"T{clock.local(now):%Y%m%d}{secrets.token_hex(8).upper()}",
        amount_fen=amount_fen,
        provider=settings.PAYMENT_PROVIDER,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        expires_at=now + ORDER_LIFETIME,
    )


@dataclass(frozen=True)
class WebhookResult:
    status: int
    outcome: str
    credited: bool = False
    code: str | None = None
    message: str = ""

    def as_body(self) -> dict:
        if self.code:
            return {"code": self.code, "message": self.message, "field": None}
        return {"outcome": self.outcome, "credited": self.credited}


class _Replay(Exception):
    """Raised inside the transaction to roll it back when the event id was already stored."""


def payment_webhook_handle(
    *, provider_name: str, headers, body: bytes, now: dt.datetime | None = None
) -> WebhookResult:
    """Verify and apply one provider callback. Same payment → credited exactly once.

    Layers: (1) signature + 5-minute window (provider); (2) the order row lock: deliveries
    for one order are serialised, and a paid order is never paid again; (3) one ledger
    credit per order (unique constraint); (4) the provider event id is unique: the event row
    is inserted last (``ON CONFLICT DO NOTHING``) and a replay rolls the whole delivery back
    and answers 409. An amount or currency that differs from the order is refused, logged
    and kept as an event row.

    Hot path (bench/bench_topups.py): a "paid" callback is applied by one SQL statement
    (``billing.services.wallet.wallet_credit_paid_event``) with the same layers, written
    together with the process's other concurrent "paid" callbacks (``credit_group``) unless
    the caller is inside a transaction; "failed" callbacks take the ORM path below.
    """
    now = now or clock.now()
    provider = get_provider(provider_name)
    event = provider.verify_webhook(headers=headers, body=body, now=now)
    if not BIGINT_MIN <= event.amount_fen <= BIGINT_MAX:
        # No order holds such an amount, and no fen column can store it for the event row: a
        # malformed callback (any provider's), refused and logged rather than a database error.
        log.warning(
            "payment webhook refused: amount_fen %s out of range (%s, order %s)",
            event.amount_fen,
            provider.name,
            event.out_trade_no,
        )
        raise errors.BillingError("PAYMENT-MALFORMED", "amount_fen is out of range.", field="amount_fen")
    if event.status == "paid":
        paid = PaidEvent(
            provider=provider.name,
            event_id=event.event_id,
            out_trade_no=event.out_trade_no,
            amount_fen=event.amount_fen,
            currency=event.currency,
            provider_trade_no=event.provider_trade_no,
            payload=event.payload,
        )
        if credit_group.applies():
            outcome, _org, _credited = credit_group.credit(paid, now=now)
        else:
            outcome, _org, _credited = wallet_credit_paid_event(**vars(paid), now=now)
        if outcome is None:
            log.warning("payment webhook replay refused: %s %s", provider.name, event.event_id)
            return WebhookResult(409, "replay", code=errors.WEBHOOK_REPLAY, message="Event already received.")
        return _result_for(outcome=outcome, event=event)
    try:
        with transaction.atomic():
            order = locks.top_up_order_lock_by_trade_no(
                out_trade_no=event.out_trade_no, provider=provider.name
            )
            result = _apply(order=order, event=event, now=now)
            if not _event_insert(provider=provider.name, event=event, order=order, outcome=result.outcome):
                raise _Replay
    except _Replay:
        log.warning("payment webhook replay refused: %s %s", provider.name, event.event_id)
        return WebhookResult(409, "replay", code=errors.WEBHOOK_REPLAY, message="Event already received.")
    return result


_MISMATCH = WebhookResult(
    400,
    "rejected_mismatch",
    code=errors.WEBHOOK_MISMATCH,
    message="Amount or currency differs from the order.",
)
_UNKNOWN_ORDER = WebhookResult(404, "unknown_order", code="not_found", message="Unknown order.")


def _result_for(*, outcome: str, event) -> WebhookResult:
    if outcome == "credited":
        return WebhookResult(200, "credited", credited=True)
    if outcome == "already_paid":
        return WebhookResult(200, "already_paid")
    if outcome == "rejected_mismatch":
        log.warning(
            "payment webhook amount mismatch: order %s, callback says %s %s",
            event.out_trade_no,
            event.amount_fen,
            event.currency,
        )
        return _MISMATCH
    return _UNKNOWN_ORDER


def _apply(*, order: TopUpOrder | None, event, now: dt.datetime) -> WebhookResult:
    """Every callback that is not "paid" (those take ``wallet_credit_paid_event``)."""
    if order is None:
        return _UNKNOWN_ORDER
    if event.amount_fen != order.amount_fen or event.currency != order.currency:
        log.warning(
            "payment webhook amount mismatch: order %s expects %s %s, callback says %s %s",
            order.out_trade_no,
            order.amount_fen,
            order.currency,
            event.amount_fen,
            event.currency,
        )
        return _MISMATCH
    if event.status == "failed":
        if order.state != TopUpOrder.State.PENDING:
            return WebhookResult(200, "ignored_final")
        order.state = TopUpOrder.State.FAILED
        order.finished_at = now
        order.failure_reason = str(event.payload.get("reason", ""))[:200] or "declined"
        order.save(update_fields=["state", "finished_at", "failure_reason"])
        return WebhookResult(200, "failed")
    return WebhookResult(400, "unknown_status", code="PAYMENT-MALFORMED", message="Unknown status.")


def _event_insert(*, provider: str, event, order: TopUpOrder | None, outcome: str) -> bool:
    """Store the event; False when its id is already stored (a replay). One statement: the
    ORM's ``bulk_create(ignore_conflicts=True)`` cannot tell whether the row was inserted."""
    table = PaymentEvent._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (provider, event_id, order_id, status, amount_fen, currency, outcome,"
            " payload, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, now())"
            " ON CONFLICT (provider, event_id) DO NOTHING RETURNING id",
            [
                provider,
                event.event_id,
                order.pk if order else None,
                event.status[:20],
                event.amount_fen,
                event.currency,
                outcome,
                json.dumps(event.payload),
            ],
        )
        return cur.fetchone() is not None


def top_up_expire_due(*, now: dt.datetime | None = None) -> int:
    """Expire pending orders past their 30 minutes (beat job). A conditional update: an order
    a callback is paying right now keeps its lock and its state wins."""
    now = now or clock.now()
    return TopUpOrder.objects.filter(state=TopUpOrder.State.PENDING, expires_at__lte=now).update(
        state=TopUpOrder.State.EXPIRED, finished_at=now
    )


def request_fingerprint(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def idempotent_call(
    *, organization_id: int, scope: str, key: str, fingerprint: str, call
) -> tuple[int, dict, bool]:
    """Run ``call() -> (status, body)`` once per (organization, scope, key).

    Same key and same body → the first response again (``replayed`` True); same key with a
    different body → 409 ``IDEMPOTENCY-KEY-REUSED``. A concurrent request with the same key
    waits on the unique index (``ON CONFLICT DO NOTHING``) and then on the row lock, so it
    sees the first response rather than creating a second order.
    """
    if not key or len(key) > 100:
        raise errors.BillingError(
            "invalid", "Idempotency-Key must be 1-100 characters.", field="Idempotency-Key"
        )
    with transaction.atomic():
        IdempotencyKey.objects.bulk_create(
            [IdempotencyKey(organization_id=organization_id, scope=scope, key=key, fingerprint=fingerprint)],
            ignore_conflicts=True,
        )
        row = locks.idempotency_key_lock(organization_id=organization_id, scope=scope, key=key)
        if row.fingerprint != fingerprint:
            raise errors.BillingConflict(
                errors.IDEMPOTENCY_MISMATCH,
                "This Idempotency-Key was used with a different request body.",
                field="Idempotency-Key",
            )
        if row.response_status is not None:
            return row.response_status, row.response_body, True
        status, body = call()
        row.response_status, row.response_body = status, body
        row.save(update_fields=["response_status", "response_body"])
        return status, body, False
