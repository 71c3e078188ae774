# ruff: noqa: RUF001
"""Cross-border gifts (【全球购】赠品管理规范, GIFT-1.1..GIFT-6.2).

Design overview
- ``GiftCategory`` is staff-managed: prohibited categories (GIFT-2.2) and categories whose goods
  need a licence of a named type (GIFT-2.3, e.g. 食品经营许可证).
- ``Gift`` is a shop's registration (报备, GIFT-2.1) with a state machine
  draft → submitted → approved / rejected / revisions_requested → removed, plus suspended while
  a licence it depends on has lapsed or was revoked. Every state change is one service that
  writes a ``GiftEvent`` row in the same transaction; events are append-only (trigger).
- A gift's value for any rule is resolved in one place, ``gifts.value`` (GIFT-1.2): the declared
  value's basis follows its ship-from (a database check), staff may set a fair market value.
- ``Product`` listings carry gifts through ``ProductGift``; a trigger refuses attaching a gift
  that is not approved or belongs to another shop (GIFT-2.1), whatever writes the row. A gift that
  may no longer be given (removed, suspended, its category prohibited) leaves every product.
- ``Qualification`` is an uploaded licence document (stored outside the web root, served only
  through a view that checks the owner or staff); ``DocumentRequest`` is a staff demand for
  documents with a deadline (GIFT-3).
- ``Order`` mirrors the order system's order (paid amount, promised ship time, signed-for time)
  with the product's own dispute state, which gift code never writes (GIFT-5.1).
  ``GiftShipment`` is one gift due on one order (GIFT-4.2); ``SpotCheck`` a quality check (GIFT-3).
- ``Violation`` is the one record type for every rule breach, tied to the ``RuleVersion`` in
  force when the conduct happened (GIFT-6.2); versions may not overlap (exclusion constraint).
  Violations are append-only; a unique ``source_key`` makes jobs that record them idempotent.
  A violation found not to stand (GIFT-4.2: a gift judged "not shipped" whose shipment, recorded
  later, left in time) gets a ``ViolationAnnulment`` row, append-only too, and then counts for nothing.
- ``GiftDispute`` is opened by the order system through the API (GIFT-5); the merchant answers
  with ``DisputeEvidence`` files before a deadline; staff decide with a compensation computed by
  the pure calculator in ``gifts.compensation``.
"""

import pgtrigger
from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateRangeField, RangeBoundary, RangeOperators
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import Func, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal import clock
from portal.models import Organization

# GIFT-2.7: a lottery gift is worth at most ¥50,000, inclusive.
LOTTERY_VALUE_CAP_FEN = 5_000_000


class DateRange(Func):
    function = "DATERANGE"
    output_field = DateRangeField()


class RuleVersion(models.Model):
    """A version of the gift rules with its effective dates (GIFT-6.2), half-open [from, to)."""

    code = models.CharField(_("规则"), max_length=40, default="GIFT")
    version = models.CharField(_("版本"), max_length=40)
    title = models.CharField(_("标题"), max_length=200)
    effective_from = models.DateField(_("生效日期"))
    effective_to = models.DateField(_("失效日期"), null=True, blank=True)

    class Meta:
        verbose_name = _("规则版本")
        verbose_name_plural = pgettext_lazy("plural", "规则版本")
        ordering = ["code", "effective_from"]
        constraints = [
            models.UniqueConstraint(name="gifts_ruleversion_unique_version", fields=["code", "version"]),
            models.CheckConstraint(
                name="gifts_ruleversion_dates_ordered",
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=models.F("effective_from")),
            ),
            # GIFT-6.2: at any date at most one version of a rule set is in force.
            ExclusionConstraint(
                name="gifts_ruleversion_no_overlap",
                expressions=[
                    (DateRange("effective_from", "effective_to", RangeBoundary()), RangeOperators.OVERLAPS),
                    ("code", RangeOperators.EQUAL),
                ],
            ),
        ]

    def __str__(self):
        return f"{self.code} {self.version} ({self.effective_from}–{self.effective_to or '…'})"


