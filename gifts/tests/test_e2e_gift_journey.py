"""Browser journey: the demo shop registers a food gift and uploads its licence; a gift
reviewer approves both in admin (second browser context); the shop attaches the gift to a
product and the pre-check passes."""

import pytest
from django.core.management import call_command

from gifts.models import Gift, ProductGift, Qualification
from gifts.tests.factories import pdf_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_shop_registers_food_gift_staff_approve_in_admin_and_precheck_passes(
    migration_data, page, browser, live_server, login, tmp_path
):
    call_command("seed_demo")
    base = live_server.url

    # The shop registers a food gift (GIFT-2.1) and submits it.
    login(page, "shop")
    page.goto(f"{base}/gifts/new/")
    page.fill("input[name=name]", "澳洲坚果小包装")
    page.fill("input[name=brand]", "Macadamia/澳坚")
    page.select_option("select[name=category]", label="食品")
    page.fill("input[name=kind]", "坚果")
    page.fill("input[name=spec]", "50g")
    page.fill("input[name=quantity_per_order]", "1")
    page.select_option("select[name=ship_from]", "bonded")
    page.fill("input[name=declared_value]", "19.90")
    with page.expect_navigation():
        page.click("button[name=submit]")
    gift = Gift.objects.get(name="澳洲坚果小包装")
    assert gift.state == "submitted"
    assert page.locator('[data-rule="GIFT-2.3"]').count() == 1  # the licence is still missing

    # It uploads its food business licence (GIFT-2.3) as a real PDF.
    licence = tmp_path / "licence.pdf"
    licence.write_bytes(pdf_bytes())
    page.goto(f"{base}/gifts/qualifications/")
    page.fill("input[name=licence_type]", "食品经营许可证")
    page.set_input_files("input[name=file]", str(licence))
    with page.expect_navigation():
        page.click("form[enctype] button[type=submit]")
    qualification = Qualification.objects.get(shop=gift.shop)
    assert qualification.state == "pending" and qualification.content_type == "application/pdf"

    # A gift reviewer approves the licence, then the gift, in admin (another browser context).
    staff_context = browser.new_context(locale="zh-CN")
    staff = staff_context.new_page()
    staff.set_default_timeout(15_000)
    try:
        login(staff, "gift_reviewer")
        staff.goto(f"{base}/admin/gifts/qualification/")
        doc_link = staff.locator(f'a[href="/gifts/documents/qualification/{qualification.pk}/"]')
        assert doc_link.count() == 1
        response = staff.request.get(f"{base}/gifts/documents/qualification/{qualification.pk}/")
        assert response.status == 200 and response.body().startswith(b"%PDF-")
        staff.check(f'input[name=_selected_action][value="{qualification.pk}"]')
        staff.select_option("select[name=action]", "approve")
        with staff.expect_navigation():
            staff.click("button[name=index]")
        staff.fill("input[name=licence_number]", "JY13101010000001")
        staff.fill("input[name=valid_until]", "2099-12-31")
        with staff.expect_navigation():
            staff.click("input[name=apply]")
        qualification.refresh_from_db()
        assert qualification.state == "approved"

        staff.goto(f"{base}/admin/gifts/gift/")
        staff.check(f'input[name=_selected_action][value="{gift.pk}"]')
        staff.select_option("select[name=action]", "approve")
        with staff.expect_navigation():
            staff.click("button[name=index]")
        gift.refresh_from_db()
        assert gift.state == "approved", staff.locator(".messagelist").inner_text()
    finally:
        staff_context.close()

    # The shop attaches the approved gift to a product and the pre-check passes.
    page.goto(f"{base}/gifts/products/")
    page.fill("input[name=title]", "进口混合坚果礼盒 500g")
    with page.expect_navigation():
        page.click("form button.primary")
    page.select_option("#attach-gift", str(gift.pk))
    with page.expect_navigation():
        page.click("button[value=attach]")
    assert ProductGift.objects.filter(gift=gift).count() == 1
    with page.expect_navigation():
        page.click("#precheck-button")
    assert page.locator("#findings").get_attribute("data-passed") == "true"
    assert page.locator(".precheck-pass").is_visible()
