"""Races on real PostgreSQL connections: row locks make exactly one side win."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

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


def test_gift_2_6_removing_a_gift_while_its_product_is_being_edited_neither_deadlocks_nor_fails():
    """Product first, then the gift, on both sides: the merchant's edit of a product (holding
    it, then writing an event about the gift) and staff removing that gift (detaching it from the
    product) queue behind each other instead of deadlocking."""
    from django.db import transaction

    from gifts import locks
    from gifts.models import Gift, ProductGift

    owner_gift = approved_gift()
    product = ProductFactory(shop=owner_gift.shop)
    ProductGift.objects.create(product=product, gift=owner_gift, attached_by=UserFactory())
    staff = UserFactory(is_staff=True)
    holding, errors, pids = threading.Event(), [], set()

    def merchant_edit():
        try:
            with transaction.atomic():
                locks.lock_product(product.pk)
                holding.set()
                for _ in range(200):  # until the removal waits on a lock
                    with connection.cursor() as cur:
                        cur.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                        if pids & {r[0] for r in cur.fetchall()}:
                            break
                    threading.Event().wait(0.02)
                GiftEvent.objects.create(
                    shop=owner_gift.shop, product=product, gift=owner_gift, kind="edit", at=timezone.now()
                )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def staff_remove():
        try:
            holding.wait(10)
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pids.add(cur.fetchone()[0])
            services.gift_remove(gift=owner_gift, actor=staff, reason="抽检不合格", rule_id="GIFT-3")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=merchant_edit), threading.Thread(target=staff_remove)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert Gift.objects.get(pk=owner_gift.pk).state == "removed"
    assert not ProductGift.objects.filter(gift=owner_gift).exists()
