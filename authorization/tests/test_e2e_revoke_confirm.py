"""Browser (GRANT-4 revoke): cancelling the 解除授权 confirmation sends nothing. The revoke form
is posted by htmx, whose own submit listener on the form ran before the page's confirm."""

import pytest
from django.core.management import call_command

from authorization.models import Grant, GrantEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SHOP = "跨境好物旗舰店 Global Goods"


def test_grant_4_cancelling_the_revoke_confirmation_keeps_the_grant(page, live_server, login):
    call_command("seed_demo")
    grant = Grant.objects.get(
        creator__user__username="creator", organization__name=SHOP, scope="all_data", revoked_at=None
    )
    login(page, "creator")
    page.goto(f"{live_server.url}/authorization/creator/")
    revoke = page.locator(f"#grant-{grant.pk} button", has_text="解除授权")
    requests = []
    page.on("request", lambda r: requests.append(r.url) if r.method == "POST" else None)

    # When the creator clicks 解除授权 and answers Cancel
    dialogs = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    revoke.click()
    page.wait_for_timeout(500)

    # Then nothing is sent and the grant stands
    assert dialogs and "解除授权" in dialogs[0]
    assert requests == []
    grant.refresh_from_db()
    assert grant.revoked_at is None
    assert not GrantEvent.objects.filter(grant=grant, operation="revoke").exists()

    # When the creator clicks again and confirms, it is revoked (and the row says so)
    page.once("dialog", lambda d: d.accept())
    with page.expect_response(lambda r: "/revoke/" in r.url):
        revoke.click()
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    page.locator(f"#grant-{grant.pk}", has_text="已被解除授权").wait_for()
