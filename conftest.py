"""Project-wide test set-up.

- Every test database is PostgreSQL (settings have no other engine).
- ``PORTAL_REQUIRE_SERVICES=1`` (set by scripts/test, so by CI): a run that passes no test or
  skips any test fails, so a missing service can never turn into a silent green run.
- Browser fixtures drive Debian's Chromium through Playwright (never `playwright install`).
"""

import os

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# around it are synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config):
    from django.conf import settings

    # Tests serve static files straight from the finders: no collectstatic, no manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("PORTAL_REQUIRE_SERVICES") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    passed = len(reporter.stats.get("passed", []))
    skipped = len(reporter.stats.get("skipped", []))
    if skipped:
        reporter.write_line(
            f"FAIL: {skipped} test(s) skipped; every test must run against real services.", red=True
        )
        session.exitstatus = 1
    elif passed == 0:
        reporter.write_line("FAIL: no test passed.", red=True)
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (Redis in CI), so cached decisions never leak."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def redis_commands_sent(monkeypatch):
    """Every command any redis-py connection writes to its socket (a spy: behaviour unchanged),
    to prove a hot path is served from process memory (portal.hotcache)."""
    import redis.connection

    sent = []
    original = redis.connection.AbstractConnection.send_packed_command

    def spy(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", spy)
    return sent


@pytest.fixture
def cache_set_from_another_process():
    """Write a Django cache entry from a separate Python process (a real other Redis client,
    as another gunicorn worker or a Celery task would be), without forking this one."""
    import subprocess
    import sys

    from django.core.cache import caches

    def write(key, value, timeout=60):
        backend = caches["default"]
        full_key = backend.make_and_validate_key(key)
        payload = backend._cache._serializer.dumps(value)  # ints are stored as their digits
        payload = str(payload).encode() if isinstance(payload, int) else payload
        code = (
            "import sys, redis; url, key, value, ttl = sys.argv[1:]; "
            "redis.Redis.from_url(url).set(key, bytes.fromhex(value), ex=int(ttl))"
        )
        subprocess.run(
            [sys.executable, "-c", code, backend._servers[0], full_key, payload.hex(), str(timeout)],
            check=True,
            timeout=30,
        )

    return write


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does this)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


@pytest.fixture
def login(live_server):
    """login(page, username, password=demo password) signs in through the real form."""
    from portal.demo import DEMO_PASSWORD

    def _login(pg, username, password=DEMO_PASSWORD):
        pg.goto(f"{live_server.url}/accounts/login/")
        pg.fill("input[name=username]", username)
        pg.fill("input[name=password]", password)
        pg.click("button[type=submit]")
        pg.wait_for_url(f"{live_server.url}/**")
        return pg

    return _login
