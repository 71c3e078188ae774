"""Wallet, append-only ledger, top-ups, invoices, deposits (FEE-4.1, 4.3, 6.1, 6.3).

Design:
- One ``Wallet`` per organization (created on demand). ``balance_fen`` is a cached column:
  it is only changed by ``billing.services.wallet`` in the same transaction that appends a
  ``LedgerEntry``, under the wallet's row lock (``billing.locks``); ``manage.py verify_ledger``
  proves it equals the sum of the entries.
- ``LedgerEntry`` is append-only: a database trigger refuses UPDATE and DELETE. Only three
  kinds exist (FEE-4.1: no refund, withdrawal or transfer kind), each with its sign fixed by a
  check constraint: top-up credits and deposit transfers are > 0, settlement charges ≤ 0.
  Idempotency lives in unique constraints: one credit per top-up order, one settlement charge
  per (wallet, month), one ledger entry per deposit transfer.
- ``TopUpOrder`` (pending → paid / failed / expired) and ``PaymentEvent`` (one row per
  provider event id, so a replayed event is refused by the database).
- ``Invoice`` requests (FEE-4.3) are checked against the invoiceable amount under the wallet
  lock; ``DepositAccount``/``DepositEntry`` and ``ClosureRequest`` implement FEE-6.3.
"""

import pgtrigger
from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from portal.models import Organization
from portal.money import format_fen

TOP_UP_MIN_FEN = 100  # ¥1
TOP_UP_MAX_FEN = 100_000_000  # ¥1,000,000


class Wallet(models.Model):
    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="wallet", verbose_name=_("组织")
    )
    balance_fen = models.BigIntegerField(_("余额(分)"), default=0)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("钱包")
        verbose_name_plural = pgettext_lazy("plural", "钱包")

    def __str__(self):
        return f"{self.organization} ({format_fen(self.balance_fen)})"

    @property
    def in_arrears(self) -> bool:
        return self.balance_fen < 0


