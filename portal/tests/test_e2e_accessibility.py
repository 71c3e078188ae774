"""Accessibility: the pages each kind of user works in pass axe-core's WCAG 2 A and AA rules in
Chromium (contrast of text and buttons, labels of form fields, links told apart from text, …)."""

from pathlib import Path

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
RUN_AXE = """async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})).violations.map(
  v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)"""

PAGES = {
    "dev": [
        "/",
        "/billing/wallet/",
        "/billing/top-up/",
        "/billing/top-ups/",
        "/billing/usage/",
        "/billing/bills/",
        "/billing/invoices/",
        "/billing/deposit/",
        "/billing/apps/",
        "/notifications/",
    ],
    "creator": ["/", "/authorization/creator/"],
    "shop": [
        "/",
        "/gifts/",
        "/gifts/new/",
        "/gifts/disputes/",
        "/authorization/org/",
        "/authorization/org/live-rooms/",
    ],
    None: ["/accounts/login/"],
}


@pytest.mark.parametrize("username", list(PAGES), ids=lambda u: u or "signed-out")
def test_pages_pass_wcag_2_aa_checks(page, live_server, login, username):
    call_command("seed_demo")
    if username:
        login(page, username)
    found = []
    for path in PAGES[username]:
        page.goto(f"{live_server.url}{path}")
        assert page.locator("main").count() == 1, f"{path} did not render"
        page.evaluate(AXE)
        found += [f"{path}: {violation}" for violation in page.evaluate(RUN_AXE)]
    assert not found, "\n".join(found)
