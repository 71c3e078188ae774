"""Object permissions of every gifts URL that names an object: another shop's member gets 404
and no side effect; a sub-account (子账号) gets 403 GIFT-MAIN-ONLY where only the main account
acts. Cases already proven elsewhere (gift/product/dispute pages, evidence download, the gift
and listing-check API, dispute opening by another shop's key) are not repeated here."""

import datetime as dt

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from gifts.forms import GiftForm
from gifts.models import DocumentRequest, Gift, GiftEvent, GiftShipment, Order, Product, ProductGift
from gifts.tests.factories import (
    GiftFactory,
    ProductFactory,
    QualificationFactory,
    approved_gift,
    main_member,
    open_dispute,
    order_for,
    sub_member,
    upload,
)
from portal.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Shop A with its objects; shop B's main account (the attacker) and A's sub-account."""
    a = main_member()
    shop = a.organization
    gift = GiftFactory(shop=shop)
    approved = approved_gift(shop=shop)
    product = ProductFactory(shop=shop)
    ProductGift.objects.create(product=product, gift=approved, attached_by=a.user)
    order = order_for(product)
    shipment = GiftShipment.objects.create(order=order, gift=approved, quantity=1)
    qualification = QualificationFactory(shop=shop)
    doc_request = DocumentRequest.objects.create(
        gift=approved,
        reason="GIFT-3",
        requested_by=a.user,
        deadline_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
    )
    b = main_member()
    return {
        "a": a,
        "sub": sub_member(shop),
        "b": b,
        "b_gift": approved_gift(shop=b.organization),
        "b_product": ProductFactory(shop=b.organization),
        "gift": gift,
        "approved": approved,
        "product": product,
        "order": order,
        "shipment": shipment,
        "qualification": qualification,
        "doc_request": doc_request,
        "dispute": open_dispute(approved),
    }


def keyed(membership) -> APIClient:
    _, raw = api_key_create(membership=membership, name="orders", actor=membership.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return api


def state_of(world) -> tuple:
    """Everything an attacker's call could change on shop A."""
    w = world
    return (
        tuple(
            Gift.objects.filter(shop=w["a"].organization).order_by("pk").values_list("pk", "state", "name")
        ),
        tuple(ProductGift.objects.filter(product=w["product"]).values_list("gift_id", flat=True)),
        tuple(Product.objects.filter(pk=w["product"].pk).values_list("state", "title")),
        tuple(
            GiftShipment.objects.filter(order=w["order"]).values_list("pk", "shipped_at", "agreed_ship_by_at")
        ),
        tuple(DocumentRequest.objects.filter(pk=w["doc_request"].pk).values_list("state", flat=True)),
        GiftEvent.objects.filter(shop=w["a"].organization).count(),
        Order.objects.count(),
    )


# --- pages: another shop's ids are 404 and change nothing ---------------------------------------

PAGE_POSTS = [
    ("gifts:gift-edit", "gift", {"name": "hijacked", "brand": "x"}),
    ("gifts:gift-submit", "gift", {}),
    ("gifts:gift-withdraw", "approved", {}),
    ("gifts:product-detail", "product", {"action": "save", "title": "hijacked"}),
    ("gifts:product-detail", "product", {"action": "publish"}),
    ("gifts:product-detail", "product", {"action": "detach", "gift": "approved"}),
    ("gifts:dispute-detail", "dispute", {"response": "not mine"}),
]


@pytest.mark.parametrize(("name", "obj", "data"), PAGE_POSTS)
def test_other_shops_post_on_an_object_page_is_404_and_changes_nothing(client, world, name, obj, data):
    data = {k: (world[v].pk if v in world else v) for k, v in data.items()}
    before = state_of(world)
    client.force_login(world["b"].user)
    resp = client.post(reverse(name, args=[world[obj].pk]), data)
    assert resp.status_code == 404
    assert state_of(world) == before


def test_attaching_another_shops_gift_to_an_own_product_is_404(client, world):
    """B names A's approved gift on B's own product page: not found, nothing attached."""
    client.force_login(world["b"].user)
    resp = client.post(
        reverse("gifts:product-detail", args=[world["b_product"].pk]),
        {"action": "attach", "gift": world["approved"].pk},
    )
    assert resp.status_code == 404
    assert not ProductGift.objects.filter(product=world["b_product"]).exists()


def test_gift_3_qualification_upload_cannot_fulfil_another_shops_document_request(client, world):
    client.force_login(world["b"].user)
    client.post(
        reverse("gifts:qualifications"),
        {"licence_type": "食品经营许可证", "file": upload(), "document_request": world["doc_request"].pk},
    )
    world["doc_request"].refresh_from_db()
    assert world["doc_request"].state == DocumentRequest.State.OPEN
    assert world["doc_request"].fulfilled_by_id is None


def test_qualification_document_of_another_shop_is_404(client, world):
    client.force_login(world["b"].user)
    url = reverse("gifts:document-file", args=["qualification", world["qualification"].pk])
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "gifts:gift-list",
        "gifts:products",
        "gifts:qualifications",
        "gifts:violations",
        "gifts:disputes",
    ],
)
def test_lists_ignore_a_shop_query_parameter(client, world, url):
    client.force_login(world["b"].user)
    shop_id = world["a"].organization_id
    body = client.get(reverse(url), {"shop": shop_id, "shop_id": shop_id, "organization": shop_id})
    assert body.status_code == 200
    text = body.content.decode()
    assert world["gift"].name not in text and world["product"].title not in text
    assert world["order"].order_no not in text


# --- sub-accounts read but never register, edit or list -------------------------------------------

