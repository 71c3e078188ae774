"""Races on real PostgreSQL connections: row locks make exactly one side win."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from gifts import services
from gifts.errors import DomainError
from gifts.models import GiftDispute, GiftEvent
from gifts.tests.factories import GiftFactory, ProductFactory, UserFactory, approved_gift, main_member

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_until_waiting_on_lock(pids, *, done=None, tries=500):
    """Until one of ``pids`` waits on a row lock (or ``done`` is set: the other side finished
    without waiting). Returns True when it saw it waiting."""
    for _ in range(tries):
        with connection.cursor() as cur:
            # inside a transaction the activity view is read once and kept, unless cleared
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if pids & {r[0] for r in cur.fetchall()}:
                return True
        if done is not None and done.is_set():
            return False
        threading.Event().wait(0.02)
    return False


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
                _wait_until_waiting_on_lock(pids, tries=200)  # until the removal waits on a lock
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


# --- GIFT-4.2: the overdue job and a late-recorded shipment at the same time -------------------------

PAID = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
DUE = PAID + dt.timedelta(hours=48)


def _overdue_shipment():
    from gifts.models import GiftShipment

    gift = approved_gift(declared_value_fen=50_000)
    product = ProductFactory(shop=gift.shop, promised_ship_hours=48)
    services.order_upsert(
        shop=gift.shop,
        order_no=f"RACE-{gift.pk}",
        product=product,
        paid_amount_fen=20_000,
        paid_at=PAID,
        gift_lines=[(gift, 1)],
    )
    return GiftShipment.objects.get(gift=gift)


def _second_waits_for_first(first, second, *, shipment_id):
    """``first`` runs in a transaction that already holds the shipment's row lock; ``second``
    starts meanwhile and must wait on that lock until ``first`` has committed."""
    from django.db import transaction

    from gifts import locks

    holding, errors, pids = threading.Event(), [], set()

    def run_first():
        try:
            with transaction.atomic():
                locks.lock_shipment(shipment_id)
                holding.set()
                _wait_until_waiting_on_lock(pids, tries=500)  # until the other side waits on the lock
                first()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def run_second():
        try:
            holding.wait(10)
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pids.add(cur.fetchone()[0])
            second()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def _assert_consistent(shipment_id):
    """Shipped by the due time, so no 'not shipped' violation may stand, whoever came first."""
    from gifts.models import GiftShipment, Violation

    shipment = GiftShipment.objects.get(pk=shipment_id)
    assert shipment.shipped_at == DUE - dt.timedelta(hours=1)
    standing = Violation.objects.filter(gift_id=shipment.gift_id, annulment__isnull=True)
    assert not standing.exists()
    return list(Violation.objects.filter(gift_id=shipment.gift_id).select_related("annulment"))


def _job():
    return services.gift_shipment_overdue_run(now=DUE + dt.timedelta(hours=1))


def _record(shipment):
    return lambda: services.gift_shipment_mark_shipped(
        shipment=shipment, shipped_at=DUE - dt.timedelta(hours=1), tracking_no="SF-RACE"
    )


def test_gift_4_2_job_judging_while_the_in_time_shipment_is_recorded_ends_annulled(migration_data):
    # Given an overdue shipment the job is judging (it holds the shipment's row lock)
    shipment = _overdue_shipment()

    # When the order system records it as shipped before the due time, meanwhile
    _second_waits_for_first(_job, _record(shipment), shipment_id=shipment.pk)

    # Then the record waited for the judgement and annulled it: one violation, annulled
    (violation,) = _assert_consistent(shipment.pk)
    assert violation.is_annulled and violation.annulment.shipment_id == shipment.pk
    assert GiftEvent.objects.filter(kind="violation_annulled", gift_id=shipment.gift_id).count() == 1


def test_gift_4_2_shipment_recorded_while_the_job_looks_at_it_is_not_judged(migration_data):
    # Given the order system recording an in-time shipment (it holds the shipment's row lock)
    shipment = _overdue_shipment()

    # When the job, which listed the shipment as unshipped, reaches it meanwhile
    results = []
    _second_waits_for_first(_record(shipment), lambda: results.append(_job()), shipment_id=shipment.pk)

    # Then the job waited, saw it shipped and judged nothing
    assert results == [0] and _assert_consistent(shipment.pk) == []


def test_gift_4_2_job_and_in_time_record_started_at_once_end_consistent(migration_data):
    shipment = _overdue_shipment()
    results = _race(_job, _record(shipment))
    assert not any(isinstance(r, Exception) for r in results)
    violations = _assert_consistent(shipment.pk)
    # either the job came first (one violation, annulled) or the record did (none)
    assert (results[0], len(violations)) in ((1, 1), (0, 0))
    assert all(v.is_annulled for v in violations)


# --- GIFT-2.2: staff prohibit a category while a merchant attaches a gift of it -----------------------


def test_gift_2_2_category_prohibited_while_its_gift_is_being_attached_ends_detached():
    """The merchant's attach holds the product and the gift (whose lock takes the category row);
    staff prohibiting the category wait for it and then take the new attachment off again."""
    from django.db import transaction

    from gifts import locks
    from gifts.models import GiftCategory, ProductGift

    owner = main_member()
    category = GiftCategory.objects.create(name="电子烟配件")
    gift = approved_gift(shop=owner.organization, category=category)
    product = ProductFactory(shop=owner.organization)
    staff = UserFactory(is_staff=True)
    holding, errors, pids = threading.Event(), [], set()

    def merchant_attach():
        try:
            with transaction.atomic():
                locks.lock_product(product.pk)
                locks.lock_gift(gift.pk)  # as product_gift_attach does, before it writes the link
                holding.set()
                _wait_until_waiting_on_lock(pids, tries=500)  # until the staff change waits on a lock
                services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def staff_prohibit():
        try:
            holding.wait(10)
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pids.add(cur.fetchone()[0])
            changed = GiftCategory.objects.get(pk=category.pk)
            changed.is_prohibited = True
            services.category_save(category=changed, actor=staff, changed=["is_prohibited"])
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=merchant_attach), threading.Thread(target=staff_prohibit)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert GiftCategory.objects.get(pk=category.pk).is_prohibited
    assert not ProductGift.objects.filter(gift=gift).exists()
    assert GiftEvent.objects.filter(kind="gift_attached", gift=gift).count() == 1
    assert GiftEvent.objects.filter(kind="gift_detached", gift=gift, rule_id="GIFT-2.2").count() == 1


# --- lock_gift locks the gift and its category, not the shop ---------------------------------------


def _locks_within(seconds: str, fn):
    """Runs ``fn`` in a transaction that gives up waiting for a row lock after ``seconds``: True when
    it got its locks, False when it would have had to wait."""
    from django.db import OperationalError, transaction

    try:
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute(f"SET LOCAL lock_timeout = '{seconds}'")
            fn()
        return True
    except OperationalError as exc:
        assert "lock timeout" in str(exc)
        return False


def test_gift_2_1_two_gifts_of_one_shop_are_locked_at_once_without_waiting():
    """A review, suspension or withdrawal of one gift must not queue behind another gift of the
    same shop: the gift lock takes the gift's row and its category's (which the GIFT-2.2 category
    change relies on), never the shop's. Gifts of one category still queue, on purpose."""
    from django.db import transaction

    from gifts import locks

    first = approved_gift()
    other = approved_gift(shop=first.shop)  # another category (the factory makes one per gift)
    same_category = approved_gift(shop=first.shop, category=first.category)
    assert other.category_id != first.category_id
    holding, release, errors = threading.Event(), threading.Event(), []

    def hold_first():
        try:
            with transaction.atomic():
                locks.lock_gift(first.pk)
                holding.set()
                release.wait(30)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_first)
    holder.start()
    try:
        assert holding.wait(10)
        other_locked = _locks_within("2s", lambda: locks.lock_gift(other.pk))
        same_category_locked = _locks_within("500ms", lambda: locks.lock_gift(same_category.pk))
    finally:
        release.set()
        holder.join(30)
    assert errors == []
    assert other_locked, "a gift of the same shop waited for another gift's lock"
    assert not same_category_locked, "the gift lock no longer takes the category row (GIFT-2.2 race)"


