"""Browser: a gift's key facts fit a phone's screen. The facts table (label, value, label,
value) was four columns wide: on a phone the card scrolled sideways and hid the category,
the ship-from and the declared value to the right, with nothing to say they were there."""

import pytest
from django.core.management import call_command

from gifts.models import Gift

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_on_a_phone_the_gift_key_facts_stack_instead_of_hiding_to_the_right(page, live_server, login):
    # Given the demo shop's gift
    call_command("seed_demo")
    gift = Gift.objects.filter(shop__name__contains="Global Goods").order_by("pk").first()
    # When the shop opens it on a phone
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "shop")
    page.goto(f"{live_server.url}/gifts/{gift.pk}/")
    # Then the key-facts card is no wider than its box, and every fact is on screen
    facts = page.locator("main section.card table").first
    card = facts.locator("xpath=ancestor::section[1]")
    assert card.evaluate("c => c.scrollWidth <= c.clientWidth"), "the key facts scroll sideways"
    for label in ("类目", "发货地", "申报价值", "抽奖赠品"):
        cell = facts.locator("th", has_text=label)
        assert cell.evaluate("th => th.getBoundingClientRect().right <= window.innerWidth"), label