@pgtrigger.register(
    pgtrigger.Protect(name="billing_ledger_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
)
class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        TOP_UP_CREDIT = "top_up_credit", _("充值入账")
        SETTLEMENT_CHARGE = "settlement_charge", _("结算扣费")
        DEPOSIT_TRANSFER = "deposit_transfer", _("保证金抵扣欠费")

    # Indexes are kept to what reads need: every credit inserts into each of them (hot path).
    # The wallet's lookups use billing_ledger_wallet_time, which leads with wallet_id.
    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="entries", db_index=False, verbose_name=_("钱包")
    )
    kind = models.CharField(_("类型"), max_length=20, choices=Kind.choices)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    # The wallet balance right after this entry (written under the wallet lock): the
    # balance-over-time chart reads it without summing the ledger.
    balance_after_fen = models.BigIntegerField(_("余额(分)"))
    top_up_order = models.OneToOneField(
        "billing.TopUpOrder",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit",
        verbose_name=pgettext_lazy("singular", "充值订单"),
    )
    period_year = models.PositiveSmallIntegerField(_("账期(年)"), null=True, blank=True)
    period_month = models.PositiveSmallIntegerField(_("账期(月)"), null=True, blank=True)
    # One entry per deposit transfer: a partial unique index (below), so the top-ups and charges
    # (deposit_entry NULL, nearly every row) add no entry to it.
    deposit_entry = models.ForeignKey(
        "billing.DepositEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_entries",
        db_index=False,
        verbose_name=pgettext_lazy("singular", "保证金流水"),
    )
    reference = models.CharField(_("备注"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "流水")
        verbose_name_plural = _("流水")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(name="billing_ledger_wallet_time", fields=["wallet", "created_at", "id"])]
        constraints = [
            # FEE-4.1: these three kinds are the only ones; no refund/withdrawal/transfer kind.
            models.CheckConstraint(
                name="billing_ledgerentry_kind_valid",
                condition=Q(kind__in=["top_up_credit", "settlement_charge", "deposit_transfer"]),
            ),
            models.CheckConstraint(
                name="billing_ledgerentry_credit_positive",
                condition=~Q(kind="top_up_credit") | Q(amount_fen__gt=0, top_up_order__isnull=False),
            ),
            models.CheckConstraint(
                name="billing_ledgerentry_charge_not_positive",
                condition=~Q(kind="settlement_charge")
                | Q(amount_fen__lte=0, period_year__isnull=False, period_month__gte=1, period_month__lte=12),
            ),
            models.CheckConstraint(
                name="billing_ledgerentry_deposit_positive",
                condition=~Q(kind="deposit_transfer") | Q(amount_fen__gt=0, deposit_entry__isnull=False),
            ),
            models.UniqueConstraint(
                name="billing_ledgerentry_one_per_deposit_entry",
                fields=["deposit_entry"],
                condition=Q(deposit_entry__isnull=False),
            ),
            # FEE-4.2: exactly one settlement charge per organization (wallet) per month.
            models.UniqueConstraint(
                name="billing_ledgerentry_one_charge_per_month",
                fields=["wallet", "period_year", "period_month"],
                condition=Q(kind="settlement_charge"),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {format_fen(self.amount_fen)}"


class TopUpOrder(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("待支付")
        PAID = "paid", _("已支付")
        FAILED = "failed", _("支付失败")
        EXPIRED = "expired", _("已过期")

    # Served by billing_topup_org_time (leads with organization_id); no second index.
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="top_up_orders",
        db_index=False,
        verbose_name=_("组织"),
    )
    # Unique by a constraint, not ``unique=True``: that would add a second (LIKE) index that
    # every insert and every paid update writes to and no query uses.
    out_trade_no = models.CharField(_("订单号"), max_length=40)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    currency = models.CharField(_("币种"), max_length=3, default="CNY")
    provider = models.CharField(_("支付渠道"), max_length=20)
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.PENDING)
    provider_trade_no = models.CharField(_("渠道交易号"), max_length=64, blank=True)
    failure_reason = models.CharField(_("失败原因"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        verbose_name=_("创建人"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    expires_at = models.DateTimeField(_("过期时间"))
    paid_at = models.DateTimeField(_("支付时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "充值订单")
        verbose_name_plural = _("充值订单")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(name="billing_topup_org_time", fields=["organization", "-created_at"]),
            models.Index(
                name="billing_topup_pending_expiry", fields=["expires_at"], condition=Q(state="pending")
            ),
        ]
        constraints = [
            models.UniqueConstraint(name="billing_topuporder_unique_trade_no", fields=["out_trade_no"]),
            models.CheckConstraint(
                name="billing_topuporder_amount_range",
                condition=Q(amount_fen__gte=TOP_UP_MIN_FEN, amount_fen__lte=TOP_UP_MAX_FEN),
            ),
            models.CheckConstraint(
                name="billing_topuporder_state_valid",
                condition=Q(state__in=["pending", "paid", "failed", "expired"]),
            ),
            models.CheckConstraint(
                name="billing_topuporder_paid_has_time",
                condition=~Q(state="paid") | Q(paid_at__isnull=False),
            ),
        ]

    def __str__(self):
        return self.out_trade_no

    @property
    def current_state(self) -> str:
        """The state as of now: a pending order past ``expires_at`` reads as expired before the
        beat job (every 5 minutes) writes it, so no page offers to pay it or polls it."""
        if self.state == self.State.PENDING and self.expires_at <= timezone.now():
            return self.State.EXPIRED
        return self.state

    def get_current_state_display(self) -> str:
        return self.State(self.current_state).label

    @property
    def is_final(self) -> bool:
        return self.current_state != self.State.PENDING


class PaymentEvent(models.Model):
    """Every signed provider callback we accepted for processing. The unique event id makes a
    replayed event fail in the database, whatever the timing of the deliveries."""

    provider = models.CharField(_("支付渠道"), max_length=20)
    event_id = models.CharField(_("事件 ID"), max_length=64)
    order = models.ForeignKey(
        TopUpOrder,
        null=True,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
        verbose_name=pgettext_lazy("singular", "充值订单"),
    )
    status = models.CharField(_("状态"), max_length=20)
    amount_fen = models.BigIntegerField(_("金额(分)"), null=True)
    currency = models.CharField(_("币种"), max_length=3, blank=True)
    outcome = models.CharField(_("处理结果"), max_length=40)
    payload = models.JSONField(_("消息内容"), default=dict)
    received_at = models.DateTimeField(_("接收时间"), auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "支付回调")
        verbose_name_plural = _("支付回调")
        constraints = [
            models.UniqueConstraint(name="billing_paymentevent_unique_event", fields=["provider", "event_id"])
        ]

    def __str__(self):
        return f"{self.provider}:{self.event_id} {self.outcome}"


class IdempotencyKey(models.Model):
    """API ``Idempotency-Key``: the first response is stored and replayed for the same body."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", verbose_name=_("组织")
    )
    scope = models.CharField(_("范围"), max_length=40)
    key = models.CharField(_("幂等键"), max_length=100)
    fingerprint = models.CharField(_("请求指纹"), max_length=64)
    response_status = models.PositiveSmallIntegerField(_("响应状态码"), null=True)
    response_body = models.JSONField(_("响应内容"), null=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                name="billing_idempotencykey_unique", fields=["organization", "scope", "key"]
            )
        ]

    def __str__(self):
        return f"{self.scope}:{self.key}"


class Invoice(models.Model):
    class Kind(models.TextChoices):
        GENERAL = "general", _("增值税普通发票")
        SPECIAL_VAT = "special_vat", _("增值税专用发票")

    class State(models.TextChoices):
        REQUESTED = "requested", _("待审核")
        ISSUED = "issued", _("已开具")
        REJECTED = "rejected", _("已驳回")

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("组织")
    )
    amount_fen = models.BigIntegerField(_("金额(分)"))
    title = models.CharField(_("发票抬头"), max_length=200)
    taxpayer_id = models.CharField(_("纳税人识别号"), max_length=18)
    kind = models.CharField(_("发票类型"), max_length=12, choices=Kind.choices)
    email = models.EmailField(_("接收邮箱"))
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.REQUESTED)
    number = models.CharField(_("发票号码"), max_length=40, null=True, blank=True, unique=True)
    pdf = models.FileField("PDF", upload_to="invoices/", blank=True)
    reject_reason = models.CharField(_("驳回原因"), max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("申请人"),
    )
    requested_at = models.DateTimeField(_("申请时间"), auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("审核人"),
    )
    reviewed_at = models.DateTimeField(_("审核时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "发票")
        verbose_name_plural = _("发票")
        ordering = ["-requested_at", "-id"]
        indexes = [
            # The review queue (admin's default view), newest first, and its count.
            models.Index(name="billing_invoice_queue", fields=["-id"], condition=Q(state="requested")),
            models.Index(name="billing_invoice_taxpayer", fields=["taxpayer_id"]),
            GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name="billing_invoice_title_trgm"),
        ]
        constraints = [
            models.CheckConstraint(name="billing_invoice_amount_positive", condition=Q(amount_fen__gt=0)),
            models.CheckConstraint(
                name="billing_invoice_state_valid", condition=Q(state__in=["requested", "issued", "rejected"])
            ),
            models.CheckConstraint(
                name="billing_invoice_issued_has_number",
                condition=~Q(state="issued") | Q(number__isnull=False),
            ),
            models.CheckConstraint(
                name="billing_invoice_rejected_has_reason",
                condition=~Q(state="rejected") | ~Q(reject_reason=""),
            ),
        ]

    def __str__(self):
        return f"{self.title} {format_fen(self.amount_fen)} ({self.get_state_display()})"


class DepositAccount(models.Model):
    """服务市场保证金 (FEE-6.3). Its balance never goes below zero (database check)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="deposit_account", verbose_name=_("组织")
    )
    balance_fen = models.BigIntegerField(_("保证金余额(分)"), default=0)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "保证金账户")
        verbose_name_plural = _("保证金账户")
        constraints = [
            models.CheckConstraint(
                name="billing_depositaccount_balance_not_negative", condition=Q(balance_fen__gte=0)
            )
        ]

    def __str__(self):
        return f"{self.organization} {gettext('保证金余额')} {format_fen(self.balance_fen)}"


@pgtrigger.register(
    pgtrigger.Protect(name="billing_deposit_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
)
class DepositEntry(models.Model):
    class Kind(models.TextChoices):
        PAID_IN = "paid_in", _("缴纳保证金")
        ARREARS_TRANSFER = "arrears_transfer", _("抵扣欠费")
        RETURNED = "returned", _("退还保证金")

    account = models.ForeignKey(
        DepositAccount,
        on_delete=models.PROTECT,
        related_name="entries",
        verbose_name=pgettext_lazy("singular", "保证金账户"),
    )
    kind = models.CharField(_("类型"), max_length=20, choices=Kind.choices)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    # Idempotency of jobs and staff actions: e.g. "arrears:<org>:<date>" — one per day.
    idempotency_key = models.CharField(_("幂等键"), max_length=100, unique=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("操作人"),
    )
    note = models.CharField(_("备注"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "保证金流水")
        verbose_name_plural = _("保证金流水")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                name="billing_depositentry_kind_valid",
                condition=Q(kind__in=["paid_in", "arrears_transfer", "returned"]),
            ),
            models.CheckConstraint(
                name="billing_depositentry_sign",
                condition=(Q(kind="paid_in", amount_fen__gt=0) | (~Q(kind="paid_in") & Q(amount_fen__lt=0))),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {format_fen(self.amount_fen)}"


class ClosureRequest(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("待处理")
        APPROVED = "approved", _("已注销")
        REJECTED = "rejected", _("已驳回")

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="closure_requests", verbose_name=_("组织")
    )
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.PENDING)
    reason = models.CharField(_("注销原因"), max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("申请人"),
    )
    requested_at = models.DateTimeField(_("申请时间"), auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("审核人"),
    )
    reviewed_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    review_note = models.CharField(_("审核备注"), max_length=300, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "注销申请")
        verbose_name_plural = _("注销申请")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                name="billing_closurerequest_one_open_per_org",
                fields=["organization"],
                condition=Q(state__in=["pending", "approved"]),
            ),
            models.CheckConstraint(
                name="billing_closurerequest_state_valid",
                condition=Q(state__in=["pending", "approved", "rejected"]),
            ),
        ]

    def __str__(self):
        return f"{self.organization} closure ({self.state})"


__all__ = [
    "TOP_UP_MAX_FEN",
    "TOP_UP_MIN_FEN",
    "ClosureRequest",
    "DepositAccount",
    "DepositEntry",
    "IdempotencyKey",
    "Invoice",
    "LedgerEntry",
    "PaymentEvent",
    "TopUpOrder",
    "Wallet",
]