# --- GIFT-2.3: a gift lock and a category change take the category before the gift ----------------


def _backend_pid():
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def test_gift_2_3_licence_job_suspending_a_gift_while_staff_change_its_category_does_not_deadlock(
    monkeypatch,
):
    """The licence job suspends an approved gift (no products) whose licence lapsed while staff change
    the gift's category to need another licence, which suspends the same gift. Staff hold the
    category and then lock the gift; the job's gift lock must not hold the gift while it waits for
    the category, or the two wait on each other ("deadlock detected") and one side fails."""
    from gifts.models import Gift, GiftCategory
    from gifts.tests.factories import food_category, valid_licence

    category = food_category()
    gift = approved_gift(category=category)
    today = dt.date(2024, 6, 2)
    valid_licence(gift.shop, valid_until=today - dt.timedelta(days=1))  # lapsed yesterday
    staff = UserFactory(is_staff=True)
    holding, job_done, errors, job_pids, results = threading.Event(), threading.Event(), [], set(), []
    job_waited = []

    enforce = services._category_enforce

    def enforce_once_the_job_waits(category, **kwargs):
        # staff hold the category (locked by category_save) until the job's gift lock is waiting
        holding.set()
        job_waited.append(_wait_until_waiting_on_lock(job_pids, done=job_done))
        enforce(category, **kwargs)

    monkeypatch.setattr(services, "_category_enforce", enforce_once_the_job_waits)

    def staff_change():
        try:
            changed = GiftCategory.objects.get(pk=category.pk)
            changed.licence_type = "保健食品经营许可证"
            services.category_save(
                category=changed,
                actor=staff,
                changed=["licence_type"],
                now=dt.datetime(2024, 6, 2, 2, 0, tzinfo=dt.UTC),
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def licence_job():
        try:
            holding.wait(10)
            job_pids.add(_backend_pid())
            results.append(services.qualification_expiry_run(today=today))
        except Exception as exc:
            errors.append(exc)
        finally:
            job_done.set()
            connection.close()

    threads = [threading.Thread(target=staff_change), threading.Thread(target=licence_job)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert job_waited == [True]  # the two did meet: the job came while staff held the category
    assert GiftCategory.objects.get(pk=category.pk).licence_type == "保健食品经营许可证"
    assert Gift.objects.get(pk=gift.pk).state == "suspended"
    # staff suspended it first; the job waited, found it suspended already and left it
    assert results == [{"noticed": 0, "suspended": 0}]
    assert GiftEvent.objects.filter(gift=gift, kind="suspended", rule_id="GIFT-2.3").count() == 1


def test_gift_2_2_gift_lock_waiting_while_the_gift_changes_category_ends_on_the_new_category():
    """The gift lock reads the gift's category, locks it, then the gift. When the gift moved to
    another category meanwhile (a merchant's edit holding it), the lock starts again on the new
    category and lets go of the old one, so a change of the old category does not queue behind it."""
    from django.db import transaction

    from gifts import locks
    from gifts.tests.factories import CategoryFactory

    gift = GiftFactory()
    old_category, new_category = gift.category, CategoryFactory()
    holding, done, release, errors, pids, locked = (
        threading.Event(),
        threading.Event(),
        threading.Event(),
        [],
        set(),
        [],
    )

    def merchant_edit():
        try:
            with transaction.atomic():
                edited = locks.lock_gift(gift.pk)
                holding.set()
                assert _wait_until_waiting_on_lock(pids)
                edited.category = new_category
                edited.save(update_fields=["category"])
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def other_lock():
        try:
            holding.wait(10)
            pids.add(_backend_pid())
            with transaction.atomic():
                locked.append(locks.lock_gift(gift.pk))
                done.set()
                release.wait(30)
        except Exception as exc:
            errors.append(exc)
        finally:
            done.set()
            connection.close()

    threads = [threading.Thread(target=merchant_edit), threading.Thread(target=other_lock)]
    for t in threads:
        t.start()
    try:
        assert done.wait(30)
        old_free = _locks_within("2s", lambda: locks.lock_category_with_its_products(old_category.pk))
        new_free = _locks_within("500ms", lambda: locks.lock_category_with_its_products(new_category.pk))
    finally:
        release.set()
        for t in threads:
            t.join(30)
    assert errors == []
    assert [g.category_id for g in locked] == [new_category.pk]
    assert locked[0].category == new_category
    assert old_free, "the gift lock kept the category the gift left"
    assert not new_free, "the gift lock did not take the gift's new category"


# --- GIFT-2.3: a reviewer approves a gift while staff revoke the shop's licence --------------------


def _submitted_food_gift_with_licence():
    from gifts.tests.factories import food_category, valid_licence

    gift = GiftFactory(state="submitted", category=food_category())
    return gift, valid_licence(gift.shop)


def _approval_meets_revocation(monkeypatch, *, holder: str):
    """Runs a reviewer's approval and a revocation of the licence it relies on, ``holder`` ("approve"
    or "revoke") first: it is held, with its locks taken and its check done, until the other side
    waits on a lock (or finishes without waiting). Returns (errors, approval result, other waited)."""
    gift, licence = _submitted_food_gift_with_licence()
    staff = UserFactory(is_staff=True)
    holding, other_done, errors, other_pids, waited, approved = (
        threading.Event(),
        threading.Event(),
        [],
        set(),
        [],
        [],
    )

    def held(fn):
        def wrapper(*args, **kwargs):
            result = fn(*args, **kwargs) if holder == "approve" else None
            holding.set()
            waited.append(_wait_until_waiting_on_lock(other_pids, done=other_done))
            return result if holder == "approve" else fn(*args, **kwargs)

        return wrapper

    if holder == "approve":  # the reviewer has checked the licence and not yet committed
        monkeypatch.setattr(services, "_approval_blockers", held(services._approval_blockers))
    else:  # staff have marked the licence revoked and not yet looked for gifts to suspend
        monkeypatch.setattr(
            services, "_suspend_gifts_lacking_licence", held(services._suspend_gifts_lacking_licence)
        )

    def approve():
        try:
            approved.append(services.gift_approve(gift=gift, actor=staff))
        except Exception as exc:
            approved.append(exc)

    def revoke():
        services.qualification_revoke(qualification=licence, actor=staff, reason="发证机关已吊销")

    def run(fn, *, first):
        try:
            if not first:
                holding.wait(10)
                other_pids.add(_backend_pid())
            fn()
        except Exception as exc:
            errors.append(exc)
        finally:
            if not first:
                other_done.set()
            connection.close()

    threads = [
        threading.Thread(target=run, args=(approve,), kwargs={"first": holder == "approve"}),
        threading.Thread(target=run, args=(revoke,), kwargs={"first": holder == "revoke"}),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return gift, licence, errors, approved, waited


def _assert_no_approved_gift_without_its_licence(gift, licence):
    from gifts import selectors
    from gifts.models import Gift, Qualification

    gift = Gift.objects.select_related("category").get(pk=gift.pk)
    assert Qualification.objects.get(pk=licence.pk).state == "revoked"
    lacking = selectors.gifts_lacking_licence(today=timezone.localdate()).filter(pk=gift.pk)
    assert not lacking.exists(), "GIFT-2.3: the gift is approved though its licence was revoked"
    return gift


def test_gift_2_3_licence_revoked_while_the_gift_is_being_approved_ends_suspended(monkeypatch):
    # Given a reviewer approving a food gift (licence checked, not yet committed)
    # When staff revoke the shop's food licence meanwhile
    gift, licence, errors, approved, waited = _approval_meets_revocation(monkeypatch, holder="approve")

    # Then the revocation waited for the approval and then suspended the approved gift
    assert errors == []
    gift = _assert_no_approved_gift_without_its_licence(gift, licence)
    assert waited == [True], "the revocation did not wait for the approval relying on the licence"
    assert [type(result).__name__ for result in approved] == ["Gift"]
    assert gift.state == "suspended"
    kinds = list(GiftEvent.objects.filter(gift=gift).order_by("pk").values_list("kind", flat=True))
    assert kinds[-2:] == ["approved", "suspended"]


def test_gift_2_3_gift_approved_while_its_licence_is_being_revoked_is_refused(monkeypatch):
    # Given staff revoking the shop's food licence (marked revoked, not yet committed)
    # When a reviewer approves a food gift of the shop meanwhile
    gift, licence, errors, approved, waited = _approval_meets_revocation(monkeypatch, holder="revoke")

    # Then the approval waited for the revocation and was refused for want of a licence
    assert errors == []
    assert waited == [True], "the approval did not wait for the revocation of its licence"
    gift = _assert_no_approved_gift_without_its_licence(gift, licence)
    (refusal,) = approved
    assert isinstance(refusal, DomainError) and refusal.code == "GIFT-2.3"
    assert gift.state == "submitted"
    assert not GiftEvent.objects.filter(gift=gift, kind__in=["approved", "suspended"]).exists()


def test_gift_2_3_approval_and_revocation_started_at_once_never_leave_the_gift_approved():
    gift, licence = _submitted_food_gift_with_licence()
    staff = UserFactory(is_staff=True)
    _race(
        lambda: services.gift_approve(gift=gift, actor=staff),
        lambda: services.qualification_revoke(qualification=licence, actor=staff, reason="发证机关已吊销"),
    )
    gift = _assert_no_approved_gift_without_its_licence(gift, licence)
    assert gift.state in ("submitted", "suspended")


# --- GIFT-2.3: a category change, a revocation, an approval and the licence job meet -----------------


def _first_held_until_second_waits(monkeypatch, *, first, second, hold: str, after: bool = True):
    """Runs ``first`` and ``second`` in two threads. ``first`` is held in ``services.<hold>`` (after
    the real call when ``after``, else before it), with the locks it took so far, until ``second``
    waits on a lock (or finishes without waiting); ``second`` starts once ``first`` is held.
    Returns (errors, waited): ``waited == [True]`` when ``second`` did wait."""
    holding, second_done, errors, pids, waited, first_ident = (
        threading.Event(),
        threading.Event(),
        [],
        set(),
        [],
        [],
    )
    real = getattr(services, hold)

    def held(*args, **kwargs):
        if threading.get_ident() not in first_ident or waited:
            return real(*args, **kwargs)
        result = real(*args, **kwargs) if after else None
        holding.set()
        waited.append(_wait_until_waiting_on_lock(pids, done=second_done))
        return result if after else real(*args, **kwargs)

    monkeypatch.setattr(services, hold, held)

    def run_first():
        try:
            first_ident.append(threading.get_ident())
            first()
        except Exception as exc:
            errors.append(exc)
        finally:
            holding.set()
            connection.close()

    def run_second():
        try:
            holding.wait(10)
            pids.add(_backend_pid())
            second()
        except Exception as exc:
            errors.append(exc)
        finally:
            second_done.set()
            connection.close()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors, waited


def _gift_suspended_until_its_category_needs_the_shops_licence():
    """A gift suspended for want of a 保健食品 licence, whose shop holds a valid 食品 licence:
    staff changing the category to need the 食品 licence put the gift back in force."""
    from gifts.tests.factories import CategoryFactory, valid_licence

    category = CategoryFactory(name="保健食品", licence_required=True, licence_type="保健食品经营许可证")
    gift = GiftFactory(state="suspended", category=category)
    return gift, valid_licence(gift.shop)


def _category_needs_food_licence(category, staff):
    from gifts.models import GiftCategory

    def change():
        changed = GiftCategory.objects.get(pk=category.pk)
        changed.licence_type = "食品经营许可证"
        services.category_save(category=changed, actor=staff, changed=["licence_type"])

    return change


def _revoke(licence, staff):
    return lambda: services.qualification_revoke(qualification=licence, actor=staff, reason="发证机关已吊销")


def test_gift_2_3_category_change_reinstating_a_gift_while_its_licence_is_revoked_leaves_it_suspended(
    monkeypatch,
):
    # Given staff revoking the shop's food licence (marked revoked, its gifts looked at: none is
    # approved in a category needing it yet; not committed)
    gift, licence = _gift_suspended_until_its_category_needs_the_shops_licence()
    staff = UserFactory(is_staff=True)

    # When staff change the gift's category to need that licence meanwhile
    errors, waited = _first_held_until_second_waits(
        monkeypatch,
        first=_revoke(licence, staff),
        second=_category_needs_food_licence(gift.category, staff),
        hold="_suspend_gifts_lacking_licence",
    )

    # Then the category change waited for the revocation and left the gift suspended
    assert errors == []
    gift = _assert_no_approved_gift_without_its_licence(gift, licence)
    assert gift.category.licence_type == "食品经营许可证"
    assert gift.state == "suspended"
    assert not GiftEvent.objects.filter(gift=gift, kind="reinstated").exists()
    assert waited == [True], "the category change read the licence without waiting for its revocation"


def test_gift_2_3_licence_revoked_while_a_category_change_reinstates_the_gift_ends_suspended(monkeypatch):
    # Given staff changing a category so the shop's food licence puts its gift back in force
    # (reinstated, not yet committed)
    gift, licence = _gift_suspended_until_its_category_needs_the_shops_licence()
    staff = UserFactory(is_staff=True)

    # When staff revoke that licence meanwhile
    errors, waited = _first_held_until_second_waits(
        monkeypatch,
        first=_category_needs_food_licence(gift.category, staff),
        second=_revoke(licence, staff),
        hold="_category_enforce",
    )

    # Then the revocation waited for the change and suspended the reinstated gift again
    assert errors == []
    gift = _assert_no_approved_gift_without_its_licence(gift, licence)
    assert gift.state == "suspended"
    kinds = list(GiftEvent.objects.filter(gift=gift).order_by("pk").values_list("kind", flat=True))
    assert kinds[-2:] == ["reinstated", "suspended"]
    assert waited == [True], "the revocation did not wait for the category change relying on the licence"


def test_gift_2_3_category_change_and_revocation_suspending_its_gift_queue_without_deadlock(monkeypatch):
    """Licences before products and the category: the revocation holds the licence and then locks
    the products and category of the gift it suspends, so a category change must take the licence
    before its products and category, or the two wait on each other ("deadlock detected")."""
    from gifts.models import Gift, GiftCategory, ProductGift
    from gifts.tests.factories import food_category, valid_licence

    # Given an approved food gift on a product, and staff revoking the shop's food licence
    # (marked revoked, not yet looking for gifts to suspend)
    gift = approved_gift(category=food_category())
    licence = valid_licence(gift.shop)
    ProductGift.objects.create(product=ProductFactory(shop=gift.shop), gift=gift, attached_by=UserFactory())
    staff = UserFactory(is_staff=True)

    def rename():
        changed = GiftCategory.objects.get(pk=gift.category_id)
        changed.name = "预包装食品"
        services.category_save(category=changed, actor=staff, changed=["name"])

    # When staff change the gift's category meanwhile
    errors, waited = _first_held_until_second_waits(
        monkeypatch,
        first=_revoke(licence, staff),
        second=rename,
        hold="_suspend_gifts_lacking_licence",
        after=False,
    )

    # Then the change waited for the revocation, which suspended the gift; neither failed
    assert errors == []
    assert waited == [True], "the category change did not wait for the revocation of its gifts' licence"
    assert GiftCategory.objects.get(pk=gift.category_id).name == "预包装食品"
    assert Gift.objects.get(pk=gift.pk).state == "suspended"
    assert not ProductGift.objects.filter(gift=gift).exists()


JOB_DAY = dt.date(2024, 6, 2)


def _approved_gift_with_lapsed_licence_and_a_new_one_pending():
    from gifts.tests.factories import QualificationFactory, food_category, valid_licence

    gift = approved_gift(category=food_category())
    valid_licence(gift.shop, valid_until=JOB_DAY - dt.timedelta(days=1))  # lapsed yesterday
    return gift, QualificationFactory(shop=gift.shop, state="pending")


def _approve(pending, staff):
    return lambda: services.qualification_approve(
        qualification=pending,
        actor=staff,
        licence_number="JY13101010000002",
        valid_until=dt.date(2099, 12, 31),
        now=dt.datetime(2024, 6, 2, 1, 0, tzinfo=dt.UTC),
    )


def test_gift_2_3_licence_approved_between_the_jobs_listing_and_its_lock_leaves_the_gift_approved(
    monkeypatch,
):
    from gifts.models import Gift

    # Given an approved food gift whose shop's licence lapsed, the new licence awaiting review
    gift, pending = _approved_gift_with_lapsed_licence_and_a_new_one_pending()
    staff = UserFactory(is_staff=True)
    approved, results = [], []
    suspend = services.gift_suspend

    def reviewer_approves_first(**kwargs):
        # the job has listed the gift as lacking a licence and not yet locked it
        reviewer = threading.Thread(
            target=lambda: (approved.append(_approve(pending, staff)()), connection.close())
        )
        reviewer.start()
        reviewer.join(30)
        return suspend(**kwargs)

    monkeypatch.setattr(services, "gift_suspend", reviewer_approves_first)

    # When the licence job runs, and the reviewer approves the new licence between its listing
    # and its lock
    results.append(services.qualification_expiry_run(today=JOB_DAY))

    # Then the job, checking again under the lock, leaves the gift in force
    assert [q.state for q in approved] == ["approved"]
    assert Gift.objects.get(pk=gift.pk).state == "approved"
    assert not GiftEvent.objects.filter(gift=gift, kind="suspended").exists()
    assert results == [{"noticed": 0, "suspended": 0}]


def test_gift_2_3_licence_job_meeting_an_approval_in_progress_waits_and_leaves_the_gift_approved(
    monkeypatch,
):
    from gifts.models import Gift

    # Given a reviewer approving the shop's new licence (approved, found no suspended gift, not
    # yet committed)
    gift, pending = _approved_gift_with_lapsed_licence_and_a_new_one_pending()
    staff = UserFactory(is_staff=True)

    # When the licence job finds the gift lacking its (lapsed) licence meanwhile
    results = []
    errors, waited = _first_held_until_second_waits(
        monkeypatch,
        first=_approve(pending, staff),
        second=lambda: results.append(services.qualification_expiry_run(today=JOB_DAY)),
        hold="_notify_shop",
    )

    # Then the job waited for the approval and left the gift in force
    assert errors == []
    assert Gift.objects.get(pk=gift.pk).state == "approved"
    assert not GiftEvent.objects.filter(gift=gift, kind="suspended").exists()
    assert results == [{"noticed": 0, "suspended": 0}]
    assert waited == [True], "the licence job did not wait for the approval of the shop's licence"


def test_gift_2_3_licence_approved_while_the_job_suspends_the_gift_reinstates_it(monkeypatch):
    from gifts.models import Gift

    # Given the licence job suspending an approved gift whose shop's licence lapsed (suspended,
    # not yet committed)
    gift, pending = _approved_gift_with_lapsed_licence_and_a_new_one_pending()
    staff = UserFactory(is_staff=True)

    # When a reviewer approves the shop's new licence meanwhile
    errors, waited = _first_held_until_second_waits(
        monkeypatch,
        first=lambda: services.qualification_expiry_run(today=JOB_DAY),
        second=_approve(pending, staff),
        hold="_detach_gift_from_products",
    )

    # Then the approval waited for the suspension and put the gift back in force
    assert errors == []
    assert Gift.objects.get(pk=gift.pk).state == "approved"
    kinds = list(GiftEvent.objects.filter(gift=gift).order_by("pk").values_list("kind", flat=True))
    assert kinds[-2:] == ["suspended", "reinstated"]
    assert waited == [True], "the approval did not wait for the suspension relying on the missing licence"


# --- GIFT-2.3: two licences of one shop revoked at the same moment ----------------------------------


def test_gift_2_3_both_licences_of_a_shop_revoked_at_once_suspend_its_gift(monkeypatch):
    """A revocation suspends the gifts that needed the licence unless the shop holds another valid
    one of the type. Two revocations of a shop's two licences, each holding only its own licence,
    each read the other still approved (not yet committed) and suspend nothing: the gift stays in
    force with no valid licence. Holding all the shop's licences of the type, they queue instead,
    and the second finds the first licence revoked and suspends the gift."""
    from gifts.models import Gift, ProductGift, Qualification
    from gifts.tests.factories import food_category, valid_licence

    # Given an approved food gift on a product, and its shop's two valid food licences
    gift = approved_gift(category=food_category())
    licences = {"a": valid_licence(gift.shop), "b": valid_licence(gift.shop)}
    ProductGift.objects.create(product=ProductFactory(shop=gift.shop), gift=gift, attached_by=UserFactory())
    staff = UserFactory(is_staff=True)
    started, errors, pids, waited = threading.Barrier(2), [], {}, {}
    looked = {name: threading.Event() for name in licences}
    real = services._suspend_gifts_lacking_licence

    def held(*args, **kwargs):
        # each revocation, once it has looked for gifts lacking the licence (not yet committed),
        # waits until the other has looked too, or waits on a lock
        me = threading.current_thread().name
        other = "b" if me == "a" else "a"
        result = real(*args, **kwargs)
        looked[me].set()
        waited[me] = _wait_until_waiting_on_lock({pids[other]}, done=looked[other])
        return result

    monkeypatch.setattr(services, "_suspend_gifts_lacking_licence", held)

    def revoke():
        me = threading.current_thread().name
        try:
            pids[me] = _backend_pid()
            started.wait(10)
            services.qualification_revoke(qualification=licences[me], actor=staff, reason="发证机关已吊销")
        except Exception as exc:
            errors.append(exc)
        finally:
            looked[me].set()
            connection.close()

    # When staff revoke both licences at the same moment
    threads = [threading.Thread(target=revoke, name=name) for name in licences]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    # Then one revocation waited for the other and suspended the gift, which left its product
    assert errors == []
    assert set(Qualification.objects.filter(shop=gift.shop).values_list("state", flat=True)) == {"revoked"}
    assert Gift.objects.get(pk=gift.pk).state == "suspended", "GIFT-2.3: approved with no valid licence"
    assert GiftEvent.objects.filter(gift=gift, kind="suspended", rule_id="GIFT-2.3").count() == 1
    assert not ProductGift.objects.filter(gift=gift).exists()
    assert sorted(waited.values()) == [False, True], "the two revocations did not queue"


# --- GIFT-2.3: a merchant attaches a gift while staff revoke the licence it needs -------------------


def _food_gift_with_licence_and_a_product():
    from gifts.tests.factories import food_category, valid_licence

    owner = main_member()
    gift = approved_gift(shop=owner.organization, category=food_category())
    return owner, gift, valid_licence(owner.organization), ProductFactory(shop=owner.organization)


def _attach(owner, product, gift, results):
    def attach():
        try:
            results.append(
                services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
            )
        except DomainError as exc:
            results.append(exc)

    return attach


def test_gift_2_3_gift_attached_while_its_licence_is_being_revoked_is_refused(monkeypatch):
    from gifts.models import Gift, ProductGift

    # Given staff revoking the shop's food licence (marked revoked, not yet looking for gifts to
    # suspend)
    owner, gift, licence, product = _food_gift_with_licence_and_a_product()
    staff = UserFactory(is_staff=True)

    # When the merchant attaches a food gift of the shop to a product meanwhile
    results = []
    errors, waited = _first_held_until_second_waits(
        monkeypatch,
        first=_revoke(licence, staff),
        second=_attach(owner, product, gift, results),
        hold="_suspend_gifts_lacking_licence",
        after=False,
    )

    # Then the attach waited for the revocation, which suspended the gift for want of the licence, and
    # was refused: the gift was never on the product, so the shop is not told it was taken off again
    assert errors == []
    assert waited == [True], "the attach read the licence without waiting for its revocation"
    (refusal,) = results
    assert isinstance(refusal, DomainError) and refusal.code == "GIFT-2.1"
    assert Gift.objects.get(pk=gift.pk).state == "suspended"
    assert not ProductGift.objects.filter(gift=gift).exists()
    assert not GiftEvent.objects.filter(gift=gift, kind__in=["gift_attached", "gift_detached"]).exists()


def test_gift_2_3_licence_revoked_while_its_gift_is_being_attached_ends_detached(monkeypatch):
    from gifts.models import Gift, ProductGift

    # Given the merchant attaching a food gift to a product (licence checked, link written, not
    # yet committed)
    owner, gift, licence, product = _food_gift_with_licence_and_a_product()
    staff = UserFactory(is_staff=True)

    # When staff revoke the shop's food licence meanwhile
    results = []
    errors, waited = _first_held_until_second_waits(
        monkeypatch,
        first=_attach(owner, product, gift, results),
        second=_revoke(licence, staff),
        hold="_event",
    )

    # Then the revocation waited for the attach, then suspended the gift and took it off the product
    assert errors == []
    assert waited == [True], "the revocation did not wait for the attach relying on the licence"
    assert [type(r).__name__ for r in results] == ["ProductGift"]
    assert Gift.objects.get(pk=gift.pk).state == "suspended"
    assert not ProductGift.objects.filter(gift=gift).exists()
    kinds = list(GiftEvent.objects.filter(gift=gift).order_by("pk").values_list("kind", flat=True))
    assert kinds[-3:] == ["gift_attached", "suspended", "gift_detached"]


# --- GIFT-2.2: an edit moves a gift into another category ---------------------------------------------


def test_gift_2_2_two_edits_moving_gifts_into_each_others_category_do_not_deadlock(monkeypatch):
    """An edit moving a gift into another category locks that category too, and before the gift (the
    category before its gifts, both categories in pk order). Locked only when submitting re-locks the
    gift, it was taken while the edit held the gift and its old category: two shops saving and
    submitting at once, one moving a gift from A to B and the other one from B to A, each waited for
    the category the other held ("deadlock detected") and one of them failed."""
    from gifts.models import Gift

    # Given two shops' drafts, one in category A and one in category B
    in_a, in_b = GiftFactory(), GiftFactory()
    a, b = in_a.category, in_b.category

    def edit_and_submit(gift, category):
        owner = main_member(gift.shop)

        def edit():
            services.gift_update(
                membership=owner, actor=owner.user, gift=gift, data={"category": category}, submit=True
            )

        return edit

    # When one shop moves its gift into B and submits it (edited, not yet committed), and the other
    # moves its gift into A and submits it meanwhile
    errors, waited = _first_held_until_second_waits(
        monkeypatch,
        first=edit_and_submit(in_a, b),
        second=edit_and_submit(in_b, a),
        hold="_event",
    )

    # Then the second waited for the first, and both gifts are submitted in their new categories
    assert errors == []
    assert waited == [True], "the two edits did not meet"
    assert Gift.objects.get(pk=in_a.pk).category_id == b.pk
    assert Gift.objects.get(pk=in_b.pk).category_id == a.pk
    assert {Gift.objects.get(pk=in_a.pk).state, Gift.objects.get(pk=in_b.pk).state} == {"submitted"}
