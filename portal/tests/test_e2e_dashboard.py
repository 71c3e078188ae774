"""Browser journey: the demo developer signs in and sees the dashboard."""

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_demo_developer_signs_in_and_sees_the_dashboard(page, live_server, login):
    call_command("seed_demo")
    login(page, "dev")
    assert page.url == f"{live_server.url}/"
    assert page.locator("h1").inner_text().startswith("你好")
    assert page.locator('[data-role="developer"]').is_visible()
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    assert page.locator("nav.mainnav >> text=Dashboard").is_visible()
