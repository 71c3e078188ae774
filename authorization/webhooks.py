"""Outgoing webhook of an organization: JSON body signed with HMAC-SHA256.

Headers: ``X-Portal-Timestamp: <unix seconds>`` and
``X-Portal-Signature: sha256=<hex hmac(secret, timestamp + "." + body)>``; a receiver recomputes
it, compares in constant time and rejects old timestamps (replay).

Delivery (``post``) connects to the address it checked: with ``public_only`` the host name is
resolved once, refused when any address is not public, and the TCP connection goes to that
address (TLS still verifies the certificate against the host name). A second lookup at connect
time, which a name with a short TTL could answer with an internal address (DNS rebinding), never
happens. Redirects are not followed: a 3xx is a failed delivery, so a receiver cannot bounce the
portal to another host either. When the environment sets an HTTP(S) proxy for the URL, the
address check still runs first and then the proxy connects.
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit


class InternalAddressRefused(Exception):
    """The webhook host resolves to a loopback / private / link-local address (not retried)."""


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


def post(*, url: str, secret: str, payload: dict, timeout: float = 10.0, public_only: bool = False) -> int:
    """POST the signed payload; returns the HTTP status. Raises ``OSError`` on network errors
    and on any status ≥ 300 (``urllib.error.HTTPError`` with ``code``), and
    ``InternalAddressRefused`` when ``public_only`` and the host resolves inside."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Portal-Timestamp": str(timestamp),
        "X-Portal-Signature": sign(secret, timestamp, body),
    }
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _public_address(parts.hostname, port) if public_only else None
    if _proxy_for(parts):  # checked above all the same: a general egress proxy may reach inside
        return _post_via_proxy(url=url, body=body, headers=headers, timeout=timeout)
    conn_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    kwargs = {"context": _tls_context()} if parts.scheme == "https" else {}
    conn = conn_class(parts.hostname, port, timeout=timeout, address=address, **kwargs)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read(65536)  # the receiver's answer is not used; read a little so it can finish
        if resp.status >= 300:
            raise urllib.error.HTTPError(url, resp.status, resp.reason, resp.headers, None)
        return resp.status
    finally:
        conn.close()


def _resolve(host: str, port: int) -> list[str]:
    """Every address the host name resolves to (patched in tests: no DNS there)."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [info[4][0] for info in infos]


def _tls_context() -> ssl.SSLContext:
    """Verifies the certificate chain and the host name (tests trust their own CA here)."""
    return ssl.create_default_context()


def _public_address(host: str, port: int) -> str:
    """Resolve once; refuse the host if any of its addresses is not public; return the first."""
    addresses = _resolve(host, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    for address in addresses:
        if not ipaddress.ip_address(address.split("%")[0]).is_global:
            raise InternalAddressRefused(f"{host} resolves to {address}")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address`` (already checked) instead of resolving ``host`` again."""

    def __init__(self, host, port, *, address: str | None, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address or self.host, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above over TLS: SNI and certificate verification use the host name, not the address."""

    def __init__(self, host, port, *, address: str | None, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address or self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _proxy_for(parts) -> str | None:
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        return proxy
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError for the 3xx


def _post_via_proxy(*, url: str, body: bytes, headers: dict, timeout: float) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(), _NoRedirect())
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    with opener.open(req, timeout=timeout) as resp:
        return resp.status
