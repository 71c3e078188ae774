"""The built-in ``sandbox`` provider: a cashier page in this portal (pay / fail buttons) and a
webhook signed with HMAC-SHA256 over ``f"{timestamp}.{body}"`` using
``settings.SANDBOX_WEBHOOK_SECRET``.

Headers: ``X-Sandbox-Timestamp`` (unix seconds) and ``X-Sandbox-Signature`` (hex digest).
A callback older than ``TOLERANCE`` (or more than that in the future) is refused, so a
captured callback cannot be replayed later; a replay inside the window is refused by the
unique event id (``PaymentEvent``).
"""

import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import uuid

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.urls import resolve, reverse

from billing import errors
from billing.payments import PaymentProvider, WebhookEvent

log = logging.getLogger(__name__)

TOLERANCE = dt.timedelta(minutes=5)
TIMESTAMP_HEADER = "X-Sandbox-Timestamp"
SIGNATURE_HEADER = "X-Sandbox-Signature"


def sign(*, timestamp: int | str, body: bytes, secret: str | None = None) -> str:
    secret = secret if secret is not None else settings.SANDBOX_WEBHOOK_SECRET
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def event_body(*, order, status: str, event_id: str | None = None, amount_fen=None, currency=None) -> bytes:
    """The JSON the sandbox sends for ``order`` (compact, keys sorted)."""
    payload = {
        "event_id": event_id or f"evt_{uuid.uuid4().hex}",
        "out_trade_no": order.out_trade_no,
        "status": status,
        "amount_fen": order.amount_fen if amount_fen is None else amount_fen,
        "currency": currency or order.currency,
        "provider_trade_no": f"SBX{uuid.uuid4().hex[:16].upper()}",
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class SandboxProvider(PaymentProvider):
    name = "sandbox"

    def checkout_url(self, *, order) -> str:
        return reverse("billing:sandbox-cashier", args=[order.out_trade_no])

    def verify_webhook(self, *, headers, body: bytes, now: dt.datetime) -> WebhookEvent:
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        signature = headers.get(SIGNATURE_HEADER, "")
        if not timestamp.isdigit() or not signature:
            raise errors.BillingError(errors.WEBHOOK_SIGNATURE, "Missing signature headers.", status=401)
        if not hmac.compare_digest(sign(timestamp=timestamp, body=body), signature):
            raise errors.BillingError(errors.WEBHOOK_SIGNATURE, "Bad signature.", status=401)
        try:
            sent_at = dt.datetime.fromtimestamp(int(timestamp), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            sent_at = None  # digits no clock can hold: certainly not within the window
        if sent_at is None or abs(now - sent_at) > TOLERANCE:
            raise errors.BillingError(
                errors.WEBHOOK_STALE, "Timestamp outside the 5-minute window.", status=401
            )
        try:
            data = json.loads(body)
            amount = data["amount_fen"]
            # Money rules: the amount must equal the order's, in integer fen. int() would turn
            # 100.9 (or "100") into 100 and let it match a 100-fen order.
            if type(amount) is not int:
                log.warning(
                    "payment webhook refused: amount_fen %r is not an integer of fen (order %s)",
                    amount,
                    str(data.get("out_trade_no", ""))[:40],
                )
                raise errors.BillingError(
                    "PAYMENT-MALFORMED", "amount_fen must be an integer number of fen.", field="amount_fen"
                )
            return WebhookEvent(
                event_id=str(data["event_id"])[:64],
                out_trade_no=str(data["out_trade_no"])[:40],
                status=str(data["status"]),
                amount_fen=amount,
                currency=str(data["currency"])[:3],
                provider_trade_no=str(data.get("provider_trade_no", ""))[:64],
                payload=data,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.BillingError("PAYMENT-MALFORMED", "Malformed callback body.") from exc

    def deliver(self, *, body: bytes, host: str, now: dt.datetime):
        """The sandbox's side of the callback: sign ``body`` and hand it to our webhook view,
        through the URL resolver, exactly as an HTTP POST would arrive (raw body + headers).
        In-process so the demo and tests need no network and no second web worker."""
        timestamp = str(int(now.timestamp()))
        path = reverse("billing-api:payment-webhook", args=[self.name])
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_HOST": host,
            "SERVER_NAME": "sandbox",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_X_SANDBOX_TIMESTAMP": timestamp,
            "HTTP_X_SANDBOX_SIGNATURE": sign(timestamp=timestamp, body=body),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
        }
        request = WSGIRequest(environ)
        match = resolve(path)
        response = match.func(request, *match.args, **match.kwargs)
        if hasattr(response, "render"):
            response.render()
        return response
