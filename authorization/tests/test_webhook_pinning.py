"""GRANT-11 webhook delivery: the portal connects to the address it checked, never to a second
DNS answer (rebinding), follows no redirect, and verifies TLS against the host name.

A local receiver stands in for the organization's server; ``webhooks._resolve`` stands in for DNS
(no DNS here) and ``socket.create_connection`` is watched to see which address was dialled.
"""

import http.server
import socket
import ssl
import threading
import urllib.error

import pytest
import trustme

from authorization import webhooks

PUBLIC = "93.184.216.34"  # a global address: what the name resolved to when it was checked


class _Receiver(http.server.BaseHTTPRequestHandler):
    calls: list = []
    status = 204
    location = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.calls.append((self.path, dict(self.headers), body))
        self.send_response(_Receiver.status)
        if _Receiver.location:
            self.send_header("Location", _Receiver.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # a followed redirect would arrive here
        _Receiver.calls.append((self.path, dict(self.headers), b""))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _serve(wrap=None):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    if wrap:
        server.socket = wrap(server.socket)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.calls, _Receiver.status, _Receiver.location = [], 204, None
    return server


@pytest.fixture
def receiver():
    server = _serve()
    yield server.server_port, _Receiver.calls
    server.shutdown()


@pytest.fixture
def dialled(monkeypatch):
    """Every (address, port) dialled; the checked public address is routed to the receiver."""
    real = socket.create_connection
    seen = []

    def create_connection(address, *args, **kwargs):
        seen.append(address)
        host, port = address
        return real(("127.0.0.1" if host == PUBLIC else host, port), *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return seen


def test_grant_11_delivery_posts_the_signed_body(receiver):
    port, calls = receiver
    status = webhooks.post(url=f"http://127.0.0.1:{port}/hook?x=1", secret="s3", payload={"a": 1})
    assert status == 204
    ((path, headers, body),) = calls
    assert path == "/hook?x=1" and body == b'{"a":1}'
    assert webhooks.verify("s3", int(headers["X-Portal-Timestamp"]), body, headers["X-Portal-Signature"])


def test_grant_11_rebinding_the_name_after_the_check_changes_nothing(receiver, dialled, monkeypatch):
    """The name answers a public address first and 127.0.0.1 afterwards: only the first answer
    is used, for the check and for the connection."""
    port, calls = receiver
    answers = iter([[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]])
    lookups = []
    monkeypatch.setattr(webhooks, "_resolve", lambda host, p: lookups.append(host) or next(answers))
    status = webhooks.post(
        url=f"http://hooks.example.com:{port}/in", secret="s", payload={}, public_only=True
    )
    assert status == 204
    assert lookups == ["hooks.example.com"]  # resolved once
    assert dialled == [(PUBLIC, port)]  # and dialled the address that was checked
    ((_path, headers, _body),) = calls
    assert headers["Host"] == f"hooks.example.com:{port}"


@pytest.mark.parametrize("inside", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1", "fd00::1"])
def test_grant_11_a_name_resolving_inside_is_refused_before_connecting(inside, dialled, monkeypatch):
    monkeypatch.setattr(webhooks, "_resolve", lambda host, p: [PUBLIC, inside])
    with pytest.raises(webhooks.InternalAddressRefused, match=inside):
        webhooks.post(url="https://hooks.example.com/in", secret="s", payload={}, public_only=True)
    assert dialled == []


def test_grant_11_a_redirect_is_a_failed_delivery_not_followed(receiver):
    port, calls = receiver
    _Receiver.status, _Receiver.location = 302, f"http://127.0.0.1:{port}/elsewhere"
    with pytest.raises(urllib.error.HTTPError) as exc:
        webhooks.post(url=f"http://127.0.0.1:{port}/hook", secret="s", payload={})
    assert exc.value.code == 302
    assert [c[0] for c in calls] == ["/hook"]  # /elsewhere was never requested


def test_grant_11_an_error_status_raises_for_the_retry(receiver):
    port, _calls = receiver
    _Receiver.status = 503
    with pytest.raises(OSError) as exc:  # HTTPError is an OSError: the task retries it
        webhooks.post(url=f"http://127.0.0.1:{port}/hook", secret="s", payload={})
    assert exc.value.code == 503


@pytest.fixture
def tls_receiver(monkeypatch):
    """An https receiver whose certificate names hooks.example.com, signed by a test CA that the
    portal's TLS context trusts for this test only."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.example.com").configure_cert(server_ctx)
    server = _serve(wrap=lambda sock: server_ctx.wrap_socket(sock, server_side=True))

    def client_context():
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        return ctx

    monkeypatch.setattr(webhooks, "_tls_context", client_context)
    yield server.server_port
    server.shutdown()


def test_grant_11_tls_to_the_checked_address_verifies_the_host_name(tls_receiver, dialled, monkeypatch):
    monkeypatch.setattr(webhooks, "_resolve", lambda host, p: [PUBLIC])
    url = f"https://hooks.example.com:{tls_receiver}/in"
    assert webhooks.post(url=url, secret="s", payload={"b": 2}, public_only=True) == 204
    assert dialled == [(PUBLIC, tls_receiver)]
    assert _Receiver.calls[0][2] == b'{"b":2}'


def test_grant_11_tls_refuses_a_certificate_for_another_name(tls_receiver, monkeypatch):
    monkeypatch.setattr(webhooks, "_resolve", lambda host, p: [PUBLIC])
    monkeypatch.setattr(socket, "create_connection", _to_localhost(socket.create_connection))
    with pytest.raises(ssl.SSLCertVerificationError):
        webhooks.post(
            url=f"https://other.example.com:{tls_receiver}/in", secret="s", payload={}, public_only=True
        )
    assert _Receiver.calls == []


def _to_localhost(real):
    return lambda address, *a, **k: real(("127.0.0.1", address[1]), *a, **k)


@pytest.fixture
def proxy_to(monkeypatch):
    def use(port):
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)

    return use


def test_grant_11_an_egress_proxy_from_the_environment_does_the_connecting(receiver, proxy_to, monkeypatch):
    """With HTTP_PROXY set the proxy connects; the name is still checked here first."""
    port, calls = receiver
    proxy_to(port)
    monkeypatch.setattr(webhooks, "_resolve", lambda host, p: [PUBLIC])
    assert webhooks.post(url="http://hooks.example.com/in", secret="s", payload={}, public_only=True) == 204
    assert calls[0][0] == "http://hooks.example.com/in"  # the absolute form a proxy receives


def test_grant_11_a_name_resolving_inside_is_refused_even_through_a_proxy(receiver, proxy_to, monkeypatch):
    """A general egress proxy can reach the internal network: the check does not rely on it."""
    port, calls = receiver
    proxy_to(port)
    monkeypatch.setattr(webhooks, "_resolve", lambda host, p: ["10.1.2.3"])
    with pytest.raises(webhooks.InternalAddressRefused):
        webhooks.post(url="http://intranet.example.com/admin", secret="s", payload={}, public_only=True)
    assert calls == []
