"""Browser: a gift dispute's key facts fit a phone's screen (no sideways scrolling to read them)."""

import pytest
from django.core.management import call_command

from gifts.models import GiftDispute

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

LONG_CLAIM = "下单页面写明赠送旅行装面霜一份 签收后只有正装商品 " * 6 + "https://example.com/" + "x" * 80


def test_on_a_phone_the_dispute_key_facts_wrap_instead_of_scrolling_sideways(page, live_server, login):
    # Given the demo shop's dispute with a long consumer claim (an unbroken URL in it)
    call_command("seed_demo")
    dispute = GiftDispute.objects.order_by("pk").first()
    GiftDispute.objects.filter(pk=dispute.pk).update(consumer_claim=LONG_CLAIM)
    # When the shop opens it on a phone
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "shop")
    page.goto(f"{live_server.url}/gifts/disputes/{dispute.pk}/")
    # Then the key-facts card is no wider than its box, and the claim is readable in full
    card = page.locator("table.facts").locator("xpath=ancestor::section[1]")
    assert card.evaluate("c => c.scrollWidth <= c.clientWidth"), "the key facts scroll sideways"
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    claim = page.locator("table.facts td", has_text="https://example.com/")
    assert claim.evaluate("td => td.getBoundingClientRect().right <= window.innerWidth")