class GiftCategory(models.Model):
    name = models.CharField(_("名称"), max_length=100, unique=True)
    is_prohibited = models.BooleanField(_("禁售"), default=False, help_text="GIFT-2.2")
    licence_required = models.BooleanField(_("需要资质"), default=False, help_text="GIFT-2.3")
    licence_type = models.CharField(_("资质类型"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("赠品类目")
        verbose_name_plural = pgettext_lazy("plural", "赠品类目")
        ordering = ["name"]
        constraints = [
            # GIFT-2.3: a licence-required category names the licence it needs.
            models.CheckConstraint(
                name="gifts_category_licence_type_named",
                condition=Q(licence_required=False) | ~Q(licence_type=""),
            ),
        ]

    def __str__(self):
        return self.name


class Gift(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("草稿")
        SUBMITTED = "submitted", _("待审核")
        APPROVED = "approved", _("已通过")
        REJECTED = "rejected", _("已驳回")
        REVISIONS_REQUESTED = "revisions_requested", _("待修改")
        SUSPENDED = "suspended", _("已暂停")
        REMOVED = "removed", _("已删除")

    class ShipFrom(models.TextChoices):
        OVERSEAS = "overseas", _("境外发货")
        BONDED = "bonded", _("保税区发货")
        DOMESTIC = "domestic", _("国内发货")

    class ValueBasis(models.TextChoices):
        NONE = "", _("未申报")
        CUSTOMS_DECLARED = "customs_declared", _("海关申报价值")
        MERCHANT_DECLARED = "merchant_declared", _("商家声明价值")

    CROSS_BORDER = ("overseas", "bonded")

    shop = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="gifts", verbose_name=_("店铺")
    )
    name = models.CharField(_("赠品名称"), max_length=200)
    brand = models.CharField(_("品牌"), max_length=100, help_text=_("多个名称用 / 分隔，如 兰蔻/Lancome"))
    category = models.ForeignKey(
        GiftCategory, on_delete=models.PROTECT, related_name="gifts", verbose_name=_("类目")
    )
    kind = models.CharField(_("品种"), max_length=100, blank=True)
    spec = models.CharField(_("规格"), max_length=100, blank=True)
    quantity_per_order = models.PositiveIntegerField(_("每单数量"), null=True, blank=True)
    ship_from = models.CharField(_("发货地"), max_length=20, choices=ShipFrom.choices, blank=True)
    # GIFT-1.2/2.4: the value of one unit; what an order is promised is this times the quantity.
    declared_value_fen = models.BigIntegerField(
        _("申报价值（分）"), null=True, blank=True, help_text=_("单件赠品的价值")
    )
    value_basis = models.CharField(_("价值依据"), max_length=20, choices=ValueBasis.choices, blank=True)
    # GIFT-1.2: staff set a fair market value when the value is undeclared or clearly off.
    fair_value_fen = models.BigIntegerField(_("市场公允价值（分）"), null=True, blank=True)
    fair_value_overrides_declared = models.BooleanField(_("公允价值取代声明价值"), default=False)
    fair_value_reason = models.TextField(_("公允价值依据"), blank=True)
    fair_value_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("公允价值核定人"),
    )
    fair_value_set_at = models.DateTimeField(_("公允价值核定时间"), null=True, blank=True)
    near_expiry = models.BooleanField(_("临保商品"), default=False)
    expiry_date = models.DateField(_("到期日期"), null=True, blank=True)
    is_lottery = models.BooleanField(_("抽奖赠品"), default=False)
    state = models.CharField(_("状态"), max_length=30, choices=State.choices, default=State.DRAFT)
    state_reason = models.TextField(_("状态说明"), blank=True)
    domestic_shipping_approved = models.BooleanField(_("国内发货已批准"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("创建人")
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    submitted_at = models.DateTimeField(_("提交时间"), null=True, blank=True, db_index=True)
    decided_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    # GIFT-2.1: the registration form's one-time token or the API's Idempotency-Key. A double
    # submit or a client's retry registers one gift: the unique key is the backstop for the race.
    request_key = models.CharField(_("登记请求键"), max_length=100, null=True, blank=True, editable=False)

    class Meta:
        verbose_name = pgettext_lazy("singular", "赠品")
        verbose_name_plural = _("赠品")
        ordering = ["-id"]
        indexes = [models.Index(name="gifts_gift_shop_state", fields=["shop", "state"])]
        constraints = [
            models.UniqueConstraint(
                name="gifts_gift_one_per_request_key",
                fields=["shop", "request_key"],
                condition=models.Q(request_key__isnull=False),
            ),
            models.CheckConstraint(
                name="gifts_gift_state_valid",
                condition=Q(
                    state__in=[
                        "draft",
                        "submitted",
                        "approved",
                        "rejected",
                        "revisions_requested",
                        "suspended",
                        "removed",
                    ]
                ),
            ),
            models.CheckConstraint(
                name="gifts_gift_ship_from_valid",
                condition=Q(ship_from__in=["", "overseas", "bonded", "domestic"]),
            ),
            models.CheckConstraint(
                name="gifts_gift_values_non_negative",
                condition=(Q(declared_value_fen__isnull=True) | Q(declared_value_fen__gte=0))
                & (Q(fair_value_fen__isnull=True) | Q(fair_value_fen__gte=0)),
            ),
            # GIFT-1.2: cross-border → customs-declared value; domestic → merchant-declared value.
            models.CheckConstraint(
                name="gifts_gift_value_basis_follows_ship_from",
                condition=(Q(declared_value_fen__isnull=True) & Q(value_basis=""))
                | (
                    Q(declared_value_fen__isnull=False)
                    & Q(ship_from__in=["overseas", "bonded"])
                    & Q(value_basis="customs_declared")
                )
                | (
                    Q(declared_value_fen__isnull=False)
                    & Q(ship_from="domestic")
                    & Q(value_basis="merchant_declared")
                ),
            ),
            # GIFT-1.2: a fair value says who set it, when and why.
            models.CheckConstraint(
                name="gifts_gift_fair_value_audited",
                condition=Q(fair_value_fen__isnull=True, fair_value_overrides_declared=False)
                | (
                    Q(fair_value_fen__isnull=False)
                    & Q(fair_value_set_by__isnull=False)
                    & Q(fair_value_set_at__isnull=False)
                    & ~Q(fair_value_reason="")
                ),
            ),
            # GIFT-2.4: an approved near-expiry gift shows its expiry date.
            models.CheckConstraint(
                name="gifts_gift_approved_near_expiry_dated",
                condition=~Q(state="approved") | Q(near_expiry=False) | Q(expiry_date__isnull=False),
            ),
            models.CheckConstraint(
                name="gifts_gift_quantity_positive",
                condition=Q(quantity_per_order__isnull=True) | Q(quantity_per_order__gte=1),
            ),
            # GIFT-4.3: only a domestic gift can carry a domestic-shipping approval.
            models.CheckConstraint(
                name="gifts_gift_domestic_approval_only_domestic",
                condition=Q(domestic_shipping_approved=False) | Q(ship_from="domestic"),
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.brand})"

    @property
    def is_cross_border(self) -> bool:
        return self.ship_from in self.CROSS_BORDER


class Product(models.Model):
    """A shop's product listing (交易商品) with the main-image facts the rules look at."""

    class State(models.TextChoices):
        DRAFT = "draft", _("草稿")
        LISTED = "listed", _("已上架")
        TAKEN_DOWN = "taken_down", _("已下架")

    shop = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="gift_products", verbose_name=_("店铺")
    )
    title = models.CharField(_("商品标题"), max_length=200)
    subtitle = models.CharField(_("副标题"), max_length=200, blank=True)
    main_image_shows_gift_alone = models.BooleanField(_("主图单独展示赠品"), default=False)
    gift_more_prominent = models.BooleanField(_("主图中赠品比商品更显著"), default=False)
    promised_ship_hours = models.PositiveIntegerField(_("承诺发货时长（小时）"), default=48)
    state = models.CharField(_("状态"), max_length=20, choices=State.choices, default=State.DRAFT)
    gifts = models.ManyToManyField(Gift, through="ProductGift", related_name="products")
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    # The create form's one-time token: a double submit or the browser re-sending the POST creates
    # one product; the unique key is the backstop for two submits at once.
    request_key = models.CharField(_("创建请求键"), max_length=100, null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("商品")
        verbose_name_plural = pgettext_lazy("plural", "商品")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                name="gifts_product_one_per_request_key",
                fields=["shop", "request_key"],
                condition=models.Q(request_key__isnull=False),
            ),
            models.CheckConstraint(
                name="gifts_product_state_valid", condition=Q(state__in=["draft", "listed", "taken_down"])
            ),
            models.CheckConstraint(
                name="gifts_product_ship_hours_positive", condition=Q(promised_ship_hours__gte=1)
            ),
        ]

    def __str__(self):
        return self.title


@pgtrigger.register(
    # GIFT-2.1: only an approved gift of the same shop can be attached, whatever writes the row
    # (service, admin, shell). SQLSTATE 23514 surfaces in Django as IntegrityError.
    pgtrigger.Trigger(
        name="gifts_productgift_only_approved",
        when=pgtrigger.Before,
        operation=pgtrigger.Insert | pgtrigger.Update,
        func="""
        IF NOT EXISTS (
            SELECT 1 FROM gifts_gift g JOIN gifts_product p ON p.id = NEW.product_id
            WHERE g.id = NEW.gift_id AND g.state = 'approved' AND g.shop_id = p.shop_id
        ) THEN
            RAISE EXCEPTION 'GIFT-2.1: gift % is not an approved gift of the product''s shop', NEW.gift_id
                USING ERRCODE = '23514';
        END IF;
        RETURN NEW;
        """,
    ),
)
class ProductGift(models.Model):
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="gift_links", verbose_name=_("商品")
    )
    gift = models.ForeignKey(
        Gift,
        on_delete=models.PROTECT,
        related_name="product_links",
        verbose_name=pgettext_lazy("singular", "赠品"),
    )
    attached_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("操作人")
    )
    attached_at = models.DateTimeField(_("附赠时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("商品赠品")
        verbose_name_plural = pgettext_lazy("plural", "商品赠品")
        constraints = [models.UniqueConstraint(name="gifts_productgift_once", fields=["product", "gift"])]

    def __str__(self):
        return f"{self.product} + {self.gift}"


class Qualification(models.Model):
    """A licence document the shop uploaded (GIFT-2.3), reviewed by staff."""

    class State(models.TextChoices):
        PENDING = "pending", _("待审核")
        APPROVED = "approved", _("已通过")
        REJECTED = "rejected", _("已驳回")
        # GIFT-2.3: an approved licence later revoked by its issuing authority or found invalid.
        REVOKED = "revoked", _("已吊销")

    shop = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="gift_qualifications", verbose_name=_("店铺")
    )
    licence_type = models.CharField(_("资质类型"), max_length=100)
    storage_name = models.CharField(_("存储文件名"), max_length=300, unique=True)
    original_name = models.CharField(_("文件名"), max_length=255)
    content_type = models.CharField(_("文件类型"), max_length=100)
    size_bytes = models.PositiveIntegerField(_("文件大小（字节）"))
    sha256 = models.CharField("SHA-256", max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("上传人")
    )
    uploaded_at = models.DateTimeField(_("上传时间"), auto_now_add=True, db_index=True)
    state = models.CharField(_("状态"), max_length=20, choices=State.choices, default=State.PENDING)
    licence_number = models.CharField(_("许可证编号"), max_length=100, blank=True)
    valid_until = models.DateField(_("有效期至"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("审核人"),
    )
    reviewed_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    reject_reason = models.TextField(_("驳回原因"), blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("吊销操作人"),
    )
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)
    revoke_reason = models.TextField(_("吊销原因"), blank=True)
    # GIFT-2.3: the upload form's one-time token: a double submit stores one licence (and one
    # file); the unique key is the backstop for two submits at once.
    request_key = models.CharField(_("上传请求键"), max_length=100, null=True, blank=True, editable=False)

    class Meta:
        verbose_name = pgettext_lazy("singular", "资质文件")
        verbose_name_plural = _("资质文件")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                name="gifts_qualification_one_per_request_key",
                fields=["shop", "request_key"],
                condition=models.Q(request_key__isnull=False),
            ),
            models.CheckConstraint(
                name="gifts_qualification_state_valid",
                condition=Q(state__in=["pending", "approved", "rejected", "revoked"]),
            ),
            # GIFT-2.3: a revocation says when and why (who, when staff did it).
            models.CheckConstraint(
                name="gifts_qualification_revoked_has_reason",
                condition=~Q(state="revoked") | (Q(revoked_at__isnull=False) & ~Q(revoke_reason="")),
            ),
            # An approved licence has its number and expiry; a rejection has its reason.
            models.CheckConstraint(
                name="gifts_qualification_approved_has_licence",
                condition=~Q(state="approved") | (~Q(licence_number="") & Q(valid_until__isnull=False)),
            ),
            models.CheckConstraint(
                name="gifts_qualification_rejected_has_reason",
                condition=~Q(state="rejected") | ~Q(reject_reason=""),
            ),
            models.CheckConstraint(
                name="gifts_qualification_content_type_allowed",
                condition=Q(content_type__in=["application/pdf", "image/jpeg", "image/png"]),
            ),
        ]

    def __str__(self):
        return f"{self.licence_type} · {self.shop} · {self.get_state_display()}"


