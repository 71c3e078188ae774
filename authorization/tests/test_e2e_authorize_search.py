"""Browser journey (GRANT-2): a creator authorizes several organizations at once, found by
name one search after another."""

import datetime as dt

import pytest
from django.core.management import call_command

from authorization.models import Grant
from portal import clock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_grant_2_ticks_survive_a_new_search_and_all_ticked_organizations_are_authorized(
    page, live_server, login
):
    call_command("seed_demo")
    login(page, "creator2")
    page.goto(f"{live_server.url}/authorization/creator/")
    search = page.locator("#authorize input[name=q]")
    results = page.locator("#org-results")

    # The creator pastes a name (an input without key presses, as a paste or an IME commits
    # text) and ticks the shop it finds
    search.fill("Beauty")
    results.get_by_label("美妆全球购 Beauty Global").check()

    # then searches for an agency: the shop ticked before stays ticked beside the new results
    search.fill("Starlight")
    results.get_by_label("星光MCN机构 Starlight MCN").check()
    assert results.get_by_label("美妆全球购 Beauty Global").is_checked()

    # and authorizes both at once
    end = clock.today() + dt.timedelta(days=30)
    page.fill("#authorize input[name=end_date]", end.isoformat())
    with page.expect_navigation():
        page.click("#authorize button.primary")
    granted = Grant.objects.filter(creator__user__username="creator2", end_date=end)
    assert sorted(granted.values_list("organization__name", flat=True)) == [
        "星光MCN机构 Starlight MCN",
        "美妆全球购 Beauty Global",
    ]
