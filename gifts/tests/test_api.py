# ruff: noqa: RUF001
"""Gifts API: owner, sub-account, other shop (404), order system with its Api-Key."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from gifts.models import Gift, GiftDispute, GiftEvent, GiftShipment, Order, Violation
from gifts.tests.factories import (
    CategoryFactory,
    GiftFactory,
    ProductFactory,
    UserFactory,
    approved_gift,
    main_member,
    prohibited_category,
    sub_member,
)
from portal.services import api_key_create

pytestmark = pytest.mark.django_db


def session(user):
    api = APIClient()
    api.force_login(user)
    return api


def keyed(membership):
    _, raw = api_key_create(membership=membership, name="orders", actor=membership.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return api


@pytest.fixture
def owner():
    return main_member()


def _gift_body(category, **kw):
    body = {
        "name": "旅行装面霜",
        "brand": "Lancome",
        "category_id": category.pk,
        "kind": "护肤品",
        "spec": "15ml",
        "quantity_per_order": 1,
        "ship_from": "bonded",
        "declared_value_fen": 8800,
    }
    body.update(kw)
    return body


def test_gift_2_1_register_and_submit_through_the_api(owner):
    api = session(owner.user)
    resp = api.post("/api/v1/gifts/gifts", _gift_body(CategoryFactory(), submit=True), format="json")
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["state"] == "submitted" and body["value"] == {
        "amount_fen": 8800,
        "basis": "customs_declared",
        "rule": "GIFT-1.2",
    }
    listed = api.get("/api/v1/gifts/gifts").json()
    assert listed["count"] == 1


def test_gift_2_2_prohibited_category_is_rejected_through_the_api(owner):
    resp = session(owner.user).post(
        "/api/v1/gifts/gifts", _gift_body(prohibited_category(), submit=True), format="json"
    )
    assert resp.json()["state"] == "rejected"


def test_gift_2_7_lottery_over_cap_refused_with_rule_code(owner):
    resp = session(owner.user).post(
        "/api/v1/gifts/gifts",
        _gift_body(CategoryFactory(), is_lottery=True, declared_value_fen=5_000_001, submit=True),
        format="json",
    )
    assert resp.status_code == 400 and resp.json()["code"] == "GIFT-2.7"


@pytest.mark.parametrize(
    ("extra", "rule", "field", "words"),
    [
        (
            {"is_lottery": True, "declared_value_fen": 5_000_001},
            "GIFT-2.7",
            "declared_value_fen",
            "抽奖赠品价值不得超过人民币50000元（含）：单件价值 ¥50,000.01 × 数量 1 = ¥50,000.01",
        ),
        (
            {"is_lottery": True, "declared_value_fen": 2_000_000, "quantity_per_order": 3},
            "GIFT-2.7",
            "declared_value_fen",
            "抽奖赠品价值不得超过人民币50000元（含）：单件价值 ¥20,000.00 × 数量 3 = ¥60,000.00",
        ),
        ({"near_expiry": True, "expiry_date": None}, "GIFT-2.4", "expiry_date", "临保赠品未明示到期日期"),
    ],
)
def test_api_draft_over_the_lottery_cap_or_near_expiry_undated_is_refused_like_the_form(
    owner, extra, rule, field, words
):
    # When the shop registers a draft (not submitting) that submitting or approval would refuse
    resp = session(owner.user).post(
        "/api/v1/gifts/gifts", _gift_body(CategoryFactory(), **extra), format="json"
    )

    # Then the API answers 400 naming the field and the rule, in the words the draft form shows
    # after "GIFT-x: ", and nothing is saved
    assert resp.status_code == 400
    assert resp.json() == {"code": rule, "message": words, "field": field}
    assert not Gift.objects.filter(shop=owner.organization).exists()


def test_gift_2_1_the_shop_edits_a_draft_and_submits_it_through_the_api(owner):
    # Given a draft registered through the API
    api = session(owner.user)
    gift_id = api.post("/api/v1/gifts/gifts", _gift_body(CategoryFactory()), format="json").json()["id"]

    # When the shop replaces it with a corrected registration and submits it
    resp = api.put(
        f"/api/v1/gifts/gifts/{gift_id}",
        _gift_body(CategoryFactory(), spec="30ml", declared_value_fen=12_000, submit=True),
        format="json",
    )

    # Then the gift carries the new fields and is waiting for review
    assert resp.status_code == 200, resp.json()
    gift = Gift.objects.get(pk=gift_id)
    assert (gift.spec, gift.declared_value_fen, gift.state) == ("30ml", 12_000, Gift.State.SUBMITTED)
    assert resp.json()["state"] == "submitted"
    assert list(GiftEvent.objects.filter(gift=gift).order_by("id").values_list("kind", flat=True)) == [
        "registered",
        "edited",
        "submitted",
    ]


@pytest.mark.parametrize(
    ("extra", "rule", "field"),
    [
        (
            {"is_lottery": True, "declared_value_fen": 2_000_000, "quantity_per_order": 3},
            "GIFT-2.7",
            "declared_value_fen",
        ),
        ({"near_expiry": True, "expiry_date": None}, "GIFT-2.4", "expiry_date"),
    ],
)
def test_api_edit_of_a_draft_is_refused_like_the_form_and_changes_nothing(owner, extra, rule, field):
    gift = GiftFactory(shop=owner.organization, state=Gift.State.DRAFT, spec="15ml")

    resp = session(owner.user).put(
        f"/api/v1/gifts/gifts/{gift.pk}", _gift_body(gift.category, spec="99ml", **extra), format="json"
    )

    assert resp.status_code == 400
    assert (resp.json()["code"], resp.json()["field"]) == (rule, field)
    gift.refresh_from_db()
    assert gift.spec == "15ml" and not gift.is_lottery and not gift.near_expiry


def test_api_edit_of_a_gift_under_review_is_refused(owner):
    gift = GiftFactory(shop=owner.organization, state=Gift.State.SUBMITTED, spec="15ml")

    resp = session(owner.user).put(
        f"/api/v1/gifts/gifts/{gift.pk}", _gift_body(gift.category, spec="99ml"), format="json"
    )

    assert resp.status_code == 409, resp.json()
    gift.refresh_from_db()
    assert gift.spec == "15ml"


def test_api_edit_is_for_the_shops_main_account_only(owner):
    mine = GiftFactory(shop=owner.organization, state=Gift.State.DRAFT)
    theirs = GiftFactory(state=Gift.State.DRAFT)
    body = _gift_body(mine.category, spec="99ml")

    assert session(owner.user).put(f"/api/v1/gifts/gifts/{theirs.pk}", body, format="json").status_code == 404
    resp = session(sub_member(owner.organization).user).put(
        f"/api/v1/gifts/gifts/{mine.pk}", body, format="json"
    )
    assert resp.status_code == 403 and resp.json()["code"] == "GIFT-MAIN-ONLY"
    assert Gift.objects.get(pk=theirs.pk).spec != "99ml" and Gift.objects.get(pk=mine.pk).spec != "99ml"


def test_gift_api_sub_account_reads_but_cannot_register(owner):
    GiftFactory(shop=owner.organization)
    sub = session(sub_member(owner.organization).user)
    assert sub.get("/api/v1/gifts/gifts").json()["count"] == 1
    resp = sub.post("/api/v1/gifts/gifts", _gift_body(CategoryFactory()), format="json")
    assert resp.status_code == 403 and resp.json()["code"] == "GIFT-MAIN-ONLY"


def test_gift_api_other_shops_gift_is_404(owner):
    gift = GiftFactory()
    api = session(owner.user)
    assert api.get(f"/api/v1/gifts/gifts/{gift.pk}").status_code == 404
    assert api.post(f"/api/v1/gifts/gifts/{gift.pk}/submit").status_code == 404


def test_gift_api_unauthenticated_is_refused():
    assert APIClient().get("/api/v1/gifts/gifts").status_code == 401


def test_gift_2_5_listing_check_api_returns_every_finding_with_its_rule(owner):
    gift = approved_gift(shop=owner.organization, brand="Lancome/兰蔻")
    resp = session(owner.user).post(
        "/api/v1/gifts/listing-check",
        {
            "title": "精华液 送ＬＡＮＣＯＭＥ",
            "subtitle": "",
            "gift_more_prominent": True,
            "gift_ids": [gift.pk],
        },
        format="json",
    )
    body = resp.json()
    assert resp.status_code == 200 and body["passed"] is False
    assert {(f["rule"], f["code"]) for f in body["findings"]} == {
        ("GIFT-2.5", "GIFT-2.5-BRAND"),
        ("GIFT-2.5", "GIFT-2.5-IMAGE-PROMINENT"),
    }


def test_listing_check_api_passes_a_clean_listing_and_checks_a_saved_product(owner):
    gift = approved_gift(shop=owner.organization)
    product = ProductFactory(shop=owner.organization)
    api = session(owner.user)
    assert api.post(
        "/api/v1/gifts/listing-check", {"title": "精华液", "gift_ids": [gift.pk]}, format="json"
    ).json() == {
        "passed": True,
        "findings": [],
    }
    assert (
        api.post("/api/v1/gifts/listing-check", {"product_id": product.pk}, format="json").json()["passed"]
        is True
    )


def test_listing_check_api_other_shops_gift_or_product_is_404(owner):
    api = session(owner.user)
    assert (
        api.post(
            "/api/v1/gifts/listing-check", {"title": "x", "gift_ids": [approved_gift().pk]}, format="json"
        ).status_code
        == 404
    )
    assert (
        api.post(
            "/api/v1/gifts/listing-check", {"product_id": ProductFactory().pk}, format="json"
        ).status_code
        == 404
    )


def _dispute_body(gift, product, **kw):
    body = {
        "order_no": "DY20240501001",
        "paid_amount_fen": 10_000,
        "paid_at": "2024-05-01T10:00:00+08:00",
        "product_id": product.pk,
        "gift_id": gift.pk,
        "signed_for_at": "2024-05-03T10:00:00+08:00",
        "kind": "not_delivered",
        "consumer_claim": "没收到赠品",
    }
    body.update(kw)
    return body


def test_gift_5_order_system_opens_a_dispute_with_the_shops_key_and_retry_is_idempotent(owner):
    gift = approved_gift(shop=owner.organization, declared_value_fen=None, value_basis="")
    product = ProductFactory(shop=owner.organization)
    api = keyed(owner)
    resp = api.post("/api/v1/gifts/disputes", _dispute_body(gift, product), format="json")
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["state"] == "awaiting_merchant" and body["calculation"]["compensation_fen"] == 3_000
    again = api.post("/api/v1/gifts/disputes", _dispute_body(gift, product), format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert GiftDispute.objects.count() == 1 and Order.objects.get().product_dispute_state == "none"


def _order_of_three(api, gift, product, order_no="DY20240501001"):
    resp = api.post(
        "/api/v1/gifts/orders",
        {
            "order_no": order_no,
            "product_id": product.pk,
            "paid_amount_fen": 10_000,
            "paid_at": "2024-05-01T10:00:00+08:00",
            "gifts": [{"gift_id": gift.pk, "quantity": 3}],
        },
        format="json",
    )
    assert resp.status_code == 200, resp.json()


def test_gift_5_4_order_system_records_a_partial_return_and_reads_it_back(owner):
    # Given an order due three ¥88 units of a gift
    gift = approved_gift(shop=owner.organization, declared_value_fen=8_800)
    product = ProductFactory(shop=owner.organization)
    api = keyed(owner)
    _order_of_three(api, gift, product)

    # When the order system records a return with two units back intact, one lost by the consumer
    body = _dispute_body(gift, product, kind="return_gift_lost", units_returned_intact=2)
    resp = api.post("/api/v1/gifts/disputes", body, format="json")

    # Then the dispute shows both counts and deducts one unit's value
    assert resp.status_code == 201, resp.json()
    got = resp.json()
    assert (got["units_promised"], got["units_returned_intact"]) == (3, 2)
    assert got["calculation"]["refund_deduction_fen"] == 8_800
    read = session(owner.user).get(f"/api/v1/gifts/disputes/{got['id']}").json()
    assert (read["units_promised"], read["units_returned_intact"]) == (3, 2)


@pytest.mark.parametrize("intact", [-1, 4, 2**40])
def test_gift_5_4_api_refuses_units_returned_intact_out_of_range_naming_the_field_and_rule(owner, intact):
    gift = approved_gift(shop=owner.organization)
    product = ProductFactory(shop=owner.organization)
    api = keyed(owner)
    _order_of_three(api, gift, product)
    body = _dispute_body(gift, product, kind="return_gift_lost", units_returned_intact=intact)
    resp = api.post("/api/v1/gifts/disputes", body, format="json")
    assert resp.status_code == 400
    assert (resp.json()["code"], resp.json()["field"]) == ("GIFT-5.4", "units_returned_intact")
    assert not GiftDispute.objects.exists()


def test_gift_5_dispute_api_other_shops_key_gets_404_and_shop_session_is_forbidden(owner):
    gift = approved_gift()
    product = ProductFactory(shop=gift.shop)
    assert (
        keyed(owner).post("/api/v1/gifts/disputes", _dispute_body(gift, product), format="json").status_code
        == 404
    )
    resp = session(owner.user).post("/api/v1/gifts/disputes", _dispute_body(gift, product), format="json")
    assert resp.status_code == 403


def test_gift_5_dispute_api_staff_with_permission_may_open(owner):
    from django.contrib.auth.models import Group

    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name="gift-reviewers"))
    gift = approved_gift(shop=owner.organization)
    resp = session(staff).post(
        "/api/v1/gifts/disputes", _dispute_body(gift, ProductFactory(shop=owner.organization)), format="json"
    )
    assert resp.status_code == 201


def test_gift_5_dispute_reads_are_scoped(owner):
    gift = approved_gift(shop=owner.organization)
    keyed(owner).post(
        "/api/v1/gifts/disputes", _dispute_body(gift, ProductFactory(shop=owner.organization)), format="json"
    )
    dispute = GiftDispute.objects.get()
    assert session(owner.user).get(f"/api/v1/gifts/disputes/{dispute.pk}").status_code == 200
    other = main_member()
    assert session(other.user).get(f"/api/v1/gifts/disputes/{dispute.pk}").status_code == 404
    assert session(other.user).get("/api/v1/gifts/disputes").json()["count"] == 0


def test_gift_4_2_order_and_late_shipment_through_the_api(owner):
    gift = approved_gift(shop=owner.organization)
    product = ProductFactory(shop=owner.organization, promised_ship_hours=24)
    api = keyed(owner)
    body = api.post(
        "/api/v1/gifts/orders",
        {
            "order_no": "S1",
            "product_id": product.pk,
            "paid_amount_fen": 9900,
            "paid_at": "2024-05-01T10:00:00+08:00",
            "gifts": [{"gift_id": gift.pk}],
        },
        format="json",
    ).json()
    shipment_id = body["shipments"][0]["id"]
    assert body["ship_by_at"].startswith("2024-05-02T10:00:00")
    resp = api.post(
        f"/api/v1/gifts/shipments/{shipment_id}/shipped",
        {"shipped_at": "2024-05-03T10:00:00+08:00", "tracking_no": "SF1"},
        format="json",
    )
    assert resp.status_code == 200 and resp.json()["violation_id"] == Violation.objects.get().pk
    assert (
        keyed(main_member())
        .post(
            f"/api/v1/gifts/shipments/{shipment_id}/shipped",
            {"shipped_at": "2024-05-03T10:00:00+08:00", "tracking_no": "SF1"},
            format="json",
        )
        .status_code
        == 404
    )
    assert GiftShipment.objects.get().tracking_no == "SF1"


def test_gift_4_2_a_shipping_time_agreed_with_the_consumer_is_honoured_but_only_before_the_due_time(owner):
    import datetime as dt

    from gifts import services
    from portal import clock

    gift = approved_gift(shop=owner.organization)
    product = ProductFactory(shop=owner.organization, promised_ship_hours=24)
    paid = clock.now() - dt.timedelta(hours=2)  # due in 22 hours
    api = keyed(owner)
    order = api.post(
        "/api/v1/gifts/orders",
        {
            "order_no": "AG1",
            "product_id": product.pk,
            "paid_amount_fen": 9900,
            "paid_at": paid.isoformat(),
            "gifts": [{"gift_id": gift.pk}],
        },
        format="json",
    ).json()
    url = f"/api/v1/gifts/shipments/{order['shipments'][0]['id']}/agreed-ship-by"
    agreed = paid + dt.timedelta(days=5)
    body = {"agreed_ship_by_at": agreed.isoformat(), "note": "消费者同意赠品随第二批到货一起发"}
    # another shop's key does not find it; a note is required
    assert keyed(main_member()).post(url, body, format="json").status_code == 404
    missing_note = api.post(url, {**body, "note": " "}, format="json")
    assert missing_note.status_code == 400 and missing_note.json()["field"] == "note"
    resp = api.post(url, body, format="json")
    assert resp.status_code == 200, resp.content
    assert dt.datetime.fromisoformat(resp.json()["due_by_at"]) == agreed
    # the hourly job does not judge it at the old due time, only after the agreed one
    assert services.gift_shipment_overdue_run(now=paid + dt.timedelta(hours=30)) == 0
    assert services.gift_shipment_overdue_run(now=agreed + dt.timedelta(minutes=1)) == 1
    # an agreement written after the due time passed would excuse a breach after the fact
    late = api.post(
        url, {**body, "agreed_ship_by_at": (agreed + dt.timedelta(days=5)).isoformat()}, format="json"
    )
    assert late.status_code in (400, 409) and late.json()["code"] == "GIFT-4.2"
    event = GiftEvent.objects.get(kind="shipment_ship_by_agreed")
    assert event.rule_id == "GIFT-4.2" and "第二批" in event.details["note"]


def test_violation_list_is_scoped_and_constant_in_queries(owner):
    from gifts import services

    for i in range(3):
        gift = approved_gift(shop=owner.organization)
        services.violation_record(
            shop_id=gift.shop_id,
            rule_id="GIFT-4.2",
            occurred_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
            source_key=f"v{i}",
            gift=gift,
        )
    api = session(owner.user)
    with CaptureQueriesContext(connection) as three:
        assert api.get("/api/v1/gifts/violations").json()["count"] == 3
    gift = approved_gift(shop=owner.organization)
    services.violation_record(
        shop_id=gift.shop_id,
        rule_id="GIFT-4.2",
        occurred_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        source_key="v9",
        gift=gift,
    )
    with CaptureQueriesContext(connection) as four:
        api.get("/api/v1/gifts/violations")
    assert len(four) == len(three)
    assert session(main_member().user).get("/api/v1/gifts/violations").json()["count"] == 0


def test_gift_4_2_the_shipment_api_annuls_a_not_shipped_violation_and_the_list_shows_it(owner):
    from gifts import services

    gift = approved_gift(shop=owner.organization, declared_value_fen=50_000)
    product = ProductFactory(shop=owner.organization, promised_ship_hours=24)
    api = keyed(owner)
    order = api.post(
        "/api/v1/gifts/orders",
        {
            "order_no": "AN1",
            "product_id": product.pk,
            "paid_amount_fen": 9900,
            "paid_at": "2024-05-01T10:00:00+08:00",
            "gifts": [{"gift_id": gift.pk}],
        },
        format="json",
    ).json()
    services.gift_shipment_overdue_run(
        now=dt.datetime(2024, 5, 2, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    )
    violation = Violation.objects.get()
    resp = api.post(
        f"/api/v1/gifts/shipments/{order['shipments'][0]['id']}/shipped",
        {"shipped_at": "2024-05-02T09:30:00+08:00", "tracking_no": "SF1"},
        format="json",
    )
    assert resp.status_code == 200, resp.content
    assert resp.json()["annulled_violation_id"] == violation.pk and resp.json()["violation_id"] is None
    (row,) = session(owner.user).get("/api/v1/gifts/violations").json()["results"]
    assert (row["id"], row["annulled"], row["weight"], row["counted_weight"]) == (violation.pk, True, 2, 0)
    assert row["annulment"]["cause"] == "shipped_in_time" and row["annulment"]["reason"].startswith(
        "GIFT-4.2"
    )


def test_gift_list_is_constant_in_queries(owner):
    api = session(owner.user)
    GiftFactory(shop=owner.organization)
    with CaptureQueriesContext(connection) as one:
        api.get("/api/v1/gifts/gifts")
    GiftFactory.create_batch(3, shop=owner.organization)
    with CaptureQueriesContext(connection) as four:
        api.get("/api/v1/gifts/gifts")
    assert len(one) == len(four)
    assert Gift.objects.count() == 4


def test_gift_5_unknown_dispute_kind_is_a_400_naming_the_field(owner):
    gift = approved_gift(shop=owner.organization)
    resp = keyed(owner).post(
        "/api/v1/gifts/disputes",
        _dispute_body(gift, ProductFactory(shop=owner.organization), kind="bogus"),
        format="json",
    )
    assert resp.status_code == 400 and resp.json()["field"] == "kind"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity_per_order", 0),
        ("quantity_per_order", 2_147_483_648),
        ("declared_value_fen", 9_223_372_036_854_775_808),
    ],
)
def test_gift_register_out_of_range_answers_400_naming_the_field(owner, field, value):
    api = session(owner.user)
    resp = api.post("/api/v1/gifts/gifts", _gift_body(CategoryFactory(), **{field: value}), format="json")
    assert resp.status_code == 400 and resp.json()["field"] == field
    assert not Gift.objects.exists()
