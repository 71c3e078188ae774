"""Staff actions and jobs that would leave a listed product in breach (GIFT-2.2, 2.3, 2.6): a gift
category made prohibited or made to need a licence, a licence lapsing or revoked, a gift removed.
Each takes the gift off the products that offered it (audited, the shop told for each listed
product); the product itself stays as it was."""

import datetime as dt

import pytest

from gifts import listing_check as checks
from gifts import services
from gifts.errors import DomainError, TransitionError
from gifts.models import GiftEvent, Product, ProductGift, Violation
from gifts.tests.factories import (
    CategoryFactory,
    ProductFactory,
    QualificationFactory,
    UserFactory,
    approved_gift,
    food_category,
    main_member,
    valid_licence,
)
from portal.models import AuditEntry, Notification

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
TODAY = dt.date(2024, 5, 1)


@pytest.fixture
def owner():
    return main_member()


@pytest.fixture
def staff():
    return UserFactory(is_staff=True)


def _listed_with(owner, *gifts, state=Product.State.LISTED) -> Product:
    product = ProductFactory(shop=owner.organization, state=state)
    for gift in gifts:
        ProductGift.objects.create(product=product, gift=gift, attached_by=owner.user)
    return product


def _detached_notices(product):
    return Notification.objects.filter(kind="gift_detached", url=f"/gifts/products/{product.pk}/")


def test_gift_2_2_category_made_prohibited_takes_its_gifts_off_the_listings(owner, staff):
    # Given an approved gift on a listed product (with another, unaffected gift) and on a draft
    category = CategoryFactory(name="电子烟配件")
    gift = approved_gift(shop=owner.organization, category=category)
    other = approved_gift(shop=owner.organization)
    listed = _listed_with(owner, gift, other)
    draft = _listed_with(owner, gift, state=Product.State.DRAFT)

    # When staff mark the category prohibited
    category.is_prohibited = True
    services.category_save(category=category, actor=staff, changed=["is_prohibited"], now=NOW)

    # Then the gift has left both products; the other gift stays; the listing is clean and listed
    assert not ProductGift.objects.filter(gift=gift).exists()
    assert list(ProductGift.objects.values_list("product_id", "gift_id")) == [(listed.pk, other.pk)]
    listed.refresh_from_db()
    assert listed.state == "listed" and checks.product_listing_check(listed) == []
    # and each detachment is in the history under GIFT-2.2, audited with the staff member
    events = GiftEvent.objects.filter(kind="gift_detached", gift=gift, rule_id="GIFT-2.2")
    assert sorted(events.values_list("product_id", flat=True)) == sorted([listed.pk, draft.pk])
    audited = AuditEntry.objects.filter(action="gifts.product_gift_detach", actor=staff)
    assert sorted(audited.values_list("object_id", flat=True)) == sorted([str(listed.pk), str(draft.pk)])
    # and the shop is told about the listed product (the draft offered nothing to consumers)
    notice = _detached_notices(listed).get()
    assert notice.organization_id == owner.organization_id and "GIFT-2.2" in notice.body
    assert not _detached_notices(draft).exists()
    # and no violation: attaching was allowed when the merchant did it (GIFT-6.2)
    assert not Violation.objects.exists()
    gift.refresh_from_db()
    assert gift.state == "approved"


def test_gift_2_2_saving_a_category_unchanged_detaches_nothing(owner, staff):
    category = CategoryFactory(name="护肤")
    gift = approved_gift(shop=owner.organization, category=category)
    _listed_with(owner, gift)
    services.category_save(category=category, actor=staff, changed=[], now=NOW)
    assert ProductGift.objects.filter(gift=gift).exists()
    assert not GiftEvent.objects.filter(kind__in=["gift_detached", "suspended"]).exists()


def test_gift_2_3_category_made_to_need_a_licence_suspends_the_gifts_of_shops_without_one(owner, staff):
    # Given two shops' gifts in a category, listed; only the second shop holds the licence
    category = CategoryFactory(name="保健品")
    lacking = approved_gift(shop=owner.organization, category=category)
    listed = _listed_with(owner, lacking)
    holder = main_member()
    valid_licence(holder.organization, licence_type="保健食品许可证")
    licensed = approved_gift(shop=holder.organization, category=category)
    licensed_product = _listed_with(holder, licensed)

    # When staff make the category need that licence
    category.licence_required, category.licence_type = True, "保健食品许可证"
    services.category_save(category=category, actor=staff, changed=["licence_required"], now=NOW)

    # Then the gift of the shop without it is suspended and off its listing; the other is untouched
    lacking.refresh_from_db()
    licensed.refresh_from_db()
    assert (lacking.state, licensed.state) == ("suspended", "approved")
    assert not ProductGift.objects.filter(gift=lacking).exists()
    assert ProductGift.objects.filter(gift=licensed, product=licensed_product).exists()
    assert checks.product_listing_check(listed) == []
    assert _detached_notices(listed).exists()
    assert AuditEntry.objects.filter(action="gifts.gift_suspend", object_id=str(lacking.pk)).exists()

    # And when staff drop the requirement again, the suspended gift is back in force (not re-attached)
    category.licence_required, category.licence_type = False, ""
    services.category_save(category=category, actor=staff, changed=["licence_required"], now=NOW)
    lacking.refresh_from_db()
    assert lacking.state == "approved" and not ProductGift.objects.filter(gift=lacking).exists()
    assert GiftEvent.objects.filter(gift=lacking, kind="reinstated", rule_id="GIFT-2.3").exists()


