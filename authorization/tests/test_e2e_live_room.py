"""Browser journey (GRANT-3/9/11): the demo agency unlocks a live room (confirm dialog), the
creator authorizes it, the agency sees the data, the creator revokes, the agency no longer does."""

import pytest
from django.core.management import call_command

from authorization.models import LiveRoom, LiveRoomRequest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

TITLE = "小鹿带货·春季上新专场"


def test_agency_unlocks_a_live_room_and_loses_it_on_revoke(page, browser, live_server, login, staff_groups):
    call_command("seed_demo")
    room = LiveRoom.objects.get(title=TITLE)
    room_url = f"{live_server.url}/authorization/org/live-rooms/{room.pk}/"

    # The agency finds the room and asks; dismissing the dialog sends nothing.
    login(page, "agency")
    page.goto(f"{live_server.url}/authorization/org/live-rooms/")
    page.click(f"text={TITLE}")
    page.wait_for_url(room_url)
    assert page.locator("#no-access").is_visible()
    page.once("dialog", lambda d: d.dismiss())
    page.click("text=解锁更多数据")
    page.wait_for_timeout(300)
    assert not LiveRoomRequest.objects.filter(
        live_room=room, organization__name__contains="Starlight"
    ).exists()
    page.once("dialog", lambda d: d.accept())
    with page.expect_navigation():
        page.click("text=解锁更多数据")
    assert page.locator("#request-pending").is_visible()

    # The creator authorizes it from the pending list.
    creator_ctx = browser.new_context(locale="zh-CN")
    cpage = creator_ctx.new_page()
    cpage.set_default_timeout(15_000)
    login(cpage, "creator")
    cpage.goto(f"{live_server.url}/authorization/creator/")
    row = cpage.locator("#requests tr", has_text=TITLE).filter(has_text="星光MCN")
    with cpage.expect_navigation():
        row.locator("button", has_text="授权").click()
    assert cpage.locator("#room-grants", has_text=TITLE).is_visible()

    # The agency now sees the figures and the chart.
    page.goto(room_url)
    assert page.locator("#sales-data").is_visible()
    assert page.locator("canvas[data-chart]").is_visible()
    page.wait_for_function("() => window.Chart && Object.keys(window.Chart.instances).length > 0")

    # The creator revokes (confirm dialog); the agency's next request no longer shows the data.
    cpage.once("dialog", lambda d: d.accept())
    with cpage.expect_navigation():
        cpage.locator("#room-grants tr", has_text=TITLE).locator("button", has_text="解除授权").click()
    assert not cpage.locator("#room-grants tr", has_text=TITLE).count()
    creator_ctx.close()

    page.goto(room_url)
    assert page.locator("#no-access").is_visible()
    assert page.locator("#sales-data").count() == 0
    assert page.locator("text=解锁更多数据").is_visible()
