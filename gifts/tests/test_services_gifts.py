# ruff: noqa: RUF001
"""Registration, review and value rules (GIFT-1.2, 2.1, 2.2, 2.3, 2.4, 2.7, 4.3)."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from gifts import services
from gifts.errors import DomainError, GiftRuleError, NotFound, TransitionError
from gifts.models import Gift, GiftCategory, GiftEvent, ProductGift, Violation
from gifts.tests.factories import (
    CategoryFactory,
    GiftFactory,
    ProductFactory,
    UserFactory,
    approved_gift,
    food_category,
    main_member,
    prohibited_category,
    sub_member,
    valid_licence,
)
from gifts.value import gift_value_resolve
from portal.models import AuditEntry, Notification
from portal.money import format_fen

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)


def _data(category, **kw):
    data = {
        "name": "旅行装面霜",
        "brand": "Lancome/兰蔻",
        "category": category,
        "kind": "护肤品",
        "spec": "15ml",
        "quantity_per_order": 1,
        "ship_from": "bonded",
        "declared_value_fen": 8800,
        "near_expiry": False,
        "expiry_date": None,
        "is_lottery": False,
    }
    data.update(kw)
    return data


@pytest.fixture
def owner():
    return main_member()


@pytest.fixture
def staff():
    return UserFactory(is_staff=True)


def test_gift_2_1_registration_is_a_draft_then_submitted_with_events(owner):
    gift = services.gift_register(membership=owner, actor=owner.user, data=_data(CategoryFactory()))
    assert gift.state == "draft"
    gift = services.gift_submit(membership=owner, actor=owner.user, gift=gift, now=NOW)
    assert gift.state == "submitted" and gift.submitted_at == NOW
    kinds = list(
        GiftEvent.objects.filter(gift=gift).order_by("id").values_list("kind", "from_state", "to_state")
    )
    assert kinds == [("registered", "", "draft"), ("submitted", "draft", "submitted")]


def test_gift_2_1_approval_then_attach_only_approved(owner, staff):
    gift = services.gift_register(
        membership=owner, actor=owner.user, data=_data(CategoryFactory()), submit=True
    )
    product = services.product_create(membership=owner, actor=owner.user, data={"title": "进口精华液"})
    with pytest.raises(GiftRuleError) as err:
        services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
    assert err.value.code == "GIFT-2.1"
    services.gift_approve(gift=gift, actor=staff)
    services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
    assert ProductGift.objects.filter(product=product, gift=gift).exists()
    assert AuditEntry.objects.filter(
        action="gifts.gift_approve", object_id=str(gift.pk), actor=staff
    ).exists()
    assert Notification.objects.filter(organization=owner.organization, kind="gift_review").exists()


def test_gift_2_1_illegal_transitions_are_refused(owner, staff):
    gift = services.gift_register(membership=owner, actor=owner.user, data=_data(CategoryFactory()))
    with pytest.raises(TransitionError):
        services.gift_approve(gift=gift, actor=staff)  # a draft is not reviewed
    services.gift_submit(membership=owner, actor=owner.user, gift=gift)
    with pytest.raises(TransitionError):
        services.gift_submit(membership=owner, actor=owner.user, gift=gift)
    services.gift_reject(gift=gift, actor=staff, reason="图片不清晰")
    with pytest.raises(TransitionError):
        services.gift_approve(gift=gift, actor=staff)
    gift.refresh_from_db()
    assert gift.state == "rejected" and gift.state_reason == "图片不清晰"


def test_gift_2_1_revisions_requested_then_edited_and_resubmitted(owner, staff):
    gift = services.gift_register(
        membership=owner, actor=owner.user, data=_data(CategoryFactory(), spec=""), submit=True
    )
    with pytest.raises(GiftRuleError) as err:
        services.gift_approve(gift=gift, actor=staff)
    assert err.value.code == "GIFT-2.4"
    services.gift_request_revisions(gift=gift, actor=staff, reason="请写明规格")
    services.gift_update(membership=owner, actor=owner.user, gift=gift, data={"spec": "15ml"})
    services.gift_submit(membership=owner, actor=owner.user, gift=gift)
    assert services.gift_approve(gift=gift, actor=staff).state == "approved"


def test_gift_2_2_edit_moving_a_gift_into_a_category_deleted_meanwhile_is_not_found(owner):
    # Given a draft, and a category the shop's form offered that staff have deleted since
    gift = services.gift_register(membership=owner, actor=owner.user, data=_data(CategoryFactory()))
    gone = CategoryFactory()
    GiftCategory.objects.filter(pk=gone.pk).delete()

    # When the shop saves the draft moved into it
    with pytest.raises(NotFound) as err:
        services.gift_update(membership=owner, actor=owner.user, gift=gift, data={"category": gone})

    # Then it is told the category is not found (not a server error), and the draft is unchanged
    assert err.value.field == "category"
    assert Gift.objects.get(pk=gift.pk).category_id == gift.category_id


def test_gift_2_1_reject_needs_a_reason(owner, staff):
    gift = services.gift_register(
        membership=owner, actor=owner.user, data=_data(CategoryFactory()), submit=True
    )
    with pytest.raises(DomainError):
        services.gift_reject(gift=gift, actor=staff, reason=" ")


def test_gift_2_1_sub_account_cannot_register_and_other_shop_gets_404(owner):
    sub = sub_member(owner.organization)
    with pytest.raises(DomainError) as err:
        services.gift_register(membership=sub, actor=sub.user, data=_data(CategoryFactory()))
    assert err.value.status == 403
    gift = services.gift_register(membership=owner, actor=owner.user, data=_data(CategoryFactory()))
    other = main_member()
    with pytest.raises(NotFound):
        services.gift_submit(membership=other, actor=other.user, gift=gift)


def test_gift_2_2_prohibited_category_is_rejected_automatically_with_violation(owner):
    gift = services.gift_register(
        membership=owner, actor=owner.user, data=_data(prohibited_category()), submit=True, now=NOW
    )
    assert gift.state == "rejected" and gift.state_reason.startswith("GIFT-2.2")
    v = Violation.objects.get(gift=gift)
    assert v.rule_id == "GIFT-2.2" and v.violation_type == "发布禁售商品/信息"
    assert GiftEvent.objects.filter(gift=gift, kind="auto_rejected", rule_id="GIFT-2.2").exists()


def test_gift_2_2_gift_in_a_category_since_prohibited_cannot_be_attached(owner, staff):
    # Given an approved gift whose category staff have since marked prohibited
    category = CategoryFactory(name="电子烟配件")
    gift = approved_gift(shop=owner.organization, category=category)
    category.is_prohibited = True
    services.category_save(category=category, actor=staff, changed=["is_prohibited"])
    product = ProductFactory(shop=owner.organization)

    # When the shop attaches it to a product
    with pytest.raises(GiftRuleError) as err:
        services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)

    # Then it is refused under GIFT-2.2 and nothing is attached
    assert (err.value.code, err.value.field) == ("GIFT-2.2", "gift") and "电子烟配件" in err.value.message
    assert not ProductGift.objects.exists()


def test_gift_2_3_licence_required_gift_cannot_be_approved_without_valid_licence(owner, staff):
    gift = services.gift_register(
        membership=owner, actor=owner.user, data=_data(food_category()), submit=True
    )
    with pytest.raises(GiftRuleError) as err:
        services.gift_approve(gift=gift, actor=staff, now=NOW)
    assert err.value.code == "GIFT-2.3"
    valid_licence(owner.organization, valid_until=dt.date(2024, 4, 30))  # expired the day before
    with pytest.raises(GiftRuleError):
        services.gift_approve(gift=gift, actor=staff, now=NOW)
    valid_licence(owner.organization, valid_until=dt.date(2025, 4, 30))
    assert services.gift_approve(gift=gift, actor=staff, now=NOW).state == "approved"


def test_gift_2_3_licence_of_another_type_or_shop_does_not_count(owner, staff):
    gift = services.gift_register(
        membership=owner, actor=owner.user, data=_data(food_category()), submit=True
    )
    valid_licence(owner.organization, licence_type="化妆品生产许可证")
    valid_licence(main_member().organization)
    with pytest.raises(GiftRuleError):
        services.gift_approve(gift=gift, actor=staff)


def test_gift_2_4_near_expiry_gift_needs_its_date_before_approval(owner, staff):
    # A gift submitted before drafts were checked on save, without its expiry date
    gift = GiftFactory(shop=owner.organization, near_expiry=True, expiry_date=None, state="submitted")
    with pytest.raises(GiftRuleError) as err:
        services.gift_approve(gift=gift, actor=staff)
    assert err.value.code == "GIFT-2.4" and err.value.field == "expiry_date"


@pytest.mark.parametrize(("value_fen", "allowed"), [(5_000_000, True), (5_000_001, False)])
def test_gift_2_7_lottery_value_is_at_most_50000_yuan_inclusive(owner, value_fen, allowed):
    # A draft as it may have been saved before drafts were checked on save
    gift = GiftFactory(shop=owner.organization, is_lottery=True, declared_value_fen=value_fen)
    if allowed:
        assert services.gift_submit(membership=owner, actor=owner.user, gift=gift).state == "submitted"
    else:
        with pytest.raises(GiftRuleError) as err:
            services.gift_submit(membership=owner, actor=owner.user, gift=gift)
        assert err.value.code == "GIFT-2.7"


@pytest.mark.parametrize(
    ("unit_fen", "quantity", "allowed"),
    [(2_000_000, 3, False), (2_000_000, 2, True), (2_500_000, 2, True), (2_500_001, 2, False)],
    ids=["60000-yuan", "40000-yuan", "50000-yuan-inclusive", "50000.02-yuan"],
)
def test_gift_2_7_lottery_cap_weighs_every_unit_a_winner_receives(owner, unit_fen, quantity, allowed):
    # Given a lottery prize of ``quantity`` units per winner, each under the cap on its own, in a
    # draft as it may have been saved before drafts were checked on save
    gift = GiftFactory(
        shop=owner.organization, is_lottery=True, declared_value_fen=unit_fen, quantity_per_order=quantity
    )
    if allowed:
        assert services.gift_submit(membership=owner, actor=owner.user, gift=gift).state == "submitted"
        return
    # Then the prize's value, unit times quantity, over ¥50,000 is refused under GIFT-2.7 with the figures
    with pytest.raises(GiftRuleError) as err:
        services.gift_submit(membership=owner, actor=owner.user, gift=gift)
    assert (err.value.code, err.value.field) == ("GIFT-2.7", "declared_value_fen")
    assert f"{quantity} = {format_fen(unit_fen * quantity)}" in err.value.message


@pytest.mark.parametrize(
    ("extra", "rule", "field"),
    [
        ({"is_lottery": True, "declared_value_fen": 5_000_001}, "GIFT-2.7", "declared_value_fen"),
        # ADR 0005: a winner receives the quantity per order, so three ¥20,000 units are over the cap
        (
            {"is_lottery": True, "declared_value_fen": 2_000_000, "quantity_per_order": 3},
            "GIFT-2.7",
            "declared_value_fen",
        ),
        ({"near_expiry": True, "expiry_date": None}, "GIFT-2.4", "expiry_date"),
    ],
)
@pytest.mark.parametrize("action", ["register", "update"])
def test_saving_a_draft_submit_or_approval_would_refuse_is_refused_naming_the_rule(
    owner, extra, rule, field, action
):
    # Given a draft of the shop's, or a new one
    draft = GiftFactory(shop=owner.organization, name="原草稿")
    data = _data(CategoryFactory(), name="抽奖面霜", **extra)

    # When it is saved (not submitted) over the lottery cap, or near expiry without a date
    with pytest.raises(GiftRuleError) as err:
        if action == "register":
            services.gift_register(membership=owner, actor=owner.user, data=data)
        else:
            services.gift_update(membership=owner, actor=owner.user, gift=draft, data=data)

    # Then the service refuses it naming the field and the rule, in gift_submit's words, and saves nothing
    assert (err.value.code, err.value.field) == (rule, field)
    if rule == "GIFT-2.7":
        assert err.value.message.startswith("抽奖赠品价值不得超过人民币50000元（含）：单件价值")
    else:
        assert err.value.message == "临保赠品未明示到期日期"
    draft.refresh_from_db()
    assert draft.name == "原草稿" and not Gift.objects.filter(name="抽奖面霜").exists()
    assert not GiftEvent.objects.filter(gift=draft, kind="edited").exists()


def test_gift_2_7_a_draft_at_the_cap_and_a_dated_near_expiry_draft_are_saved(owner):
    gift = services.gift_register(
        membership=owner,
        actor=owner.user,
        data=_data(
            CategoryFactory(),
            is_lottery=True,
            declared_value_fen=2_500_000,
            quantity_per_order=2,
            near_expiry=True,
            expiry_date=dt.date(2026, 12, 31),
        ),
    )
    assert gift.state == "draft" and Gift.objects.filter(pk=gift.pk).exists()


def test_gift_2_7_lottery_gift_revalued_over_the_cap_counting_its_quantity_is_removed(staff):
    gift = approved_gift(
        is_lottery=True,
        ship_from="domestic",
        value_basis="merchant_declared",
        declared_value_fen=100_000,
        quantity_per_order=2,
    )
    services.gift_fair_value_set(
        gift=gift, amount_fen=3_000_000, reason="单件市场价 3 万", actor=staff, overrides_declared=True
    )
    gift.refresh_from_db()
    removed = GiftEvent.objects.get(gift=gift, kind="removed", rule_id="GIFT-2.7")
    assert gift.state == "removed" and "= ¥60,000.00" in removed.details["reason"]


def test_gift_2_7_lottery_gift_revalued_over_the_cap_is_removed(staff):
    gift = approved_gift(
        is_lottery=True, ship_from="domestic", value_basis="merchant_declared", declared_value_fen=100_000
    )
    services.gift_fair_value_set(
        gift=gift, amount_fen=6_000_000, reason="市场价 6 万", actor=staff, overrides_declared=True
    )
    gift.refresh_from_db()
    assert (
        gift.state == "removed"
        and GiftEvent.objects.filter(gift=gift, kind="removed", rule_id="GIFT-2.7").exists()
    )


def test_gift_4_3_domestic_gift_needs_its_own_approval_before_attaching(owner, staff):
    gift = services.gift_register(
        membership=owner, actor=owner.user, data=_data(CategoryFactory(), ship_from="domestic"), submit=True
    )
    assert gift.value_basis == "merchant_declared"
    services.gift_approve(gift=gift, actor=staff)
    product = services.product_create(membership=owner, actor=owner.user, data={"title": "进口精华液"})
    with pytest.raises(GiftRuleError) as err:
        services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
    assert err.value.code == "GIFT-4.3"
    services.gift_domestic_shipping_approve(gift=gift, actor=staff)
    services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
    assert AuditEntry.objects.filter(action="gifts.gift_domestic_shipping_approve").exists()


def test_gift_4_3_domestic_approval_refused_for_cross_border_gift(staff):
    with pytest.raises(GiftRuleError) as err:
        services.gift_domestic_shipping_approve(gift=approved_gift(), actor=staff)
    assert err.value.code == "GIFT-4.3"


def test_gift_1_2_cross_border_value_is_the_customs_declared_value(owner):
    gift = services.gift_register(
        membership=owner, actor=owner.user, data=_data(CategoryFactory(), ship_from="overseas")
    )
    assert gift.value_basis == "customs_declared"
    assert gift_value_resolve(gift).as_dict() == {
        "amount_fen": 8800,
        "basis": "customs_declared",
        "rule": "GIFT-1.2",
    }


def test_gift_1_2_domestic_value_is_the_merchant_declared_value(owner):
    gift = services.gift_register(
        membership=owner, actor=owner.user, data=_data(CategoryFactory(), ship_from="domestic")
    )
    assert gift_value_resolve(gift).basis == "merchant_declared"


def test_gift_1_2_undeclared_value_uses_the_fair_value_staff_set(staff):
    gift = GiftFactory(declared_value_fen=None, value_basis="")
    assert gift_value_resolve(gift).amount_fen is None
    services.gift_fair_value_set(gift=gift, amount_fen=5_000, reason="同款市场价", actor=staff)
    gift.refresh_from_db()
    assert gift_value_resolve(gift).as_dict()["basis"] == "fair_value" and gift.fair_value_set_by == staff
    assert AuditEntry.objects.filter(action="gifts.gift_fair_value_set", actor=staff).exists()


def test_gift_1_2_staff_override_a_merchant_value_clearly_off_the_market(staff):
    gift = GiftFactory(ship_from="domestic", value_basis="merchant_declared", declared_value_fen=99_900)
    services.gift_fair_value_set(gift=gift, amount_fen=3_000, reason="声明价值明显高于市场价", actor=staff)
    gift.refresh_from_db()
    assert gift_value_resolve(gift).amount_fen == 99_900  # a fair value alone does not override
    services.gift_fair_value_set(
        gift=gift, amount_fen=3_000, reason="声明价值明显高于市场价", actor=staff, overrides_declared=True
    )
    gift.refresh_from_db()
    assert gift_value_resolve(gift).as_dict() == {
        "amount_fen": 3_000,
        "basis": "fair_value",
        "rule": "GIFT-1.2",
    }


def test_gift_1_2_customs_value_is_never_overridden(staff):
    gift = GiftFactory()
    with pytest.raises(GiftRuleError) as err:
        services.gift_fair_value_set(
            gift=gift, amount_fen=1, reason="x", actor=staff, overrides_declared=True
        )
    assert err.value.code == "GIFT-1.2"


def test_gift_1_2_declared_value_needs_ship_from(owner):
    with pytest.raises(GiftRuleError) as err:
        services.gift_register(
            membership=owner, actor=owner.user, data=_data(CategoryFactory(), ship_from="")
        )
    assert err.value.code == "GIFT-1.2"


def test_gift_withdraw_and_remove(owner, staff):
    gift = services.gift_register(membership=owner, actor=owner.user, data=_data(CategoryFactory()))
    services.gift_withdraw(membership=owner, actor=owner.user, gift=gift)
    gift.refresh_from_db()
    assert gift.state == "removed"
    with pytest.raises(TransitionError):
        services.gift_remove(gift=gift, actor=staff, reason="again")


@pytest.mark.parametrize("how", ["staff_removes", "merchant_withdraws"])
def test_gift_2_6_a_removed_gift_leaves_the_listings_that_promised_it(owner, staff, how):
    gift = approved_gift(shop=owner.organization)
    products = [ProductFactory(shop=owner.organization) for _ in range(2)]
    for product in products:
        services.product_gift_attach(membership=owner, actor=owner.user, product=product, gift=gift)
    services.product_publish(membership=owner, actor=owner.user, product=products[0])
    if how == "staff_removes":
        services.gift_remove(gift=gift, actor=staff, reason="抽检不合格", rule_id="GIFT-3")
    else:
        services.gift_withdraw(membership=owner, actor=owner.user, gift=gift)
    assert not ProductGift.objects.filter(gift=gift).exists()
    detached = GiftEvent.objects.filter(kind="gift_detached", gift=gift)
    assert sorted(detached.values_list("product_id", flat=True)) == sorted(p.pk for p in products)


def test_gift_2_1_trigger_backs_the_service_when_gift_leaves_approved_under_a_race(owner, staff):
    """The service checks under a lock; the trigger refuses a row written around it."""
    gift = approved_gift(shop=owner.organization)
    product = ProductFactory(shop=owner.organization)
    Gift.objects.filter(pk=gift.pk).update(state="suspended")
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductGift.objects.create(product=product, gift=gift, attached_by=owner.user)


def test_gift_1_1_a_lottery_prize_is_a_gift_under_the_same_rules(owner, staff):
    gift = services.gift_register(
        membership=owner, actor=owner.user, data=_data(food_category(), is_lottery=True), submit=True
    )
    with pytest.raises(GiftRuleError) as err:  # a prize needs the licence like any gift (GIFT-2.3)
        services.gift_approve(gift=gift, actor=staff)
    assert err.value.code == "GIFT-2.3" and gift.is_lottery
