"""Races on real PostgreSQL connections: row locks make exactly one side win."""

import threading

import pytest
from django.db import connection

from gifts import services
from gifts.errors import DomainError
from gifts.models import GiftDispute, GiftEvent
from gifts.tests.factories import GiftFactory, ProductFactory, UserFactory, approved_gift

pytestmark = pytest.mark.django_db(transaction=True)


def _race(*fns):
    barrier = threading.Barrier(len(fns))
    results = [None] * len(fns)

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except DomainError as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_gift_2_1_two_reviewers_approving_at_once_approve_once():
    gift = GiftFactory(state="submitted")
    staff = UserFactory(is_staff=True)
    results = _race(*(lambda: services.gift_approve(gift=gift, actor=staff) for _ in range(2)))
    assert sum(isinstance(r, DomainError) for r in results) == 1
    assert GiftEvent.objects.filter(gift=gift, kind="approved").count() == 1


def test_gift_5_order_system_retrying_at_once_opens_one_dispute():
    gift = approved_gift()
    product = ProductFactory(shop=gift.shop)

    def call():
        return services.dispute_open(
            shop=gift.shop,
            actor=None,
            order_no="RACE1",
            paid_amount_fen=1000,
            paid_at=None,
            product_id=product.pk,
            gift_id=gift.pk,
            signed_for_at=None,
            kind="not_delivered",
        )

    results = _race(call, call, call)
    assert GiftDispute.objects.count() == 1
    assert sorted(created for _, created in results) == [False, False, True]