SUB_POSTS = [
    ("gifts:gift-edit", "gift", "complete form"),
    ("gifts:gift-submit", "gift", {}),
    ("gifts:gift-withdraw", "approved", {}),
    ("gifts:product-detail", "product", {"action": "publish"}),
    ("gifts:product-detail", "product", {"action": "detach", "gift": "approved"}),
]


@pytest.mark.parametrize(("name", "obj", "data"), SUB_POSTS)
def test_gift_main_only_sub_account_post_is_403_and_changes_nothing(client, world, name, obj, data):
    if data == "complete form":  # a valid form, so the refusal is the service's, not validation's
        data = {k: v for k, v in GiftForm.initial_for(world["gift"]).items() if v is not None}
        data.update(name="by sub", category=world["gift"].category_id)
    data = {k: (world[v].pk if isinstance(v, str) and v in world else v) for k, v in data.items()}
    before = state_of(world)
    client.force_login(world["sub"].user)
    resp = client.post(reverse(name, args=[world[obj].pk]), data)
    assert resp.status_code == 403
    assert "GIFT-MAIN-ONLY" in resp.content.decode()
    assert state_of(world) == before


# --- API --------------------------------------------------------------------------------------------


def test_gift_submit_api_of_another_shop_is_404(world):
    api = APIClient()
    api.force_login(world["b"].user)
    before = state_of(world)
    assert api.post(f"/api/v1/gifts/gifts/{world['gift'].pk}/submit").status_code == 404
    assert state_of(world) == before


def test_dispute_detail_api_of_another_shop_is_404(world):
    api = APIClient()
    api.force_login(world["b"].user)
    assert api.get(f"/api/v1/gifts/disputes/{world['dispute'].pk}").status_code == 404
    listed = api.get("/api/v1/gifts/disputes", {"shop": world["a"].organization_id}).json()
    assert listed["count"] == 0


@pytest.mark.parametrize("path", ["/api/v1/gifts/gifts", "/api/v1/gifts/disputes"])
def test_api_lists_ignore_a_shop_query_parameter(world, path):
    api = keyed(world["b"])
    shop_id = world["a"].organization_id
    results = api.get(path, {"shop": shop_id, "organization": shop_id}).json()["results"]
    a_ids = {world[k].pk for k in ("gift", "approved", "dispute")}
    assert not {row["id"] for row in results} & a_ids
    assert all(row.get("gift_id", world["b_gift"].pk) not in a_ids for row in results)


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("shipped", {"shipped_at": "2024-05-01T12:00:00Z", "tracking_no": "SF1"}),
        ("agreed-ship-by", {"agreed_ship_by_at": "2024-05-05T12:00:00Z", "note": "agreed"}),
    ],
)
def test_gift_4_2_another_shops_key_cannot_record_a_shipment(world, suffix, body):
    before = state_of(world)
    resp = keyed(world["b"]).post(
        f"/api/v1/gifts/shipments/{world['shipment'].pk}/{suffix}", body, format="json"
    )
    assert resp.status_code == 404
    assert state_of(world) == before


def test_gift_4_2_a_shop_members_session_cannot_record_a_shipment(world):
    api = APIClient()
    api.force_login(world["a"].user)
    resp = api.post(
        f"/api/v1/gifts/shipments/{world['shipment'].pk}/shipped",
        {"shipped_at": "2024-05-01T12:00:00Z", "tracking_no": "SF1"},
        format="json",
    )
    assert resp.status_code == 403
    assert GiftShipment.objects.get(pk=world["shipment"].pk).shipped_at is None


def test_gift_4_2_another_shops_key_cannot_add_orders_on_this_shops_product_or_gift(world):
    api = keyed(world["b"])
    before = state_of(world)
    on_product = api.post(
        "/api/v1/gifts/orders",
        {
            "order_no": "X-1",
            "product_id": world["product"].pk,
            "paid_amount_fen": 100,
            "paid_at": "2024-05-01T10:00:00Z",
        },
        format="json",
    )
    with_gift = api.post(
        "/api/v1/gifts/orders",
        {
            "order_no": "X-2",
            "product_id": world["b_product"].pk,
            "paid_amount_fen": 100,
            "paid_at": "2024-05-01T10:00:00Z",
            "gifts": [{"gift_id": world["approved"].pk, "quantity": 1}],
        },
        format="json",
    )
    assert on_product.status_code == with_gift.status_code == 404
    assert on_product.json()["field"] == "product_id" and with_gift.json()["field"] == "gifts"
    assert state_of(world) == before


def test_gift_4_2_another_shop_cannot_claim_this_shops_order_number_first(world):
    """Order numbers are per shop: B's key sending "DY-1" with B's own product first must not
    stop A's order system from recording A's order "DY-1" (nor a consumer's dispute on it)."""
    body = {"order_no": "DY-1", "paid_amount_fen": 10_000, "paid_at": "2024-05-01T10:00:00Z"}
    squat = keyed(world["b"]).post(
        "/api/v1/gifts/orders", {**body, "product_id": world["b_product"].pk}, format="json"
    )
    assert squat.status_code == 200
    own = keyed(world["a"]).post(
        "/api/v1/gifts/orders", {**body, "product_id": world["product"].pk}, format="json"
    )
    assert own.status_code == 200, own.content
    a_order = Order.objects.get(shop=world["a"].organization, order_no="DY-1")
    assert a_order.product_id == world["product"].pk
    assert [s["gift_id"] for s in own.json()["shipments"]] == [world["approved"].pk]
    b_order = Order.objects.get(shop=world["b"].organization, order_no="DY-1")
    assert b_order.product_id == world["b_product"].pk and not b_order.gift_shipments.exists()
