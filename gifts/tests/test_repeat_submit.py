# ruff: noqa: RUF001
"""The same request sent again after it was carried out (the browser re-sending the POST, an API
client retrying a call whose answer it lost): the user is shown the outcome, not an error, and
nothing is recorded twice. A different request the rules refuse is still refused, naming the rule."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from gifts import services
from gifts.models import Gift, GiftEvent, GiftShipment, Violation
from gifts.tests.factories import GiftFactory, ProductFactory, approved_gift, main_member, order_for
from portal.errors import AlreadyDone, Conflict
from portal.services import api_key_create

pytestmark = pytest.mark.django_db


def _token(html: str) -> str:
    match = re.search(r'name="request_token" value="([0-9a-f]{32})"', html)
    assert match, "the form carries a one-time request token"
    return match.group(1)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_gift_2_1_submit_sent_again_shows_it_submitted_and_submits_once():
    owner = main_member()
    gift = GiftFactory(shop=owner.organization)
    client = _client(owner.user)
    detail = reverse("gifts:gift-detail", args=[gift.pk])
    form = {"request_token": _token(client.get(detail).content.decode())}
    first = client.post(reverse("gifts:gift-submit", args=[gift.pk]), form, follow=True)
    assert first.redirect_chain == [(detail, 302)]
    assert _messages(first) == ["已提交：待审核"]

    again = client.post(reverse("gifts:gift-submit", args=[gift.pk]), form, follow=True)

    assert again.redirect_chain == [(detail, 302)]
    assert _messages(again) == ["该赠品已提交，无需重复提交。当前状态：待审核"]
    gift.refresh_from_db()
    assert gift.state == Gift.State.SUBMITTED
    assert GiftEvent.objects.filter(gift=gift, kind="submitted").count() == 1


def test_gift_2_1_another_submit_of_a_submitted_gift_is_still_refused():
    owner = main_member()
    gift = GiftFactory(shop=owner.organization, state=Gift.State.SUBMITTED)
    client = _client(owner.user)

    resp = client.post(reverse("gifts:gift-submit", args=[gift.pk]), {"request_token": "a" * 32})

    assert resp.status_code == 409
    assert resp.context["error"].display == "GIFT-STATE: 赠品状态「待审核」不能提交"
    assert not GiftEvent.objects.filter(gift=gift, kind="submitted").exists()


def test_gift_2_1_submit_api_retried_with_its_idempotency_key_returns_the_gift():
    owner = main_member()
    gift = GiftFactory(shop=owner.organization)
    api = APIClient()
    api.force_login(owner.user)
    url = f"/api/v1/gifts/gifts/{gift.pk}/submit"

    first = api.post(url, headers={"Idempotency-Key": "sub-1"})
    again = api.post(url, headers={"Idempotency-Key": "sub-1"})
    other = api.post(url, headers={"Idempotency-Key": "sub-2"})

    assert (first.status_code, first.json()["state"]) == (200, "submitted")
    assert (again.status_code, again.json()["state"], again.headers["Idempotent-Replayed"]) == (
        200,
        "submitted",
        "true",
    )
    assert (other.status_code, other.json()["code"]) == (409, "GIFT-STATE")
    assert GiftEvent.objects.filter(gift=gift, kind="submitted").count() == 1


def test_gift_4_2_shipment_retried_with_its_idempotency_key_is_recorded_once():
    owner = main_member()
    gift = approved_gift(shop=owner.organization)
    product = ProductFactory(shop=owner.organization, promised_ship_hours=24)
    _, raw = api_key_create(membership=owner, name="orders", actor=owner.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    order = api.post(
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
    url = f"/api/v1/gifts/shipments/{order['shipments'][0]['id']}/shipped"
    late = {"shipped_at": "2024-05-03T10:00:00+08:00", "tracking_no": "SF1"}

    first = api.post(url, late, format="json", headers={"Idempotency-Key": "ship-1"})
    again = api.post(url, late, format="json", headers={"Idempotency-Key": "ship-1"})

    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["violation_id"] == Violation.objects.get().pk  # GIFT-4.2 judged once
    assert GiftEvent.objects.filter(gift=gift, kind="gift_shipped").count() == 1
    # Another record of the shipped gift is refused, naming the rule.
    other = api.post(
        url, {**late, "tracking_no": "SF2"}, format="json", headers={"Idempotency-Key": "ship-2"}
    )
    assert (other.status_code, other.json()["code"]) == (409, "GIFT-4.2")
    assert GiftShipment.objects.get().tracking_no == "SF1"
    assert Violation.objects.count() == 1


def test_gift_6_2_shipment_retry_replays_the_skipped_judgement_as_first_answered():
    # A late shipment before the rules took effect is not judged (GIFT-6.2): the first answer says
    # why; the retry with its Idempotency-Key must give the same answer, not an empty reason.
    owner = main_member()
    gift = approved_gift(shop=owner.organization)
    product = ProductFactory(shop=owner.organization, promised_ship_hours=24)
    _, raw = api_key_create(membership=owner, name="orders", actor=owner.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    order = api.post(
        "/api/v1/gifts/orders",
        {
            "order_no": "S0",
            "product_id": product.pk,
            "paid_amount_fen": 9900,
            "paid_at": "2022-06-01T10:00:00+08:00",
            "gifts": [{"gift_id": gift.pk}],
        },
        format="json",
    ).json()
    url = f"/api/v1/gifts/shipments/{order['shipments'][0]['id']}/shipped"
    late = {"shipped_at": "2022-06-05T10:00:00+08:00", "tracking_no": "SF1"}

    first = api.post(url, late, format="json", headers={"Idempotency-Key": "ship-1"})
    again = api.post(url, late, format="json", headers={"Idempotency-Key": "ship-1"})

    assert first.status_code == 200 and "GIFT-6.2" in first.json()["violation_skipped_reason"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert not Violation.objects.exists()


def test_gift_4_2_shipment_retry_looks_up_its_record_by_the_gift():
    # The gift event table holds every gift's history (millions of rows, no index on kind or
    # details): the retry's check for its first record must go through the gift's index.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    gift = approved_gift()
    order = order_for(ProductFactory(shop=gift.shop))
    shipment = GiftShipment.objects.create(order=order, gift=gift, quantity=1)
    shipped = {"shipped_at": order.paid_at, "tracking_no": "SF1", "request_key": "k"}
    services.gift_shipment_mark_shipped(shipment=shipment, **shipped)

    with CaptureQueriesContext(connection) as queries, pytest.raises(AlreadyDone):
        services.gift_shipment_mark_shipped(shipment=shipment, **shipped)

    lookups = [q["sql"] for q in queries if 'FROM "gifts_giftevent"' in q["sql"]]
    assert lookups and all('"gifts_giftevent"."gift_id" =' in sql for sql in lookups)


def test_gift_4_2_shipment_key_reused_with_another_record_is_refused_not_replayed():
    # The same Idempotency-Key with another tracking number is another request: it was not
    # recorded, so it must not be answered as replayed (billing answers a reused key the same way).
    gift = approved_gift()
    order = order_for(ProductFactory(shop=gift.shop))
    shipment = GiftShipment.objects.create(order=order, gift=gift, quantity=1)
    services.gift_shipment_mark_shipped(
        shipment=shipment, shipped_at=order.paid_at, tracking_no="SF1", request_key="k"
    )

    with pytest.raises(Conflict) as refused:
        services.gift_shipment_mark_shipped(
            shipment=shipment, shipped_at=order.paid_at, tracking_no="SF2", request_key="k"
        )

    assert (refused.value.code, refused.value.field, refused.value.status) == (
        "IDEMPOTENCY-KEY-REUSED",
        "request_key",
        409,
    )
    assert GiftShipment.objects.get().tracking_no == "SF1"
    # the same record again is still the retry it was
    with pytest.raises(AlreadyDone):
        services.gift_shipment_mark_shipped(
            shipment=shipment, shipped_at=order.paid_at, tracking_no=" SF1 ", request_key="k"
        )
