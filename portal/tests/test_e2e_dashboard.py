"""Browser journeys: the demo developer signs in and sees the dashboard; pages fit a phone's screen."""

import pytest
from django.core.management import call_command

from portal.models import User

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


PAGE_OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"
TEXT_HEIGHT_JS = """(cell, text) => {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  let node = walker.nextNode();
  while (node && !node.textContent.includes(text)) node = walker.nextNode();
  const range = document.createRange();
  range.selectNodeContents(node);
  return [range.getBoundingClientRect().height, parseFloat(getComputedStyle(node.parentElement).fontSize)];
}"""
NAV_ROWS_JS = "() => new Set([...document.querySelectorAll('nav.mainnav a')].map(a => a.offsetTop)).size"


@pytest.mark.parametrize(
    ("username", "path", "column"),
    [
        ("dev", "/billing/wallet/", "结算扣费"),
        ("creator", "/authorization/creator/", "商家/店铺"),
        ("shop", "/authorization/org/", "全部带货数据"),
    ],
)
def test_on_a_phone_pages_fit_the_screen_and_wide_tables_scroll_inside_their_box(
    page, live_server, login, username, path, column
):
    call_command("seed_demo")
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, username)
    page.goto(f"{live_server.url}{path}")
    assert page.evaluate(PAGE_OVERFLOW_JS) <= 0, "the page is wider than the phone's screen"
    assert page.evaluate(NAV_ROWS_JS) == 1, "the main navigation is one row that scrolls sideways"
    cell = page.locator("table.table td", has_text=column).first
    box = cell.locator("xpath=ancestor::*[contains(@class, 'card') or contains(@class, 'table-scroll')][1]")
    assert box.evaluate("b => b.scrollWidth > b.clientWidth"), "the table scrolls inside its card or box"
    height, size = cell.evaluate(TEXT_HEIGHT_JS, column)
    assert height < 2 * size, f"{column!r} is broken over several lines"


def _middle(box):
    return box["y"] + box["height"] / 2


def test_each_top_up_preset_sits_on_the_line_of_its_amount(page, live_server, login):
    call_command("seed_demo")
    login(page, "dev")
    page.goto(f"{live_server.url}/billing/top-up/")
    radios = page.locator("#topup-form input[type=radio]")
    assert radios.count() == 5
    for i in range(radios.count()):
        radio = radios.nth(i).bounding_box()
        label = page.locator(f"label[for='{radios.nth(i).get_attribute('id')}']").bounding_box()
        assert abs(_middle(radio) - _middle(label)) < label["height"] / 2
        assert radio["x"] < label["x"]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_on_a_desktop_a_shops_whole_navigation_fits_one_row_below_the_account_bar(
    page, live_server, login, language
):
    call_command("seed_demo")
    User.objects.filter(username="shop").update(language=language)
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, "shop")
    assert page.locator("nav.mainnav a").count() >= 12  # every section of a shop that also develops
    assert page.evaluate(NAV_ROWS_JS) == 1
    assert page.evaluate(PAGE_OVERFLOW_JS) <= 0


ACCOUNT_ROWS_JS = """() => new Set([...document.querySelector('.topbar-right').children]
  .filter(el => el.offsetParent !== null)
  .map(el => { const r = el.getBoundingClientRect(); return Math.round((r.top + r.bottom) / 2); })).size"""


@pytest.mark.parametrize("username", ["dev", "shop"])
def test_on_a_phone_the_account_controls_take_one_row_and_the_user_menu_signs_out(
    page, live_server, login, username
):
    call_command("seed_demo")
    User.objects.filter(username=username).update(language="en")
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, username)
    assert page.evaluate(ACCOUNT_ROWS_JS) == 1, "organization, language and user menu share one row"
    assert page.evaluate(PAGE_OVERFLOW_JS) <= 0
    sign_out = page.get_by_role("button", name="Sign out")
    assert not sign_out.is_visible(), "password and sign-out wait in the closed user menu"
    page.locator(".usermenu summary").click()
    assert page.get_by_role("link", name="Change password").is_visible()
    page.keyboard.press("Escape")
    assert not sign_out.is_visible(), "Escape closes the menu"
    page.locator(".usermenu summary").click()
    page.locator("h1").click()
    assert not sign_out.is_visible(), "a click elsewhere closes the menu"
    page.locator(".usermenu summary").click()
    with page.expect_navigation():
        sign_out.click()
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
