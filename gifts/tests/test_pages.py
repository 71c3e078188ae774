# ruff: noqa: RUF001
"""Shop pages: owner, sub-account and another shop (404)."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from gifts import services
from gifts.models import (
    DisputeEvidence,
    DocumentRequest,
    Gift,
    GiftDispute,
    Product,
    ProductGift,
    Qualification,
)
from gifts.tests.factories import (
    ELF_BYTES,
    CategoryFactory,
    GiftFactory,
    ProductFactory,
    QualificationFactory,
    UserFactory,
    annulled_not_shipped_violation,
    approved_gift,
    main_member,
    open_dispute,
    sub_member,
    upload,
)
from portal.tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return main_member()


def login(client, membership):
    client.force_login(membership.user)
    return client


def test_gift_2_1_shop_registers_and_submits_a_gift_on_the_page(client, owner):
    login(client, owner)
    category = CategoryFactory()
    resp = client.post(
        reverse("gifts:gift-create"),
        {
            "name": "面霜小样",
            "brand": "Lancome",
            "category": category.pk,
            "kind": "护肤品",
            "spec": "15ml",
            "quantity_per_order": 1,
            "ship_from": "overseas",
            "declared_value": "88.00",
            "submit": "1",
        },
    )
    gift = Gift.objects.get()
    assert resp.status_code == 302 and gift.state == "submitted" and gift.declared_value_fen == 8800
    page = client.get(reverse("gifts:gift-detail", args=[gift.pk])).content.decode()
    assert "面霜小样" in page and 'data-state="submitted"' in page


def test_the_gift_forms_help_texts_are_read_out_with_their_fields(client, owner):
    """A field with help text points at it (aria-describedby), so the element must exist."""
    login(client, owner)
    gift = GiftFactory(shop=owner.organization)
    for url in (reverse("gifts:gift-create"), reverse("gifts:gift-edit", args=[gift.pk])):
        html = client.get(url).content.decode()
        described = re.findall(r'aria-describedby="([^"]+)"', html)
        assert "id_brand_helptext" in described
        assert [ref for ref in described if f'id="{ref}"' not in html] == []


def test_a_gift_with_no_events_says_so_under_its_state_log(client, owner):
    # Given a draft gift with nothing recorded yet
    gift = GiftFactory(shop=owner.organization)
    login(client, owner)
    # When the shop opens it
    page = client.get(reverse("gifts:gift-detail", args=[gift.pk])).content.decode()
    # Then the state-log section says it is empty, as the products section beside it does
    section = page[page.index("状态记录</h2>") :]
    assert "暂无状态记录" in section[: section.index("</section>")]


def test_gift_detail_event_log_shows_labels_not_state_codes(client, owner, settings):
    # given a submitted gift that a reviewer rejects
    gift = GiftFactory(shop=owner.organization, state=Gift.State.SUBMITTED)
    services.gift_reject(gift=gift, actor=UserFactory(is_staff=True), reason="标签照片不清晰")
    login(client, owner)
    # when the shop opens the gift, then the log names the event and states by their labels
    page = client.get(reverse("gifts:gift-detail", args=[gift.pk])).content.decode()
    assert '<tr data-event="rejected">' in page
    assert "<td>审核驳回</td><td>待审核 → 已驳回</td>" in page
    assert "submitted → rejected" not in page and "<td>rejected</td>" not in page
    # and in English for a reader who picked English
    settings.LOCALE_PATHS = list(settings.LOCALE_PATHS)  # reload the compiled catalogues
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("gifts:gift-detail", args=[gift.pk])).content.decode()
    assert "<td>Rejected</td><td>Awaiting review → Rejected</td>" in page


def test_gift_pages_show_the_rule_when_refused(client, owner):
    login(client, owner)
    resp = client.post(
        reverse("gifts:gift-create"),
        {
            "name": "抽奖大礼",
            "brand": "X",
            "category": CategoryFactory().pk,
            "ship_from": "bonded",
            "declared_value": "50000.01",
            "is_lottery": "on",
            "submit": "1",
        },
    )
    assert resp.status_code == 200 and "GIFT-2.7" in resp.content.decode()


def test_gift_list_shows_only_the_shops_gifts_and_sub_account_reads(client, owner):
    GiftFactory(shop=owner.organization, name="本店赠品")
    GiftFactory(name="别家赠品")
    sub = sub_member(owner.organization)
    html = login(client, sub).get(reverse("gifts:gift-list")).content.decode()
    assert "本店赠品" in html and "别家赠品" not in html and reverse("gifts:gift-create") not in html


def test_sub_account_cannot_register_on_the_page(client, owner):
    login(client, sub_member(owner.organization))
    resp = client.post(
        reverse("gifts:gift-create"), {"name": "x", "brand": "y", "category": CategoryFactory().pk}
    )
    assert resp.status_code == 403 and not Gift.objects.exists()


def test_other_shops_gift_product_and_dispute_pages_are_404(client, owner):
    gift = approved_gift()
    product = ProductFactory(shop=gift.shop)
    dispute = open_dispute(gift)
    login(client, owner)
    assert client.get(reverse("gifts:gift-detail", args=[gift.pk])).status_code == 404
    assert client.get(reverse("gifts:gift-edit", args=[gift.pk])).status_code == 404
    assert client.post(reverse("gifts:gift-submit", args=[gift.pk])).status_code == 404
    assert client.get(reverse("gifts:product-detail", args=[product.pk])).status_code == 404
    assert client.get(reverse("gifts:dispute-detail", args=[dispute.pk])).status_code == 404


def test_non_shop_members_get_404(client):
    agency = MembershipFactory(organization=OrganizationFactory(kind="agency"))
    login(client, agency)
    assert client.get(reverse("gifts:gift-list")).status_code == 404


def test_anonymous_is_sent_to_login(client):
    resp = client.get(reverse("gifts:gift-list"))
    assert resp.status_code == 302 and reverse("login") in resp.url


def test_gift_2_3_licence_upload_page_and_document_served_to_owner_and_staff_only(client, owner):
    login(client, owner)
    resp = client.post(
        reverse("gifts:qualifications"), {"licence_type": "食品经营许可证", "file": upload("licence.pdf")}
    )
    assert resp.status_code == 302
    q = Qualification.objects.get()
    url = reverse("gifts:document-file", args=["qualification", q.pk])
    got = client.get(url)
    assert got.status_code == 200 and got["Content-Type"] == "application/pdf"
    assert b"".join(got.streaming_content).startswith(b"%PDF-")
    assert got["X-Content-Type-Options"] == "nosniff"
    # Another shop: 404. Staff without the gifts permission: 404. Gift reviewer: 200.
    client.force_login(main_member().user)
    assert client.get(url).status_code == 404
    client.force_login(UserFactory(is_staff=True))
    assert client.get(url).status_code == 404
    from django.contrib.auth.models import Group

    reviewer = UserFactory(is_staff=True)
    reviewer.groups.add(Group.objects.get(name="gift-reviewers"))
    client.force_login(reviewer)
    assert client.get(url).status_code == 200


def test_gift_2_3_renamed_executable_upload_is_refused_on_the_page(client, owner):
    login(client, owner)
    resp = client.post(
        reverse("gifts:qualifications"),
        {"licence_type": "食品经营许可证", "file": upload("licence.pdf", ELF_BYTES)},
    )
    assert resp.status_code == 200 and "UPLOAD-TYPE" in resp.content.decode()
    assert not Qualification.objects.exists()


def test_stored_documents_are_not_under_the_web_root():
    """The project's upload storage (not this suite's temporary one) is outside static files."""
    from pathlib import Path

    from portal import settings as project

    location = Path(project.STORAGES["default"]["OPTIONS"]["location"]).resolve()
    web_roots = [Path(project.STATIC_ROOT).resolve(), *(Path(d).resolve() for d in project.STATICFILES_DIRS)]
    assert all(root not in location.parents and root != location for root in web_roots)


def test_gift_2_5_product_attach_precheck_and_publish_on_the_page(client, owner):
    gift = approved_gift(shop=owner.organization, brand="Lancome/兰蔻")
    login(client, owner)
    client.post(reverse("gifts:products"), {"title": "精华液 送ＬＡＮＣＯＭＥ", "promised_ship_hours": 48})
    product = owner.organization.gift_products.get()
    url = reverse("gifts:product-detail", args=[product.pk])
    client.post(url, {"action": "attach", "gift": gift.pk})
    assert ProductGift.objects.filter(product=product, gift=gift).exists()
    html = client.post(url, {"action": "precheck"}).content.decode()
    assert 'data-rule="GIFT-2.5"' in html
    client.post(url, {"action": "save", "title": "精华液 50ml", "subtitle": "", "promised_ship_hours": 48})
    html = client.post(url, {"action": "precheck"}).content.decode()
    assert 'data-passed="true"' in html
    client.post(url, {"action": "publish"})
    product.refresh_from_db()
    assert product.state == "listed"


def test_gift_2_5_editing_a_listed_product_into_breach_is_refused_on_the_page(client, owner):
    # Given a listed product with a Lancome gift
    gift = approved_gift(shop=owner.organization, brand="Lancome/兰蔻")
    product = ProductFactory(shop=owner.organization, title="精华液 30ml")
    services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
    services.product_publish(membership=owner, actor=owner.user, product=product)
    login(client, owner)

    # When the shop saves a title naming the gift's brand
    resp = client.post(
        reverse("gifts:product-detail", args=[product.pk]),
        {"action": "save", "title": "精华液 送兰蔻面霜", "subtitle": "", "promised_ship_hours": 48},
    )

    # Then the page shows the refusal with the rule and its findings, and nothing changed
    html = resp.content.decode()
    assert resp.status_code == 200 and "GIFT-2.5" in html and 'data-rule="GIFT-2.5"' in html
    product.refresh_from_db()
    assert (product.title, product.state) == ("精华液 30ml", "listed")


@pytest.mark.parametrize("value", ["abc", "", "-1", "1.5"])
@pytest.mark.parametrize("action", ["attach", "detach"])
def test_product_page_malformed_gift_is_a_400_naming_the_field(client, owner, action, value):
    product = ProductFactory(shop=owner.organization)
    login(client, owner)
    client.raise_request_exception = False
    resp = client.post(reverse("gifts:product-detail", args=[product.pk]), {"action": action, "gift": value})
    assert resp.status_code == 400
    assert "请从列表中选择赠品" in resp.content.decode() and not ProductGift.objects.exists()


def test_gift_2_1_attaching_an_unapproved_gift_shows_the_rule(client, owner):
    gift = GiftFactory(shop=owner.organization, state="submitted")
    product = ProductFactory(shop=owner.organization)
    login(client, owner)
    resp = client.post(
        reverse("gifts:product-detail", args=[product.pk]), {"action": "attach", "gift": gift.pk}, follow=True
    )
    assert "GIFT-2.1" in resp.content.decode() and not ProductGift.objects.exists()


def test_precheck_page_for_a_sub_account(client, owner):
    gift = approved_gift(shop=owner.organization, brand="兰蔻")
    login(client, sub_member(owner.organization))
    html = client.post(
        reverse("gifts:precheck"), {"title": "送兰 蔻", "gifts": [gift.pk], "gift_more_prominent": "on"}
    ).content.decode()
    assert html.count('data-rule="GIFT-2.5"') == 2


def test_violations_page_lists_the_shops_violations(client, owner):
    gift = approved_gift(shop=owner.organization)
    services.violation_record(
        shop_id=gift.shop_id,
        rule_id="GIFT-4.2",
        occurred_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        source_key="p1",
        gift=gift,
    )
    other = approved_gift()
    services.violation_record(
        shop_id=other.shop_id,
        rule_id="GIFT-3.1",
        occurred_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        source_key="p2",
        gift=other,
    )
    html = login(client, owner).get(reverse("gifts:violations")).content.decode()
    assert "违背承诺" in html and "GIFT-3.1" not in html


def test_gift_4_2_violations_page_shows_an_annulled_violation_as_annulled(client, owner):
    # Given one annulled violation and one that stands
    annulled = annulled_not_shipped_violation(owner.organization)
    gift = approved_gift(shop=owner.organization)
    standing = services.violation_record(
        shop_id=gift.shop_id,
        rule_id="GIFT-3.1",
        occurred_at=dt.datetime(2024, 5, 2, tzinfo=dt.UTC),
        source_key="standing",
        gift=gift,
    ).violation

    # When the merchant (a sub-account reads it too) opens the violations page
    html = login(client, sub_member(owner.organization)).get(reverse("gifts:violations")).content.decode()

    # Then the annulled one is marked annulled, with why, and its weight is not counted
    row = re.search(rf'<tr[^>]*data-violation="{annulled.pk}"[^>]*>(.*?)</tr>', html, re.S)
    assert 'data-annulled="1"' in row.group(0) and "已撤销" in row.group(1) and "不计" in row.group(1)
    assert annulled.annulment.reason in row.group(1)
    other = re.search(rf'<tr[^>]*data-violation="{standing.pk}"[^>]*>(.*?)</tr>', html, re.S)
    assert "data-annulled" not in other.group(0) and "已撤销" not in other.group(1)
    # and the gift's history names the annulment
    page = login(client, owner).get(reverse("gifts:gift-detail", args=[annulled.gift_id])).content.decode()
    assert 'data-event="violation_annulled"' in page and "撤销违规" in page


def test_gift_5_dispute_page_shows_countdown_and_takes_evidence(client, owner):
    dispute = open_dispute(approved_gift(shop=owner.organization))
    login(client, sub_member(owner.organization))
    url = reverse("gifts:dispute-detail", args=[dispute.pk])
    html = client.get(url).content.decode()
    assert f'data-deadline="{dispute.response_deadline_at.isoformat()}"' in html and "GIFT-5.3" in html
    resp = client.post(
        url,
        {
            "response": "已发货",
            "files": [upload("proof.pdf"), upload("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)],
        },
    )
    assert resp.status_code == 302
    assert DisputeEvidence.objects.filter(dispute=dispute).count() == 2
    assert GiftDispute.objects.get().state == "merchant_responded"


def test_gift_5_an_empty_dispute_response_says_why_without_a_machine_code(client, owner):
    # Given a dispute awaiting the shop's evidence
    dispute = open_dispute(approved_gift(shop=owner.organization))
    login(client, owner)
    url = reverse("gifts:dispute-detail", args=[dispute.pk])
    # When the shop submits neither a statement nor a file
    html = client.post(url, {"response": ""}).content.decode()
    # Then the page says what is missing, with no "invalid:" code in front of it
    assert '<span class="error">请填写说明或上传证据' in html
    assert "invalid:" not in html
    # while a refusal that cites a rule still names it
    bad = client.post(
        url, {"response": "x", "files": [upload("a.exe", b"MZ" + b"\x00" * 64)]}
    ).content.decode()
    assert "UPLOAD-TYPE: " in bad
    assert GiftDispute.objects.get().state == "awaiting_merchant"


def test_gift_2_4_gift_and_dispute_pages_show_the_value_as_unit_times_quantity(client, owner):
    gift = approved_gift(shop=owner.organization, declared_value_fen=8_800, quantity_per_order=3)
    dispute = open_dispute(gift)
    login(client, owner)
    page = client.get(reverse("gifts:gift-detail", args=[gift.pk])).content.decode()
    assert re.search(r"<span data-value-per-order>[^<]*3 \u00d7 ¥88\.00 = ¥264\.00</span>", page)
    html = client.get(reverse("gifts:dispute-detail", args=[dispute.pk])).content.decode()
    assert re.search(r'data-figures="value">[^<]*¥264\.00 = [^<]*¥88\.00 \u00d7 3', html)


def test_gift_5_evidence_document_is_404_for_another_shop(client, owner):
    dispute = open_dispute(approved_gift(shop=owner.organization))
    services.dispute_respond(
        membership=owner, actor=owner.user, dispute=dispute, response="x", files=[upload("proof.pdf")]
    )
    evidence = DisputeEvidence.objects.get()
    url = reverse("gifts:document-file", args=["evidence", evidence.pk])
    assert login(client, owner).get(url).status_code == 200
    client.force_login(main_member().user)
    assert client.get(url).status_code == 404


def test_dashboard_card_and_nav_for_shop_members(client, owner):
    html = login(client, owner).get(reverse("dashboard")).content.decode()
    assert reverse("gifts:gift-list") in html and "全球购赠品" in html


def test_product_list_page_shows_25_products_a_page_with_constant_queries(client, owner):
    # Given a shop with one product, each with a gift
    gift = approved_gift(shop=owner.organization)
    ProductGift.objects.create(
        product=ProductFactory(shop=owner.organization), gift=gift, attached_by=owner.user
    )
    login(client, owner)
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("gifts:products"))

    # When it has 60
    products = Product.objects.bulk_create(
        [Product(shop=owner.organization, title=f"P{i}") for i in range(59)]
    )
    ProductGift.objects.bulk_create(
        [ProductGift(product=p, gift=gift, attached_by=owner.user) for p in products]
    )
    with CaptureQueriesContext(connection) as sixty:
        html = client.get(reverse("gifts:products")).content.decode()

    # Then the page lists 25 with a link to the next page, in the same number of queries
    assert html.count("data-product=") == 25 and 'href="?page=2"' in html
    assert len(sixty) == len(one)
    last = client.get(reverse("gifts:products"), {"page": 3}).content.decode()
    assert last.count("data-product=") == 10


def test_qualifications_page_pages_documents_and_open_demands_separately(client, owner):
    # Given 60 uploaded documents and 30 open document demands
    for _ in range(60):
        QualificationFactory(shop=owner.organization)
    staff = UserFactory(is_staff=True)
    DocumentRequest.objects.bulk_create(
        [
            DocumentRequest(
                gift=approved_gift(shop=owner.organization),
                reason="抽检索取",
                deadline_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
                requested_by=staff,
            )
            for _ in range(30)
        ]
    )
    login(client, owner)

    # When the shop opens the page
    resp = client.get(reverse("gifts:qualifications"))

    # Then 25 of each are listed, each list with its own page parameter
    html = resp.content.decode()
    assert html.count("data-qualification=") == 25 and html.count("data-deadline=") == 25
    assert 'href="?page=2"' in html and 'href="?requests_page=2"' in html
    assert len(resp.context["form"].fields["document_request"].choices) == 26  # "—" and this page's
    html = client.get(reverse("gifts:qualifications"), {"page": 3, "requests_page": 2}).content.decode()
    assert html.count("data-qualification=") == 10 and html.count("data-deadline=") == 5


@pytest.mark.parametrize("quantity", ["2147483648", "99999999999999999999"])
def test_a_quantity_beyond_the_columns_range_is_a_form_error_not_a_500(client, owner, quantity):
    # Given a shop registering a gift, when it types a quantity per order the column cannot hold
    login(client, owner)
    resp = client.post(
        reverse("gifts:gift-create"),
        {
            "name": "面霜小样",
            "brand": "Lancome",
            "category": CategoryFactory().pk,
            "quantity_per_order": quantity,
            "ship_from": "overseas",
            "declared_value": "88.00",
            "save": "1",
        },
    )
    # Then the form says so next to the field, naming the field and the rule, and nothing is saved
    assert resp.status_code == 200 and resp.context["form"].errors == {
        "quantity_per_order": ["GIFT-2.4: 每单数量须为 1 至 2,147,483,647 之间的整数"]
    }
    assert re.search(r'name="quantity_per_order"[^>]*aria-invalid="true"', resp.content.decode())
    assert not Gift.objects.exists()


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("quantity_per_order", "0", "GIFT-2.4: 每单数量须为 1 至 2,147,483,647 之间的整数"),
        ("quantity_per_order", "1.5", "GIFT-2.4: 每单数量须为 1 至 2,147,483,647 之间的整数"),
        ("declared_value", "88.123", "GIFT-1.2: 申报价值最多两位小数（精确到分）"),
        ("declared_value", "-1", "GIFT-1.2: 申报价值不能为负"),
        ("declared_value", "abc", "GIFT-1.2: 申报价值须是数字（元），如 99.50"),
        ("declared_value", "99999999999", "GIFT-1.2: 申报价值最多 ¥9,999,999,999.99"),
    ],
)
def test_a_bad_number_in_the_gift_form_names_the_field_and_the_rule(client, owner, field, typed, message):
    # Given a shop registering a gift, when a number is typed that the rules refuse
    login(client, owner)
    data = {
        "name": "面霜小样",
        "brand": "Lancome",
        "category": CategoryFactory().pk,
        "quantity_per_order": "1",
        "ship_from": "overseas",
        "declared_value": "88.00",
        "save": "1",
    }
    resp = client.post(reverse("gifts:gift-create"), {**data, field: typed})
    # Then the field's message cites its rule, not Django's "确保该值小于或等于2147483647。"
    assert resp.status_code == 200 and resp.context["form"].errors == {field: [message]}
    assert message in resp.content.decode()
    assert not Gift.objects.exists()


@pytest.mark.parametrize("action", ["create", "save"])
def test_promised_ship_hours_beyond_the_columns_range_is_a_form_error_not_a_500(client, owner, action):
    # Given a shop creating a product, or saving one it has
    login(client, owner)
    product = ProductFactory(shop=owner.organization, title="精华液 30ml")
    detail = reverse("gifts:product-detail", args=[product.pk])
    url = reverse("gifts:products") if action == "create" else detail
    # When it types a promised ship time the column cannot hold
    resp = client.post(
        url, {"action": action, "title": "精华液 50ml", "subtitle": "", "promised_ship_hours": "99999999999"}
    )
    # Then the form says so, naming the field and the rule, and nothing changed
    assert resp.status_code == 200 and resp.context["form"].errors == {
        "promised_ship_hours": ["GIFT-4.2: 承诺发货时长须为 1 至 2,147,483,647 之间的整数（小时）"]
    }
    assert re.search(r'name="promised_ship_hours"[^>]*aria-invalid="true"', resp.content.decode())
    assert list(Product.objects.values_list("title", flat=True)) == ["精华液 30ml"]


@pytest.mark.parametrize(
    ("language", "label"), [("zh-hans", "海关申报价值"), ("en", "Customs-declared value")]
)
def test_gift_1_2_gift_and_dispute_pages_name_the_value_basis_not_its_code(
    client, owner, settings, language, label
):
    # Given a bonded gift (valued at its customs declaration) and a dispute about it
    gift = approved_gift(shop=owner.organization)
    dispute = open_dispute(gift)
    settings.LOCALE_PATHS = list(settings.LOCALE_PATHS)  # reload the compiled catalogues
    login(client, owner).cookies[settings.LANGUAGE_COOKIE_NAME] = language
    # When the shop opens the gift and the dispute
    for url in (
        reverse("gifts:gift-detail", args=[gift.pk]),
        reverse("gifts:dispute-detail", args=[dispute.pk]),
    ):
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get(url).content.decode()))
        # Then the value's basis is named in the reader's language, never by its code
        assert f"¥88.00 ({label}" in text and "customs_declared" not in text, url


def test_gift_2_3_qualifications_page_shows_a_revoked_licence_with_its_reason(client, owner):
    licence = QualificationFactory(
        shop=owner.organization, state="approved", licence_number="JY1", valid_until=dt.date(2099, 1, 1)
    )
    services.qualification_revoke(
        qualification=licence, actor=UserFactory(is_staff=True), reason="发证机关吊销"
    )
    html = login(client, sub_member(owner.organization)).get(reverse("gifts:qualifications")).content.decode()
    row = re.search(rf'<tr data-qualification="{licence.pk}">(.*?)</tr>', html, re.S).group(1)
    assert 'data-state="revoked"' in row and "已吊销" in row and "发证机关吊销" in row


@pytest.mark.parametrize(
    ("extra", "field", "rule"),
    [
        ({"is_lottery": "on", "declared_value": "50000.01"}, "declared_value", "GIFT-2.7: "),
        ({"near_expiry": "on", "expiry_date": ""}, "expiry_date", "GIFT-2.4: "),
        # ADR 0005: a winner receives the quantity per order, so three ¥20,000 units are over the cap
        (
            {"is_lottery": "on", "declared_value": "20000.00", "quantity_per_order": 3},
            "declared_value",
            "GIFT-2.7: ",
        ),
    ],
)
@pytest.mark.parametrize("action", ["create", "edit"])
def test_a_draft_with_a_value_submit_would_refuse_is_refused_on_save_naming_the_rule(
    client, owner, extra, field, rule, action
):
    # Given a shop saving a draft (not submitting) with a value that submitting or review refuses
    login(client, owner)
    body = {
        "name": "抽奖面霜",
        "brand": "Lancome",
        "category": CategoryFactory().pk,
        "kind": "护肤品",
        "spec": "15ml",
        "quantity_per_order": 1,
        "ship_from": "overseas",
        "declared_value": "88.00",
        "save": "1",
        **extra,
    }
    if action == "create":
        url = reverse("gifts:gift-create")
    else:
        gift = GiftFactory(shop=owner.organization, state="draft", declared_value_fen=8800)
        url = reverse("gifts:gift-edit", args=[gift.pk])
    resp = client.post(url, body)
    # Then the form refuses it next to the field, naming the rule, and nothing is saved
    assert resp.status_code == 200 and list(resp.context["form"].errors) == [field]
    assert resp.context["form"].errors[field][0].startswith(rule)
    assert not Gift.objects.filter(name="抽奖面霜").exists()
    # And the cap itself is still accepted (at most ¥50,000, inclusive)
    if field == "declared_value":
        body["declared_value"], body["quantity_per_order"] = "50000.00", 1
        assert client.post(url, body).status_code == 302


def test_gift_5_4_dispute_page_shows_units_returned_intact_and_what_is_deducted(client, owner):
    # Given a return of three units due on the order, two back intact (consumer's fault)
    gift = approved_gift(shop=owner.organization, declared_value_fen=8_800)
    product = ProductFactory(shop=owner.organization)
    now = dt.datetime.now(dt.UTC)
    services.order_upsert(
        shop=gift.shop,
        order_no="RP3",
        product=product,
        paid_amount_fen=50_000,
        paid_at=now,
        gift_lines=[(gift, 3)],
    )
    dispute, _ = services.dispute_open(
        shop=gift.shop,
        actor=None,
        order_no="RP3",
        paid_amount_fen=50_000,
        paid_at=now,
        product_id=product.pk,
        gift_id=gift.pk,
        signed_for_at=None,
        kind="return_gift_lost",
        units_returned_intact=2,
    )

    # When the shop opens the dispute
    html = login(client, owner).get(reverse("gifts:dispute-detail", args=[dispute.pk])).content.decode()

    # Then it reads two of three units back intact, and a deduction of one unit's value
    assert re.search(r"<td colspan=\"3\" data-units-returned-intact>2 / 3</td>", html)
    deduction = re.search(r'<li data-figures="deduction">(.*?)</li>', html, re.S).group(1)
    assert "¥88.00" in deduction and "未完好退回 1 件（GIFT-5.4）" in deduction
