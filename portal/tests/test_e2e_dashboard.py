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
NAV_ROWS_JS = "() => new Set([...document.querySelectorAll('nav.mainnav a')].map(a => a.offsetTop)).size"


IN_VIEW_JS = """el => { const r = el.getBoundingClientRect();
  return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth; }"""
SIDEWAYS_JS = """() => [...document.querySelectorAll('main *')]
  .filter(el => el.clientWidth > 1 && el.scrollWidth > el.clientWidth + 1
    && getComputedStyle(el).overflowX !== 'visible')  // (a visually hidden heading row is 1px)
  .map(el => el.tagName + '.' + el.className)"""


@pytest.mark.parametrize(
    ("username", "path", "columns"),
    [
        ("dev", "/billing/wallet/", ["金额", "余额", "备注"]),
        ("dev", "/billing/bills/", ["应付合计", "结算时间"]),
        ("shop", "/gifts/", ["申报价值", "状态"]),
        ("shop", "/authorization/org/", ["截止日期", "状态"]),
        ("creator", "/authorization/creator/", ["截止日期", "操作"]),
    ],
)
def test_on_a_phone_list_tables_show_every_column_without_scrolling_sideways(
    page, live_server, login, username, path, columns
):
    # Given the demo data, when a user opens a list on a phone
    call_command("seed_demo")
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, username)
    page.goto(f"{live_server.url}{path}")
    # Then nothing on the page scrolls sideways: no hidden columns with nothing to say so
    assert page.evaluate(PAGE_OVERFLOW_JS) <= 0, "the page is wider than the phone's screen"
    assert page.evaluate(SIDEWAYS_JS) == [], "a box scrolls sideways"
    # and each key column of the first row is on screen, labelled with its heading
    row = page.locator(f'table.table tbody tr:has(td[data-label="{columns[0]}"])').first
    for column in columns:
        cell = row.locator(f'td[data-label="{column}"]')
        assert cell.count() == 1, column
        assert cell.evaluate(IN_VIEW_JS), f"{column} is off screen"
        label = cell.evaluate("td => getComputedStyle(td, '::before').content")
        assert label == f'"{column}"', f"{column}'s value is shown without its heading"


@pytest.mark.parametrize("username", ["dev", "shop"])
def test_on_a_phone_every_main_navigation_link_is_on_screen(page, live_server, login, username):
    # Given a shop (a dozen sections) or a developer, when they sign in on a phone
    call_command("seed_demo")
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, username)
    links = page.locator("nav.mainnav a")
    assert links.count() >= (12 if username == "shop" else 8)
    # Then every section's link is on screen, none cut off at the right edge
    for i in range(links.count()):
        assert links.nth(i).evaluate(IN_VIEW_JS), links.nth(i).inner_text()
    assert page.evaluate(PAGE_OVERFLOW_JS) <= 0


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
