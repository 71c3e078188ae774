"""The inbox shows a notification in the reader's language, whatever language was active when
it was sent: the row keeps the source msgid and its parameters and is translated on display."""

import datetime as dt
import html

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

from authorization.services import grant_revoke
from authorization.tests.factories import GrantFactory
from gifts.models import Gift
from gifts.services import gift_reject
from gifts.tests.factories import GiftFactory
from portal import clock
from portal.models import Notification
from portal.services import notification_send
from portal.tests.factories import CreatorFactory, OrganizationFactory, UserFactory, main_member

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def _compiled_catalogues():
    call_command("compile_catalogs", verbosity=0)


@pytest.fixture
def reader(settings, _compiled_catalogues):
    """A signed-in client for ``user`` in ``language`` (the language switch's cookie); catalogues
    reloaded from the freshly compiled .mo files."""
    settings.LOCALE_PATHS = list(django_settings.LOCALE_PATHS)

    def make(user, language):
        client = Client()
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        client.force_login(user)
        return client

    return make


def page_text(client, name) -> str:
    resp = client.get(reverse(name))
    assert resp.status_code == 200
    return html.unescape(resp.content.decode())


def test_notice_sent_while_chinese_is_active_reads_in_english_for_an_english_reader(reader):
    # given a shop whose main account reads English, and a creator who revokes in Chinese
    shop_main = main_member(OrganizationFactory(name="Global Goods", kind="shop"))
    creator = CreatorFactory(nickname="Luna")
    today = clock.today()
    grant = GrantFactory(
        creator=creator,
        organization=shop_main.organization,
        start_date=today - dt.timedelta(days=3),
        end_date=today + dt.timedelta(days=20),
    )
    with translation.override("zh-hans"):
        grant_revoke(grant=grant, actor=creator.user)
    # then the row keeps the source text and its values
    note = Notification.objects.get(user=shop_main.user, kind="grant.revoked")
    assert note.title_msgid == "%(creator)s 解除了数据授权"
    assert note.params == {"creator": "Luna"}
    # when the English reader opens the inbox, the dashboard and the API
    english = reader(shop_main.user, "en")
    for name in ("notifications", "dashboard"):
        text = page_text(english, name)
        # then the title is in English
        assert "Luna revoked the data grant" in text, name
        assert "解除了数据授权" not in text, name
    api = english.get(reverse("portal-api:notifications")).json()
    assert [n["title"] for n in api["results"]] == ["Luna revoked the data grant"]
    # and the same row still reads in Chinese for a Chinese reader
    assert "Luna 解除了数据授权" in page_text(reader(shop_main.user, "zh-hans"), "notifications")


def test_notice_sent_while_english_is_active_reads_in_chinese_for_a_chinese_reader(reader):
    # given a staff reviewer browsing in English who rejects a shop's gift with a typed reason
    shop_main = main_member(OrganizationFactory(name="Global Goods", kind="shop"))
    gift = GiftFactory(shop=shop_main.organization, name="Travel cream", state=Gift.State.SUBMITTED)
    reviewer = UserFactory(is_staff=True)
    with translation.override("en"):
        gift_reject(gift=gift, actor=reviewer, reason="Label photo is blurred")
    # then the stored text (email, admin) is in the portal's default language, not the sender's
    note = Notification.objects.get(organization=shop_main.organization, kind="gift_review")
    assert note.title == "赠品「Travel cream」已驳回"
    # when the shop's Chinese reader opens the inbox
    text = page_text(reader(shop_main.user, "zh-hans"), "notifications")
    # then it reads in Chinese, with the reviewer's own words as the body
    assert "赠品「Travel cream」已驳回" in text
    assert "Label photo is blurred" in text
    assert 'Gift "Travel cream" rejected' not in text
    # and in English for a member who reads English
    assert 'Gift "Travel cream" rejected' in page_text(reader(shop_main.user, "en"), "notifications")
    # while another shop's member sees nothing of it
    outsider = main_member(OrganizationFactory(kind="shop"))
    assert "Travel cream" not in page_text(reader(outsider.user, "en"), "notifications")


def test_a_row_written_before_message_ids_shows_its_stored_title(reader):
    member = main_member(OrganizationFactory(kind="shop"))
    Notification.objects.create(user=member.user, kind="legacy", title="旧通知标题", body="旧通知内容")
    text = page_text(reader(member.user, "en"), "notifications")
    assert "旧通知标题" in text and "旧通知内容" in text


def test_a_dedupe_key_still_sends_once_and_keeps_the_first_rows_message(reader):
    member = main_member(OrganizationFactory(kind="shop"))
    sent = [
        notification_send(
            kind="billing.invoice_issued",
            title="发票已开具 %(number)s",
            params={"number": number},
            user=member.user,
            dedupe_key="invoice:1",
        )
        for number in ("INV1", "INV2")
    ]
    assert sent[1] is None
    note = Notification.objects.get(dedupe_key="invoice:1")
    assert note.params == {"number": "INV1"}
    assert "Invoice INV1 issued" in page_text(reader(member.user, "en"), "notifications")


def test_parameters_that_do_not_fit_show_the_source_text_rather_than_an_error():
    note = Notification(title="x", title_msgid="发票已开具 %(number)s", params={"other": "1"})
    with translation.override("en"):
        assert note.display_title == "发票已开具 %(number)s"
