"""Back office: gift reviewers act through admin actions that call services (audited);
other staff groups see nothing of gifts."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from gifts import services
from gifts.models import (
    DocumentRequest,
    Gift,
    GiftCategory,
    GiftEvent,
    ProductGift,
    Qualification,
    SpotCheck,
    Violation,
)
from gifts.tests.factories import (
    GiftFactory,
    ProductFactory,
    UserFactory,
    annulled_not_shipped_violation,
    approved_gift,
    food_category,
    main_member,
    upload,
    valid_licence,
)
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(client):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="gift-reviewers"))
    client.force_login(user)
    return user


def act(client, model, action, ids, **data):
    url = reverse(f"admin:gifts_{model}_changelist")
    return client.post(url, {"action": action, "_selected_action": [str(i) for i in ids], **data})


def test_gift_review_queue_lists_submitted_gifts_longest_waiting_first(client, reviewer):
    now = dt.datetime.now(dt.UTC)
    newer = GiftFactory(name="新提交", state="submitted", submitted_at=now - dt.timedelta(hours=1))
    older = GiftFactory(name="早提交", state="submitted", submitted_at=now - dt.timedelta(days=2))
    GiftFactory(name="草稿不在队列", state="draft")
    html = client.get(reverse("admin:gifts_gift_changelist")).content.decode()
    assert html.index(older.name) < html.index(newer.name) and "草稿不在队列" not in html
    everything = client.get(reverse("admin:gifts_gift_changelist") + "?queue=all").content.decode()
    assert "草稿不在队列" in everything


def test_gift_2_1_reviewer_approves_in_admin_audited(client, reviewer):
    gift = GiftFactory(state="submitted")
    resp = act(client, "gift", "approve", [gift.pk])
    assert resp.status_code == 302
    gift.refresh_from_db()
    assert gift.state == "approved"
    assert AuditEntry.objects.filter(action="gifts.gift_approve", actor=reviewer).exists()


def test_gift_2_3_approval_refused_in_admin_shows_the_rule(client, reviewer):
    gift = GiftFactory(state="submitted", category=food_category())
    resp = act(client, "gift", "approve", [gift.pk])
    gift.refresh_from_db()
    assert gift.state == "submitted"
    msgs = [str(m) for m in resp.wsgi_request._messages]
    assert any("GIFT-2.3" in m for m in msgs)


def test_reject_needs_a_reason_form_then_rejects(client, reviewer):
    gift = GiftFactory(state="submitted")
    form = act(client, "gift", "reject", [gift.pk])
    assert form.status_code == 200 and 'name="reason"' in form.content.decode()
    act(client, "gift", "reject", [gift.pk], apply="1", reason="资料不全")
    gift.refresh_from_db()
    assert (gift.state, gift.state_reason) == ("rejected", "资料不全")


def test_request_revisions_and_demand_documents_and_fair_value(client, reviewer):
    gift = GiftFactory(state="submitted", ship_from="domestic", value_basis="merchant_declared")
    act(client, "gift", "request_revisions", [gift.pk], apply="1", reason="请补充规格")
    gift.refresh_from_db()
    assert gift.state == "revisions_requested"
    act(client, "gift", "demand_documents", [gift.pk], apply="1", reason="来源证明", days="7")
    assert DocumentRequest.objects.get(gift=gift).state == "open"
    act(
        client,
        "gift",
        "set_fair_value",
        [gift.pk],
        apply="1",
        amount="12.50",
        reason="市场价",
        overrides_declared="on",
    )
    gift.refresh_from_db()
    assert gift.fair_value_fen == 1250 and gift.fair_value_set_by == reviewer


def test_gift_4_3_domestic_shipping_approved_in_admin(client, reviewer):
    gift = approved_gift(ship_from="domestic", value_basis="merchant_declared")
    act(client, "gift", "approve_domestic_shipping", [gift.pk])
    gift.refresh_from_db()
    assert gift.domestic_shipping_approved


def test_gift_change_page_shows_findings_and_document_links(client, reviewer):
    gift = GiftFactory(state="submitted", category=food_category())
    owner = main_member(gift.shop)
    q = services.qualification_upload(
        membership=owner, actor=owner.user, licence_type="食品经营许可证", upload=upload()
    )
    html = client.get(reverse("admin:gifts_gift_change", args=[gift.pk])).content.decode()
    assert "GIFT-2.3" in html and reverse("gifts:document-file", args=["qualification", q.pk]) in html


def test_gift_2_3_qualification_queue_approve_with_licence_number_and_expiry(client, reviewer):
    owner = main_member()
    q = services.qualification_upload(
        membership=owner, actor=owner.user, licence_type="食品经营许可证", upload=upload()
    )
    html = client.get(reverse("admin:gifts_qualification_changelist")).content.decode()
    assert reverse("gifts:document-file", args=["qualification", q.pk]) in html
    act(
        client,
        "qualification",
        "approve",
        [q.pk],
        apply="1",
        licence_number="JY100",
        valid_until="2099-01-01",
    )
    q.refresh_from_db()
    assert (q.state, q.licence_number, q.valid_until) == ("approved", "JY100", dt.date(2099, 1, 1))
    assert AuditEntry.objects.filter(action="gifts.qualification_approve", actor=reviewer).exists()


def test_qualification_reject_in_admin(client, reviewer):
    owner = main_member()
    q = services.qualification_upload(
        membership=owner, actor=owner.user, licence_type="食品经营许可证", upload=upload()
    )
    act(client, "qualification", "reject", [q.pk], apply="1", reason="过期")
    q.refresh_from_db()
    assert q.state == "rejected"


def test_gift_2_3_reviewer_revokes_a_licence_in_admin_and_its_gifts_leave_their_listings(client, reviewer):
    # Given a shop's food gift on a listed product, covered by its only licence
    owner = main_member()
    licence = valid_licence(owner.organization)
    gift = approved_gift(shop=owner.organization, category=food_category())
    product = ProductFactory(shop=owner.organization, state="listed")
    ProductGift.objects.create(product=product, gift=gift, attached_by=owner.user)

    # When a reviewer revokes it in admin: a form asks for the reason first
    form = act(client, "qualification", "revoke", [licence.pk])
    assert form.status_code == 200 and 'name="reason"' in form.content.decode()
    act(client, "qualification", "revoke", [licence.pk], apply="1", reason="发证机关已吊销")

    # Then the licence is revoked and audited, the gift suspended and off the listing
    licence.refresh_from_db()
    gift.refresh_from_db()
    assert (licence.state, licence.revoked_by, licence.revoke_reason) == (
        "revoked",
        reviewer,
        "发证机关已吊销",
    )
    assert AuditEntry.objects.filter(action="gifts.qualification_revoke", actor=reviewer).exists()
    assert gift.state == "suspended" and not ProductGift.objects.filter(gift=gift).exists()
    assert AuditEntry.objects.filter(
        action="gifts.product_gift_detach", actor=reviewer, object_id=str(product.pk)
    ).exists()


def test_gift_2_2_category_made_prohibited_in_admin_takes_its_gifts_off_listings(client, reviewer):
    owner = main_member()
    category = GiftCategory.objects.create(name="电子烟配件")
    gift = approved_gift(shop=owner.organization, category=category)
    product = ProductFactory(shop=owner.organization, state="listed")
    ProductGift.objects.create(product=product, gift=gift, attached_by=owner.user)
    resp = client.post(
        reverse("admin:gifts_giftcategory_change", args=[category.pk]),
        {"name": "电子烟配件", "is_prohibited": "on", "licence_type": ""},
    )
    assert resp.status_code == 302
    assert not ProductGift.objects.filter(gift=gift).exists()
    assert AuditEntry.objects.filter(action="gifts.category_change", actor=reviewer).exists()
    assert AuditEntry.objects.filter(action="gifts.product_gift_detach", actor=reviewer).exists()


def test_gift_5_dispute_decided_in_admin_audited(client, reviewer):
    gift = approved_gift()
    now = dt.datetime.now(dt.UTC)
    dispute, _ = services.dispute_open(
        shop=gift.shop,
        actor=None,
        order_no="ADM1",
        paid_amount_fen=10_000,
        paid_at=None,
        product_id=ProductFactory(shop=gift.shop).pk,
        gift_id=gift.pk,
        signed_for_at=None,
        kind="not_delivered",
        now=now - dt.timedelta(hours=72),
    )
    assert (
        "GIFT-5.3"
        in client.get(reverse("admin:gifts_giftdispute_change", args=[dispute.pk])).content.decode()
    )
    act(client, "giftdispute", "decide", [dispute.pk], apply="1", decision="upheld", note="未举证")
    dispute.refresh_from_db()
    assert (dispute.state, dispute.compensation_fen) == ("decided", 8_800)
    assert AuditEntry.objects.filter(action="gifts.dispute_decide", actor=reviewer).exists()


def test_gift_3_spot_check_recorded_in_admin_records_violation(client, reviewer):
    gift = approved_gift()
    resp = client.post(
        reverse("admin:gifts_spotcheck_add"),
        {
            "gift": gift.pk,
            "outcome": "substandard",
            "notes": "抽检不合格",
            "checked_at_0": "2024-05-01",
            "checked_at_1": "10:00:00",
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    check = SpotCheck.objects.get()
    assert check.checked_by == reviewer and check.violation.violation_type == "商品质量不合格"


def test_gift_2_5_product_take_down_in_admin(client, reviewer):
    gift = approved_gift(brand="兰蔻")
    product = ProductFactory(shop=gift.shop, title="送兰蔻")
    from gifts.models import ProductGift

    ProductGift.objects.create(product=product, gift=gift, attached_by=reviewer)
    act(client, "product", "take_down", [product.pk], apply="1", reason="标题含赠品品牌")
    product.refresh_from_db()
    assert product.state == "taken_down" and Violation.objects.get().rule_id == "GIFT-2.5"


def test_gift_4_2_staff_see_annulled_violations_as_such(client, reviewer):
    annulled = annulled_not_shipped_violation(main_member().organization)
    standing = services.violation_record(
        shop_id=annulled.shop_id,
        rule_id="GIFT-3.1",
        occurred_at=dt.datetime(2024, 5, 2, tzinfo=dt.UTC),
        source_key="standing",
        gift=annulled.gift,
    ).violation
    url = reverse("admin:gifts_violation_changelist")
    html = client.get(url).content.decode()
    assert f'data-annulled="{annulled.annulment.pk}"' in html and "已撤销" in html
    only_annulled = client.get(url + "?annulled=yes").content.decode()
    only_standing = client.get(url + "?annulled=no").content.decode()
    change = reverse("admin:gifts_violation_change", args=[standing.pk])
    assert change not in only_annulled and change in only_standing
    detail = client.get(reverse("admin:gifts_violation_change", args=[annulled.pk])).content.decode()
    assert annulled.annulment.reason in detail
    annulments = client.get(reverse("admin:gifts_violationannulment_changelist")).content.decode()
    assert annulled.annulment.get_cause_display() in annulments


def test_categories_are_staff_managed_and_audited(client, reviewer):
    resp = client.post(
        reverse("admin:gifts_giftcategory_add"),
        {"name": "保健食品", "licence_required": "on", "licence_type": "食品经营许可证"},
    )
    assert resp.status_code == 302
    cat = GiftCategory.objects.get(name="保健食品")
    assert AuditEntry.objects.filter(action="gifts.category_create", object_id=str(cat.pk)).exists()


def test_p_4_deleting_categories_with_the_bulk_action_is_audited(client, reviewer):
    cats = [GiftCategory.objects.create(name=name) for name in ("旧类目一", "旧类目二")]
    resp = act(client, "giftcategory", "delete_selected", [c.pk for c in cats], post="yes")
    assert resp.status_code == 302 and not GiftCategory.objects.filter(pk__in=[c.pk for c in cats]).exists()
    deleted = AuditEntry.objects.filter(action="gifts.category_delete", actor=reviewer)
    assert sorted(deleted.values_list("details__name", flat=True)) == ["旧类目一", "旧类目二"]


def test_other_staff_groups_cannot_reach_gift_admin(client):
    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name="billing-ops"))
    client.force_login(staff)
    assert client.get(reverse("admin:gifts_gift_changelist")).status_code == 403
    gift = GiftFactory(state="submitted")
    client.post(reverse("admin:gifts_gift_changelist"), {"action": "approve", "_selected_action": [gift.pk]})
    assert Gift.objects.get(pk=gift.pk).state == "submitted"


def test_shop_data_is_read_only_in_admin(client, reviewer):
    gift = GiftFactory(state="submitted", name="原名")
    client.post(reverse("admin:gifts_gift_change", args=[gift.pk]), {"name": "改名"})
    gift.refresh_from_db()
    assert gift.name == "原名"
    assert client.get(reverse("admin:gifts_violation_add")).status_code == 403
    assert Qualification.objects.count() == 0


def test_gift_1_2_review_queue_and_gift_page_name_the_value_basis_not_its_code(client, reviewer):
    # Given a domestic gift whose declared value staff replaced with a fair value
    gift = GiftFactory(
        state="submitted",
        submitted_at=dt.datetime.now(dt.UTC),
        ship_from=Gift.ShipFrom.DOMESTIC,
        value_basis=Gift.ValueBasis.MERCHANT_DECLARED,
        fair_value_fen=5_000,
        fair_value_overrides_declared=True,
        fair_value_reason="市价",
        fair_value_set_by=reviewer,
        fair_value_set_at=dt.datetime.now(dt.UTC),
    )
    # When a reviewer opens the queue and the gift
    queue = client.get(reverse("admin:gifts_gift_changelist")).content.decode()
    page = client.get(reverse("admin:gifts_gift_change", args=[gift.pk])).content.decode()
    # Then both name the basis of the value they show, not its code
    assert "¥50.00 · 市场公允价值" in queue and "fair_value<" not in queue
    assert "¥50.00（市场公允价值）" in page and "（fair_value）" not in page  # noqa: RUF001


def test_gift_page_events_show_local_time_labels_and_readable_details(client, reviewer):
    # Given a gift submitted at 03:02 UTC (11:02 in Shanghai) and then rejected with a reason
    owner = main_member()
    gift = GiftFactory(shop=owner.organization, state="draft")
    at = dt.datetime(2026, 11, 23, 3, 2, tzinfo=dt.UTC)
    services.gift_submit(membership=owner, actor=owner.user, gift=gift, now=at)
    services.gift_reject(gift=gift, actor=reviewer, reason="资料不全", now=at + dt.timedelta(hours=1))
    GiftEvent.objects.create(
        shop=owner.organization, gift=gift, kind="edited", details={"reason": "", "note": "首次提交"}, at=at
    )
    html = client.get(reverse("admin:gifts_gift_change", args=[gift.pk])).content.decode()
    events = html[html.index("gifts-giftevent") :]
    # Then times are local everywhere, in the row headings too (no UTC 03:02)
    assert "2026-11-23 11:02" in events and "03:02" not in events
    # And events and states read as labels, not codes
    assert "提交审核" in events and "草稿 → 待审核" in events
    assert ">submitted<" not in events and "draft→submitted" not in events
    # And details read as key: value lines with empty values left out, never raw JSON
    assert "备注: 首次提交" in events and "原因: 资料不全" in events
    assert "&quot;reason&quot;" not in events and "&quot;note&quot;" not in events and "原因: <" not in events


def test_gift_5_4_dispute_admin_lists_units_returned_intact(client, reviewer):
    gift = approved_gift(declared_value_fen=8_800)
    product = ProductFactory(shop=gift.shop)
    now = dt.datetime.now(dt.UTC)
    services.order_upsert(
        shop=gift.shop,
        order_no="ADM-R3",
        product=product,
        paid_amount_fen=50_000,
        paid_at=now,
        gift_lines=[(gift, 3)],
    )
    dispute, _ = services.dispute_open(
        shop=gift.shop,
        actor=None,
        order_no="ADM-R3",
        paid_amount_fen=50_000,
        paid_at=now,
        product_id=product.pk,
        gift_id=gift.pk,
        signed_for_at=None,
        kind="return_gift_lost",
        units_returned_intact=1,
    )
    listing = client.get(reverse("admin:gifts_giftdispute_changelist")).content.decode()
    assert '<td class="field-returned_intact">1 / 3</td>' in listing
    change = client.get(reverse("admin:gifts_giftdispute_change", args=[dispute.pk])).content.decode()
    assert "完好退回赠品数量" in change and "¥176.00" in change


# --- lists over large tables (portal.admin_scale) ---------------------------------------------------


def _disputes_on_orders(count: int):
    gift = approved_gift(declared_value_fen=8_800)
    product = ProductFactory(shop=gift.shop)
    now = dt.datetime.now(dt.UTC)
    for i in range(count):
        services.order_upsert(
            shop=gift.shop,
            order_no=f"ADM-N{i}",
            product=product,
            paid_amount_fen=50_000,
            paid_at=now,
            gift_lines=[(gift, 2)],
        )
        services.dispute_open(
            shop=gift.shop,
            actor=None,
            order_no=f"ADM-N{i}",
            paid_amount_fen=50_000,
            paid_at=now,
            product_id=product.pk,
            gift_id=gift.pk,
            signed_for_at=None,
            kind="not_delivered",
        )


def test_gift_5_dispute_list_previews_compensation_in_one_query_per_page(
    client, reviewer, django_assert_max_num_queries
):
    # Given eight disputes, each on an order whose gift line is two units of an ¥88 gift
    _disputes_on_orders(8)
    url = reverse("admin:gifts_giftdispute_changelist")
    # When the list renders, then each row's preview reads its gift line from the list's query
    # (it used to look each line up: one query per row)
    with django_assert_max_num_queries(12):
        html = client.get(url).content.decode()
    assert html.count("¥176.00") == 8  # GIFT-5.3: two units of the gift's value, per order


def test_order_found_by_its_exact_number_and_its_shipment_too(client, reviewer):
    gift = approved_gift()
    order = services.order_upsert(
        shop=gift.shop,
        order_no="DY20261123000042",
        product=ProductFactory(shop=gift.shop),
        paid_amount_fen=10_000,
        paid_at=dt.datetime.now(dt.UTC),
        gift_lines=[(gift, 1)],
    )
    services.order_upsert(
        shop=gift.shop,
        order_no="DY20261123000043",
        product=ProductFactory(shop=gift.shop),
        paid_amount_fen=10_000,
        paid_at=dt.datetime.now(dt.UTC),
        gift_lines=[(gift, 1)],
    )
    orders = client.get(reverse("admin:gifts_order_changelist"), {"q": "DY20261123000042"})
    assert [o.pk for o in orders.context["cl"].result_list] == [order.pk]
    shipments = client.get(reverse("admin:gifts_giftshipment_changelist"), {"q": " DY20261123000042 "})
    assert [s.order_id for s in shipments.context["cl"].result_list] == [order.pk]
    # A fragment is not a key: the search compares order numbers exactly (indexed)
    assert (
        not client.get(reverse("admin:gifts_order_changelist"), {"q": "2026112300004"})
        .context["cl"]
        .result_list
    )


def test_violation_list_filter_offers_recent_rule_ids_without_scanning_the_table(client, reviewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    annulled_not_shipped_violation(approved_gift().shop)
    with CaptureQueriesContext(connection) as ctx:
        html = client.get(reverse("admin:gifts_violation_changelist")).content.decode()
    assert "?rule_id=GIFT-4.2" in html
    assert not [q for q in ctx.captured_queries if "DISTINCT" in q["sql"] and "LIMIT" not in q["sql"]]