class DocumentRequest(models.Model):
    """GIFT-3: staff demand qualification documents; none by the deadline → the gift is removed."""

    class State(models.TextChoices):
        OPEN = "open", _("待提供")
        FULFILLED = "fulfilled", _("已提供")
        EXPIRED = "expired", _("已超时")

    gift = models.ForeignKey(
        Gift,
        on_delete=models.PROTECT,
        related_name="document_requests",
        verbose_name=pgettext_lazy("singular", "赠品"),
    )
    reason = models.TextField(_("原因"))
    deadline_at = models.DateTimeField(_("截止时间"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("索取人")
    )
    requested_at = models.DateTimeField(_("索取时间"), auto_now_add=True)
    state = models.CharField(_("状态"), max_length=20, choices=State.choices, default=State.OPEN)
    fulfilled_by = models.ForeignKey(
        Qualification,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("提供的资质"),
    )
    closed_at = models.DateTimeField(_("关闭时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("资质索取")
        verbose_name_plural = pgettext_lazy("plural", "资质索取")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                name="gifts_documentrequest_one_open_per_gift", fields=["gift"], condition=Q(state="open")
            ),
            models.CheckConstraint(
                name="gifts_documentrequest_fulfilled_has_document",
                condition=~Q(state="fulfilled") | Q(fulfilled_by__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.gift} · {self.get_state_display()}"


class Order(models.Model):
    """The order system's order, as far as gift rules need it.

    ``product_dispute_state`` belongs to the product's own dispute process; gift disputes never
    write it (GIFT-5.1).
    """

    class ProductDisputeState(models.TextChoices):
        NONE = "none", _("无")
        OPEN = "open", _("处理中")
        CLOSED = "closed", _("已结束")

    # Unique per shop, not platform-wide: another shop's key sending this number first must not
    # stop this shop's order system from recording its own order (nor its consumers' disputes).
    order_no = models.CharField(_("订单号"), max_length=64)
    shop = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="gift_orders", verbose_name=_("店铺")
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="orders", verbose_name=_("商品")
    )
    paid_amount_fen = models.BigIntegerField(_("实付金额（分）"))
    paid_at = models.DateTimeField(_("付款时间"))
    ship_by_at = models.DateTimeField(_("承诺发货时间"))
    signed_for_at = models.DateTimeField(_("签收时间"), null=True, blank=True)
    product_dispute_state = models.CharField(
        _("商品争议状态"),
        max_length=20,
        choices=ProductDisputeState.choices,
        default=ProductDisputeState.NONE,
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("订单")
        verbose_name_plural = pgettext_lazy("plural", "订单")
        ordering = ["-id"]
        # Staff look an order up by its number alone (the unique key leads with the shop).
        indexes = [models.Index(name="gifts_order_no", fields=["order_no"])]
        constraints = [
            models.UniqueConstraint(name="gifts_order_no_unique_per_shop", fields=["shop", "order_no"]),
            models.CheckConstraint(name="gifts_order_paid_non_negative", condition=Q(paid_amount_fen__gte=0)),
            models.CheckConstraint(
                name="gifts_order_ship_by_after_paid", condition=Q(ship_by_at__gte=models.F("paid_at"))
            ),
        ]

    def __str__(self):
        return self.order_no


class GiftShipment(models.Model):
    """One gift due on one order (GIFT-2.6, GIFT-4.2)."""

    class LateCause(models.TextChoices):
        NONE = "", _("无")
        CUSTOMS_UNREGISTERED = "customs_unregistered", _("未向海关报备导致清关异常")

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="gift_shipments", verbose_name=_("订单")
    )
    gift = models.ForeignKey(
        Gift,
        on_delete=models.PROTECT,
        related_name="shipments",
        verbose_name=pgettext_lazy("singular", "赠品"),
    )
    quantity = models.PositiveIntegerField(_("数量"), default=1)
    # GIFT-4.2: the product's promised time unless merchant and consumer agreed otherwise.
    agreed_ship_by_at = models.DateTimeField(_("约定发货时间"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("发货时间"), null=True, blank=True)
    tracking_no = models.CharField(_("运单号"), max_length=64, blank=True)
    late_cause = models.CharField(_("延迟原因"), max_length=30, choices=LateCause.choices, blank=True)
    fake_shipping = models.BooleanField(_("虚假发货"), default=False)
    judged_at = models.DateTimeField(_("判定时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("赠品发货")
        verbose_name_plural = pgettext_lazy("plural", "赠品发货")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(name="gifts_giftshipment_once_per_order", fields=["order", "gift"]),
            models.CheckConstraint(name="gifts_giftshipment_quantity_positive", condition=Q(quantity__gte=1)),
            models.CheckConstraint(
                name="gifts_giftshipment_tracking_when_shipped",
                condition=Q(shipped_at__isnull=True) | ~Q(tracking_no=""),
            ),
        ]
        indexes = [
            models.Index(
                name="gifts_shipment_unshipped",
                fields=["order"],
                condition=Q(shipped_at__isnull=True, judged_at__isnull=True),
            ),
            # Staff look a shipment up by its tracking number.
            models.Index(
                name="gifts_shipment_tracking", fields=["tracking_no"], condition=~Q(tracking_no="")
            ),
        ]

    def __str__(self):
        return f"{self.order} · {self.gift}"

    @property
    def due_by_at(self):
        return self.agreed_ship_by_at or self.order.ship_by_at


class Violation(models.Model):
    """Every rule breach, under the rule version in force when the conduct happened (GIFT-6.2)."""

    shop = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="gift_violations", verbose_name=_("店铺")
    )
    rule_id = models.CharField(_("规则"), max_length=20)
    rule_version = models.ForeignKey(
        RuleVersion, on_delete=models.PROTECT, related_name="violations", verbose_name=_("规则版本")
    )
    violation_type = models.CharField(_("违规类型"), max_length=60)
    gift = models.ForeignKey(
        Gift,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="violations",
        verbose_name=pgettext_lazy("singular", "赠品"),
    )
    product = models.ForeignKey(
        Product,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="violations",
        verbose_name=_("商品"),
    )
    evidence = models.JSONField(_("证据"), default=dict, blank=True)
    penalty_note = models.TextField(_("处理说明"), blank=True)
    # GIFT-4.2: weighed by the gift's value (resolved per GIFT-1.2 at the time of recording).
    gift_value_fen = models.BigIntegerField(_("赠品价值（分）"), null=True, blank=True)
    weight = models.PositiveSmallIntegerField(_("权重"), default=1)
    occurred_at = models.DateTimeField(_("违规时间"))
    recorded_at = models.DateTimeField(_("记录时间"), auto_now_add=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("记录人"),
    )
    source_key = models.CharField(_("来源键"), max_length=120, unique=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "违规记录")
        verbose_name_plural = _("违规记录")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(name="gifts_violation_time", fields=["-occurred_at", "-id"])]
        constraints = [
            models.CheckConstraint(
                name="gifts_violation_has_subject", condition=Q(gift__isnull=False) | Q(product__isnull=False)
            ),
            models.CheckConstraint(
                name="gifts_violation_weight_range", condition=Q(weight__gte=1, weight__lte=3)
            ),
        ]

    def __str__(self):
        return f"{self.rule_id} {self.violation_type} · {self.shop}"

    @property
    def is_annulled(self) -> bool:
        """An annulled violation counts for nothing (see ``ViolationAnnulment``)."""
        try:
            return self.annulment is not None
        except ObjectDoesNotExist:
            return False

    @property
    def counted_weight(self) -> int:
        """The weight this violation counts with: none once annulled."""
        return 0 if self.is_annulled else self.weight


class ViolationAnnulment(models.Model):
    """A violation found not to stand, with when, why and by what it was annulled.

    The violation row is evidence and never changes; the annulment is a second append-only row,
    at most one per violation. An annulled violation counts for nothing: it is shown as annulled
    and its weight is left out wherever a shop's violations are weighed.
    """

    class Cause(models.TextChoices):
        # GIFT-4.2: the overdue job judged the gift "not shipped" after its due time; the shipment
        # recorded afterwards left on time (recorded late, not shipped late).
        SHIPPED_IN_TIME = "shipped_in_time", _("实际按时发货（发货登记晚于超时判定）")

    violation = models.OneToOneField(
        Violation,
        on_delete=models.PROTECT,
        related_name="annulment",
        verbose_name=pgettext_lazy("singular", "违规记录"),
    )
    cause = models.CharField(_("撤销原因"), max_length=30, choices=Cause.choices)
    reason = models.TextField(_("撤销说明"))
    shipment = models.ForeignKey(
        GiftShipment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="annulments",
        verbose_name=_("赠品发货"),
    )
    details = models.JSONField(_("详情"), default=dict, blank=True)
    annulled_at = models.DateTimeField(_("撤销时间"))
    annulled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("操作人"),
    )

    class Meta:
        verbose_name = _("违规撤销")
        verbose_name_plural = pgettext_lazy("plural", "违规撤销")
        ordering = ["-annulled_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="gifts_violationannulment_cause_valid", condition=Q(cause__in=["shipped_in_time"])
            ),
            models.CheckConstraint(name="gifts_violationannulment_has_reason", condition=~Q(reason="")),
            # GIFT-4.2: an annulment for a shipment made in time names that shipment.
            models.CheckConstraint(
                name="gifts_violationannulment_shipped_in_time_names_shipment",
                condition=~Q(cause="shipped_in_time") | Q(shipment__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.violation} · {self.get_cause_display()}"


class SpotCheck(models.Model):
    """GIFT-3 quality spot check (抽检) recorded by staff."""

    class Outcome(models.TextChoices):
        QUALIFIED = "qualified", _("合格")
        UNQUALIFIED_MAKER = "unqualified_maker", _("生产商不具备生产资质")
        SUBSTANDARD = "substandard", _("质量不合格/不符合强制性标准")
        NOT_AS_DESCRIBED = "not_as_described", _("实物与描述不符")
        MISSING_INFO = "missing_info", _("未说明必须说明的信息")

    gift = models.ForeignKey(
        Gift,
        on_delete=models.PROTECT,
        related_name="spot_checks",
        verbose_name=pgettext_lazy("singular", "赠品"),
    )
    outcome = models.CharField(_("结果"), max_length=30, choices=Outcome.choices)
    notes = models.TextField(_("说明"), blank=True)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("抽检人")
    )
    checked_at = models.DateTimeField(_("抽检时间"))
    violation = models.OneToOneField(
        Violation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="spot_check",
        verbose_name=pgettext_lazy("singular", "违规记录"),
    )

    class Meta:
        verbose_name = _("抽检")
        verbose_name_plural = pgettext_lazy("plural", "抽检")
        ordering = ["-checked_at"]
        constraints = [
            models.CheckConstraint(
                name="gifts_spotcheck_outcome_valid",
                condition=Q(
                    outcome__in=[
                        "qualified",
                        "unqualified_maker",
                        "substandard",
                        "not_as_described",
                        "missing_info",
                    ]
                ),
            ),
            models.CheckConstraint(
                name="gifts_spotcheck_qualified_no_violation",
                condition=~Q(outcome="qualified") | Q(violation__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.gift} · {self.get_outcome_display()}"


class GiftDispute(models.Model):
    class Kind(models.TextChoices):
        NOT_DELIVERED = "not_delivered", _("未提供赠品")
        NOT_AS_DESCRIBED = "not_as_described", _("赠品与约定不符")
        LACKS_LICENCE = "lacks_licence", _("商家不具备赠品经营资质")
        RETURN_GIFT_LOST = "return_gift_lost", _("退货时赠品无法退回/损毁（消费者原因）")
        RETURN_MERCHANT_FAULT = "return_merchant_fault", _("因商家原因退货")
        GIFT_NOT_RETURNABLE = "gift_not_returnable", _("赠品依其性质无法退货")

    class State(models.TextChoices):
        AWAITING_MERCHANT = "awaiting_merchant", _("待商家举证")
        MERCHANT_RESPONDED = "merchant_responded", _("商家已举证")
        DECIDED = "decided", _("已裁决")
        SETTLE_BETWEEN_PARTIES = "settle_between_parties", _("协商处理")

    class Decision(models.TextChoices):
        NONE = "", _("未裁决")
        UPHELD = "upheld", _("支持消费者")
        DISMISSED = "dismissed", _("驳回消费者")

    # GIFT-5.5: these are left to merchant and consumer (协商处理).
    SETTLE_KINDS = ("return_merchant_fault", "gift_not_returnable")
    # GIFT-5.2/5.3: upheld, these pay the consumer the gift's value — once per order and gift.
    COMPENSATING_KINDS = ("not_delivered", "not_as_described", "lacks_licence")
    # GIFT-5.4: a return, on which units may come back intact.
    RETURN_KINDS = ("return_gift_lost", "return_merchant_fault")

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="gift_disputes", verbose_name=_("订单")
    )
    gift = models.ForeignKey(
        Gift,
        on_delete=models.PROTECT,
        related_name="disputes",
        verbose_name=pgettext_lazy("singular", "赠品"),
    )
    shop = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="gift_disputes", verbose_name=_("店铺")
    )
    kind = models.CharField(_("争议类型"), max_length=30, choices=Kind.choices)
    consumer_claim = models.TextField(_("消费者诉求"), blank=True)
    state = models.CharField(_("状态"), max_length=30, choices=State.choices)
    opened_at = models.DateTimeField(_("发起时间"), db_index=True)
    response_deadline_at = models.DateTimeField(_("举证截止时间"))
    merchant_response = models.TextField(_("商家说明"), blank=True)
    responded_at = models.DateTimeField(_("举证时间"), null=True, blank=True)
    decision = models.CharField(_("裁决"), max_length=20, choices=Decision.choices, blank=True)
    decision_note = models.TextField(_("裁决说明"), blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("裁决人"),
    )
    decided_at = models.DateTimeField(_("裁决时间"), null=True, blank=True)
    compensation_fen = models.BigIntegerField(_("赔付金额（分）"), null=True, blank=True)
    refund_deduction_fen = models.BigIntegerField(_("退款扣除（分）"), null=True, blank=True)
    return_shipping_payer = models.CharField(_("退货运费承担方"), max_length=20, blank=True)
    # GIFT-5.4: on a return, the units due on the order (as the calculation counted them) and how
    # many of them came back intact; only the others' value may be deducted. Not stated (null, as
    # on every dispute recorded before these columns): none intact, the whole gift's value.
    units_promised = models.PositiveIntegerField(_("订单应有赠品数量"), null=True, blank=True)
    units_returned_intact = models.PositiveIntegerField(
        _("完好退回赠品数量"), null=True, blank=True, help_text=_("未填写：视为均未完好退回（GIFT-5.4）")
    )
    calculation = models.JSONField(_("计算依据"), default=dict, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("发起人"),
    )

    class Meta:
        verbose_name = pgettext_lazy("singular", "赠品争议")
        verbose_name_plural = _("赠品争议")
        ordering = ["-opened_at"]
        # The admin queue: the nearest response deadline first.
        indexes = [models.Index(name="gifts_dispute_deadline", fields=["response_deadline_at", "id"])]
        constraints = [
            # The order system retries: one dispute per order, gift and kind.
            models.UniqueConstraint(name="gifts_giftdispute_once", fields=["order", "gift", "kind"]),
            # GIFT-5.3: one gift on one order is compensated its value once, whichever kinds of
            # dispute ("not delivered", "not as described", ...) the consumer opened about it.
            models.UniqueConstraint(
                name="gifts_giftdispute_compensated_once",
                fields=["order", "gift"],
                condition=Q(decision="upheld", compensation_fen__gt=0),
            ),
            # GIFT-5.4: only an upheld decision lets the merchant keep anything back from the refund.
            models.CheckConstraint(
                name="gifts_giftdispute_deduction_only_when_upheld",
                condition=Q(decision="upheld")
                | Q(refund_deduction_fen__isnull=True)
                | Q(refund_deduction_fen=0),
            ),
            models.CheckConstraint(
                name="gifts_giftdispute_kind_valid",
                condition=Q(
                    kind__in=[
                        "not_delivered",
                        "not_as_described",
                        "lacks_licence",
                        "return_gift_lost",
                        "return_merchant_fault",
                        "gift_not_returnable",
                    ]
                ),
            ),
            models.CheckConstraint(
                name="gifts_giftdispute_state_valid",
                condition=Q(
                    state__in=["awaiting_merchant", "merchant_responded", "decided", "settle_between_parties"]
                ),
            ),
            models.CheckConstraint(
                name="gifts_giftdispute_decided_has_decision",
                condition=~Q(state="decided") | (~Q(decision="") & Q(decided_at__isnull=False)),
            ),
            models.CheckConstraint(
                name="gifts_giftdispute_amounts_non_negative",
                condition=(Q(compensation_fen__isnull=True) | Q(compensation_fen__gte=0))
                & (Q(refund_deduction_fen__isnull=True) | Q(refund_deduction_fen__gte=0)),
            ),
            # GIFT-5.4: a return counts 0 up to the units due on the order as returned intact, and
            # only a return counts them.
            models.CheckConstraint(
                name="gifts_giftdispute_units_intact_in_range",
                condition=Q(units_returned_intact__isnull=True)
                | (
                    Q(kind__in=["return_gift_lost", "return_merchant_fault"])
                    & Q(units_promised__isnull=False)
                    & Q(units_returned_intact__gte=0)
                    & Q(units_returned_intact__lte=models.F("units_promised"))
                ),
            ),
            models.CheckConstraint(
                name="gifts_giftdispute_units_promised_positive",
                condition=Q(units_promised__isnull=True) | Q(units_promised__gte=1),
            ),
            models.CheckConstraint(
                name="gifts_giftdispute_deadline_after_open",
                condition=Q(response_deadline_at__gt=models.F("opened_at")),
            ),
        ]

    def __str__(self):
        return f"{self.order} · {self.gift} · {self.get_kind_display()}"

    @property
    def units_returned_intact_text(self) -> str:
        """GIFT-5.4, as pages and admin show it: "2 / 3" units intact of those due on a return."""
        if self.kind not in self.RETURN_KINDS:
            return "—"
        if self.units_returned_intact is None:
            return str(_("未填写（视为均未完好退回）"))
        return f"{self.units_returned_intact} / {self.units_promised}"


class DisputeEvidence(models.Model):
    dispute = models.ForeignKey(
        GiftDispute,
        on_delete=models.PROTECT,
        related_name="evidence",
        verbose_name=pgettext_lazy("singular", "赠品争议"),
    )
    storage_name = models.CharField(_("存储文件名"), max_length=300, unique=True)
    original_name = models.CharField(_("文件名"), max_length=255)
    content_type = models.CharField(_("文件类型"), max_length=100)
    size_bytes = models.PositiveIntegerField(_("文件大小（字节）"))
    sha256 = models.CharField("SHA-256", max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("上传人")
    )
    uploaded_at = models.DateTimeField(_("上传时间"), auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "争议证据")
        verbose_name_plural = _("争议证据")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                name="gifts_disputeevidence_content_type_allowed",
                condition=Q(content_type__in=["application/pdf", "image/jpeg", "image/png"]),
            ),
        ]

    def __str__(self):
        return self.original_name