def test_gift_2_3_licence_lapsing_takes_the_suspended_gift_off_its_listings(owner, staff):
    # Given a food gift on a listed product, and the shop's licence valid through yesterday
    gift = approved_gift(shop=owner.organization, category=food_category())
    valid_licence(owner.organization, valid_until=TODAY - dt.timedelta(days=1))
    listed = _listed_with(owner, gift)

    # When the nightly licence job runs (it may run twice)
    assert services.qualification_expiry_run(today=TODAY)["suspended"] == 1
    assert services.qualification_expiry_run(today=TODAY)["suspended"] == 0

    # Then the gift is suspended and no longer offered; the product stays listed, in no breach
    gift.refresh_from_db()
    listed.refresh_from_db()
    assert gift.state == "suspended" and not ProductGift.objects.filter(gift=gift).exists()
    assert listed.state == "listed" and checks.product_listing_check(listed, today=TODAY) == []
    event = GiftEvent.objects.get(kind="gift_detached", gift=gift, product=listed)
    assert event.rule_id == "GIFT-2.3" and event.actor is None
    # audited as the job's doing, and the shop told once
    assert AuditEntry.objects.filter(
        action="gifts.product_gift_detach", object_id=str(listed.pk), actor=None
    ).exists()
    assert _detached_notices(listed).count() == 1

    # And once a new licence is approved, the gift is back and the merchant may attach it again
    q = QualificationFactory(shop=owner.organization)
    services.qualification_approve(
        qualification=q, actor=staff, licence_number="JY3", valid_until=dt.date(2030, 1, 1), now=NOW
    )
    services.product_gift_attach(membership=owner, actor=owner.user, product=listed, gift=gift, now=NOW)
    assert ProductGift.objects.filter(gift=gift, product=listed).exists()


def test_gift_2_3_staff_revoking_a_licence_suspends_the_gifts_that_needed_it(owner, staff):
    # Given a food gift on a listed product, covered by an approved licence
    gift = approved_gift(shop=owner.organization, category=food_category())
    licence = valid_licence(owner.organization)
    listed = _listed_with(owner, gift)

    # When staff revoke the licence (the issuing authority revoked it)
    q = services.qualification_revoke(qualification=licence, actor=staff, reason="市场监管局已吊销", now=NOW)

    # Then it is revoked with who, when and why, audited and told to the shop
    assert (q.state, q.revoked_by, q.revoked_at, q.revoke_reason) == (
        "revoked",
        staff,
        NOW,
        "市场监管局已吊销",
    )
    assert GiftEvent.objects.filter(
        qualification=q, kind="qualification_revoked", rule_id="GIFT-2.3"
    ).exists()
    assert AuditEntry.objects.filter(
        action="gifts.qualification_revoke", object_id=str(q.pk), actor=staff
    ).exists()
    assert Notification.objects.filter(organization=owner.organization, kind="gift_qualification").exists()
    # and the gift that needed it is suspended and off the listing, which stays listed and clean
    gift.refresh_from_db()
    assert gift.state == "suspended" and "吊销" in gift.state_reason
    assert not ProductGift.objects.filter(gift=gift).exists()
    assert checks.product_listing_check(listed, today=TODAY) == []
    assert _detached_notices(listed).exists()


def test_gift_2_3_revoking_one_licence_while_another_valid_one_covers_the_gift_suspends_nothing(owner, staff):
    gift = approved_gift(shop=owner.organization, category=food_category())
    first = valid_licence(owner.organization)
    valid_licence(owner.organization)
    _listed_with(owner, gift)
    services.qualification_revoke(qualification=first, actor=staff, reason="重复上传的旧证", now=NOW)
    gift.refresh_from_db()
    assert gift.state == "approved" and ProductGift.objects.filter(gift=gift).exists()


def test_gift_2_3_only_an_approved_licence_can_be_revoked_and_a_reason_is_required(owner, staff):
    licence = valid_licence(owner.organization)
    with pytest.raises(DomainError) as err:
        services.qualification_revoke(qualification=licence, actor=staff, reason=" ")
    assert err.value.field == "reason"
    services.qualification_revoke(qualification=licence, actor=staff, reason="已吊销")
    with pytest.raises(TransitionError):
        services.qualification_revoke(qualification=licence, actor=staff, reason="再次")


def test_gift_2_6_staff_removing_a_gift_leaves_its_listing_clean_and_tells_the_shop(owner, staff):
    """Detaching a removed gift was already done (GIFT-2.6); the shop is now told per listing."""
    gift = approved_gift(shop=owner.organization)
    listed = _listed_with(owner, gift)
    services.gift_remove(gift=gift, actor=staff, reason="抽检不合格", rule_id="GIFT-3", now=NOW)
    listed.refresh_from_db()
    assert listed.state == "listed" and checks.product_listing_check(listed) == []
    assert not ProductGift.objects.filter(gift=gift).exists()
    assert GiftEvent.objects.get(kind="gift_detached", gift=gift).rule_id == "GIFT-3"
    assert AuditEntry.objects.filter(action="gifts.product_gift_detach", actor=staff).exists()
    assert "抽检不合格" in _detached_notices(listed).get().body


def test_gift_2_6_merchant_withdrawing_a_gift_detaches_it_without_a_platform_notice(owner):
    gift = approved_gift(shop=owner.organization)
    listed = _listed_with(owner, gift)
    services.gift_withdraw(membership=owner, actor=owner.user, gift=gift)
    assert not ProductGift.objects.filter(gift=gift).exists()
    assert GiftEvent.objects.filter(kind="gift_detached", gift=gift, product=listed).exists()
    assert not _detached_notices(listed).exists()
    assert not AuditEntry.objects.filter(action="gifts.product_gift_detach").exists()
