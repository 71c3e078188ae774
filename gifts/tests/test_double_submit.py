"""Double submits with real threads on PostgreSQL: the registration form posted twice at once,
or an API client retrying with its Idempotency-Key, registers one gift (GIFT-2.1); a dispute
answer posted twice is recorded once (GIFT-5); the product form creates one product and the
licence form stores one licence (GIFT-2.3)."""

import re
import threading

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from gifts.models import DisputeEvidence, Gift, GiftEvent, Product, Qualification
from gifts.tests.factories import CategoryFactory, approved_gift, main_member, open_dispute, upload

pytestmark = pytest.mark.django_db(transaction=True)


def _at_once(n, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _token(html: str) -> str:
    match = re.search(r'name="request_token" value="([0-9a-f]{32})"', html)
    assert match, "the form carries a one-time request token"
    return match.group(1)


def test_gift_2_1_registration_form_submitted_twice_at_once_registers_one_gift():
    owner = main_member()
    category = CategoryFactory()
    client = Client()
    client.force_login(owner.user)
    token = _token(client.get(reverse("gifts:gift-create")).content.decode())
    form = {
        "name": "面霜小样",
        "brand": "Lancome",
        "category": category.pk,
        "quantity_per_order": 1,
        "ship_from": "overseas",
        "declared_value": "88.00",
        "submit": "1",
        "request_token": token,
    }

    def post(i):
        c = Client()
        c.force_login(owner.user)
        return c.post(reverse("gifts:gift-create"), form)

    responses = _at_once(2, post)

    gift = Gift.objects.get()
    assert gift.state == "submitted"
    assert GiftEvent.objects.filter(gift=gift, kind="submitted").count() == 1
    target = reverse("gifts:gift-detail", args=[gift.pk])
    assert [(r.status_code, r.url) for r in responses] == [(302, target), (302, target)]
    # A new form is a new registration.
    client.post(reverse("gifts:gift-create"), {**form, "request_token": "e" * 32})
    assert Gift.objects.count() == 2


def test_gift_2_1_api_retried_with_one_idempotency_key_registers_one_gift():
    owner = main_member()
    other_shop = main_member()
    body = {
        "name": "旅行装面霜",
        "brand": "Lancome",
        "category_id": CategoryFactory().pk,
        "quantity_per_order": 1,
        "ship_from": "bonded",
        "declared_value_fen": 8800,
        "submit": True,
    }

    def post(i):
        api = APIClient()
        api.force_login(owner.user)
        return api.post("/api/v1/gifts/gifts", body, format="json", headers={"Idempotency-Key": "reg-1"})

    responses = _at_once(3, post)

    gift = Gift.objects.get()
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert {r.json()["id"] for r in responses} == {gift.pk}
    # The key is the shop's own: another shop using the same key registers its own gift.
    api = APIClient()
    api.force_login(other_shop.user)
    resp = api.post("/api/v1/gifts/gifts", body, format="json", headers={"Idempotency-Key": "reg-1"})
    assert resp.status_code == 201 and resp.json()["id"] != gift.pk
    assert Gift.objects.filter(shop=other_shop.organization).count() == 1


def test_gift_5_dispute_answer_posted_twice_at_once_is_recorded_once():
    owner = main_member()
    gift = approved_gift(shop=owner.organization)
    dispute = open_dispute(gift)
    client = Client()
    client.force_login(owner.user)
    url = reverse("gifts:dispute-detail", args=[dispute.pk])
    token = _token(client.get(url).content.decode())

    def post(i):
        c = Client()
        c.force_login(owner.user)
        return c.post(url, {"response": "已按时发货 见运单", "files": upload(), "request_token": token})

    responses = _at_once(2, post)

    assert [r.status_code for r in responses] == [302, 302]
    dispute.refresh_from_db()
    assert dispute.merchant_response == "已按时发货 见运单"
    assert DisputeEvidence.objects.filter(dispute=dispute).count() == 1
    assert GiftEvent.objects.filter(dispute=dispute, kind="dispute_responded").count() == 1
    # A second answer from a new form is appended, as before.
    client.post(url, {"response": "补充说明", "request_token": "d" * 32})
    dispute.refresh_from_db()
    assert dispute.merchant_response == "已按时发货 见运单\n\n补充说明"


def test_product_form_submitted_twice_at_once_creates_one_product():
    owner = main_member()
    client = Client()
    client.force_login(owner.user)
    url = reverse("gifts:products")
    token = _token(client.get(url).content.decode())
    form = {"title": "面霜 50ml", "promised_ship_hours": 48, "request_token": token}

    def post(i):
        c = Client()
        c.force_login(owner.user)
        return c.post(url, form)

    responses = _at_once(2, post)

    product = Product.objects.get()
    assert GiftEvent.objects.filter(product=product, kind="product_created").count() == 1
    target = reverse("gifts:product-detail", args=[product.pk])
    assert [(r.status_code, r.url) for r in responses] == [(302, target), (302, target)]
    # The browser re-sending the POST later lands on the same product too.
    resp = client.post(url, form)
    assert (resp.status_code, resp.url) == (302, target)
    assert Product.objects.count() == 1
    # A new form is a new product.
    client.post(url, {**form, "request_token": "c" * 32})
    assert Product.objects.count() == 2


def test_gift_2_3_licence_upload_submitted_twice_at_once_stores_one_licence():
    owner = main_member()
    client = Client()
    client.force_login(owner.user)
    url = reverse("gifts:qualifications")
    token = _token(client.get(url).content.decode())

    def post(i):
        c = Client()
        c.force_login(owner.user)
        return c.post(url, {"licence_type": "食品经营许可证", "file": upload(), "request_token": token})

    responses = _at_once(2, post)

    licence = Qualification.objects.get()
    assert licence.state == "pending"
    assert GiftEvent.objects.filter(qualification=licence, kind="qualification_uploaded").count() == 1
    assert [(r.status_code, r.url) for r in responses] == [(302, url), (302, url)]
    # The repeat's file was dropped: only the stored licence's file is left.
    folder = f"gifts/qualifications/{owner.organization_id}"
    assert default_storage.listdir(folder)[1] == [licence.storage_name.rsplit("/", 1)[-1]]
    # A new form is a new upload.
    client.post(url, {"licence_type": "食品经营许可证", "file": upload(), "request_token": "b" * 32})
    assert Qualification.objects.count() == 2


def test_gift_2_1_an_idempotency_key_over_100_characters_is_refused_not_cut():
    # Given a gift registered under a key of 100 characters
    owner = main_member()
    api = APIClient()
    api.force_login(owner.user)
    body = {
        "name": "旅行装面霜",
        "brand": "Lancome",
        "category_id": CategoryFactory().pk,
        "quantity_per_order": 1,
        "ship_from": "bonded",
        "declared_value_fen": 8800,
    }
    first = api.post("/api/v1/gifts/gifts", body, format="json", headers={"Idempotency-Key": "k" * 100})
    assert first.status_code == 201
    # When another request comes with a longer key that starts with the same 100 characters
    resp = api.post(
        "/api/v1/gifts/gifts",
        {**body, "name": "另一件赠品"},
        format="json",
        headers={"Idempotency-Key": "k" * 101},
    )
    # Then it is refused naming the header, not answered with the first gift
    assert resp.status_code == 400
    assert (resp.json()["code"], resp.json()["field"]) == ("invalid", "Idempotency-Key")
    assert Gift.objects.count() == 1