@pgtrigger.register(
    pgtrigger.Protect(name="gifts_event_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
)
class GiftEvent(models.Model):
    """Every state change of a gift, qualification, document request or dispute. Append-only."""

    shop = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+", verbose_name=_("店铺"))
    gift = models.ForeignKey(
        Gift,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=pgettext_lazy("singular", "赠品"),
    )
    qualification = models.ForeignKey(
        Qualification,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=pgettext_lazy("singular", "资质文件"),
    )
    dispute = models.ForeignKey(
        GiftDispute,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=pgettext_lazy("singular", "赠品争议"),
    )
    product = models.ForeignKey(
        Product,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=_("商品"),
    )
    kind = models.CharField(_("事件"), max_length=60)
    from_state = models.CharField(_("原状态"), max_length=30, blank=True)
    to_state = models.CharField(_("新状态"), max_length=30, blank=True)
    rule_id = models.CharField(_("规则"), max_length=20, blank=True)
    details = models.JSONField(_("详情"), default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("操作人"),
    )
    at = models.DateTimeField(_("时间"), db_index=True)

    class Meta:
        verbose_name = _("赠品事件")
        verbose_name_plural = pgettext_lazy("plural", "赠品事件")
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="gifts_giftevent_has_subject",
                condition=Q(gift__isnull=False)
                | Q(qualification__isnull=False)
                | Q(dispute__isnull=False)
                | Q(product__isnull=False),
            ),
        ]

    def __str__(self):
        # Admin shows this above each event row: local time and labels, like the row itself.
        change = (
            f"{self.from_state_label} → {self.to_state_label}" if self.from_state else self.to_state_label
        )
        return f"{clock.local(self.at):%Y-%m-%d %H:%M} {self.kind_label} {change}".strip()

    # The event log a shop reads shows labels; kind and states stay codes in the table (an
    # unknown code, e.g. from an older release, is shown as stored rather than hidden).
    KIND_LABELS = {
        "registered": pgettext_lazy("gift event", "登记赠品"),
        "edited": pgettext_lazy("gift event", "修改赠品"),
        "submitted": pgettext_lazy("gift event", "提交审核"),
        "auto_rejected": pgettext_lazy("gift event", "自动驳回"),
        "approved": pgettext_lazy("gift event", "审核通过"),
        "rejected": pgettext_lazy("gift event", "审核驳回"),
        "revisions_requested": pgettext_lazy("gift event", "要求修改"),
        "removed": pgettext_lazy("gift event", "删除"),
        "withdrawn": pgettext_lazy("gift event", "商家撤回"),
        "suspended": pgettext_lazy("gift event", "暂停"),
        "reinstated": pgettext_lazy("gift event", "恢复"),
        "domestic_shipping_approved": pgettext_lazy("gift event", "批准国内发货"),
        "fair_value_set": pgettext_lazy("gift event", "核定公允价值"),
        "gift_attached": pgettext_lazy("gift event", "关联商品"),
        "gift_detached": pgettext_lazy("gift event", "解除关联商品"),
        "product_created": pgettext_lazy("gift event", "创建商品"),
        "product_edited": pgettext_lazy("gift event", "修改商品"),
        "product_listed": pgettext_lazy("gift event", "商品上架"),
        "product_taken_down": pgettext_lazy("gift event", "商品下架"),
        "violation_recorded": pgettext_lazy("gift event", "记录违规"),
        "violation_not_judged": pgettext_lazy("gift event", "不判违规"),
        "violation_annulled": pgettext_lazy("gift event", "撤销违规"),
        "qualification_uploaded": pgettext_lazy("gift event", "上传资质"),
        "qualification_approved": pgettext_lazy("gift event", "资质审核通过"),
        "qualification_rejected": pgettext_lazy("gift event", "资质审核驳回"),
        "qualification_revoked": pgettext_lazy("gift event", "资质吊销"),
        "documents_requested": pgettext_lazy("gift event", "要求提供资质"),
        "document_request_fulfilled": pgettext_lazy("gift event", "已提供资质"),
        "document_request_expired": pgettext_lazy("gift event", "资质提供超时"),
        "document_request_reopened": pgettext_lazy("gift event", "资质被驳回, 重新要求提供"),
        "shipment_ship_by_agreed": pgettext_lazy("gift event", "约定发货时间"),
        "gift_shipped": pgettext_lazy("gift event", "赠品发货"),
        "spot_checked": pgettext_lazy("gift event", "抽检"),
        "dispute_opened": pgettext_lazy("gift event", "发起争议"),
        "dispute_responded": pgettext_lazy("gift event", "商家举证"),
        "dispute_decided": pgettext_lazy("gift event", "争议裁决"),
    }

    def _state_labels(self) -> dict:
        """The states an event's codes belong to: the subject's, document requests' for theirs."""
        if self.dispute_id:
            return dict(GiftDispute.State.choices)
        if self.kind.startswith("document"):
            return dict(DocumentRequest.State.choices)
        if self.qualification_id:
            return dict(Qualification.State.choices)
        if self.product_id and not self.gift_id:
            return dict(Product.State.choices)
        return dict(Gift.State.choices)

    @property
    def kind_label(self) -> str:
        return self.KIND_LABELS.get(self.kind, self.kind)

    @property
    def from_state_label(self) -> str:
        return self._state_labels().get(self.from_state, self.from_state)

    @property
    def to_state_label(self) -> str:
        return self._state_labels().get(self.to_state, self.to_state)


# Violations are evidence: corrected by staff with a new record, never edited or deleted; an
# annulment is such a record and is itself never edited or deleted.
pgtrigger.register(
    pgtrigger.Protect(name="gifts_violation_append_only", operation=pgtrigger.Update | pgtrigger.Delete)
)(Violation)
pgtrigger.register(
    pgtrigger.Protect(
        name="gifts_violationannulment_append_only", operation=pgtrigger.Update | pgtrigger.Delete
    )
)(ViolationAnnulment)
