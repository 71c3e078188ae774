"""Outgoing webhook of an organization: JSON body signed with HMAC-SHA256.

Headers: ``X-Portal-Timestamp: <unix seconds>`` and
``X-Portal-Signature: sha256=<hex hmac(secret, timestamp + "." + body)>``; a receiver recomputes
it, compares in constant time and rejects old timestamps (replay).
"""

import hashlib
import hmac
import json
import time
import urllib.request


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: int, body: bytes, signature: str, *, tolerance: int = 300, now=None
) -> bool:
    now = int(now if now is not None else time.time())
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def post(*, url: str, secret: str, payload: dict, timeout: float = 10.0) -> int:
    """POST the signed payload; returns the HTTP status, raises on network errors and >= 400."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = int(time.time())
    req = urllib.request.Request(  # noqa: S310 (the URL is an http(s) URLField set by staff)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Portal-Timestamp": str(timestamp),
            "X-Portal-Signature": sign(secret, timestamp, body),
        },
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        return resp.status
