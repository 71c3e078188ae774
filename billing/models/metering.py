"""API catalog, prices, apps, usage, bills, settlement runs (FEE-2, 3.1, 4.2, 5.1, 6).

Design:
- ``Api`` has a tier (free / basic / value_added, FEE-2.1) and a price history ``ApiPrice``
  (integer fen per 1,000 calls from ``effective_from``; one price per API per day). A usage
  day is priced with the row whose ``effective_from`` is the latest on or before that day.
- The tier has a history too, ``ApiTierChange`` (one row per API per day): settlement bills a
  usage day by the tier in force on that day, like its price. ``Api.tier`` is the current tier
  (the gate reads it); a change writes both in one transaction. An API's first row starts at
  ``TIER_HISTORY_START``, before any usage, so every usage day has a tier in force: deferred
  constraint triggers refuse, at commit, an API without that row or a change that removes it.
- ``App`` belongs to one organization (FEE-3.1; ``org.apps`` tells the dashboard who is a
  developer). Its ``app_key`` is public; only a SHA-256 of the secret is stored.
- ``OutOfCloudPermission`` (FEE-3.1(1)) and ``Discount`` (FEE-5.1) are staff-set; discounts of
  one app may not overlap in time (exclusion constraint).
- Usage is ``billing_usage_hourly``: a table partitioned by RANGE(hour) with one partition per
  Asia/Shanghai month, created in migration 0002 with RunSQL (Django cannot declare
  partitioning); ``UsageHourly`` is its unmanaged model for reads. Each partition's primary
  key (app, api, location, hour) is what makes re-sent rows replace, never add (on the
  partitions, not the parent, since migration 0008: ingest rebuilds an empty month's key by a
  sort). ``UsageBatch`` makes a whole batch idempotent (unique batch id).
- Settlement (FEE-4.2): ``SettlementRun`` is one per month; planning writes ``SettlementLine``
  (the month's aggregated lines, computed once in SQL) and ``SettlementChunk`` rows; chunk
  tasks turn staged lines into ``Bill`` / ``BillApp`` / ``BillLine`` and charge the wallet in
  the same transaction. ``Bill`` is unique per (organization, year, month) and months before
  2023-03 are refused by a check constraint, so no retry or race can bill twice or too early.
  A chunk counts its attempts and is failed after too many (a worker that dies on it every
  time), for staff to reset.
"""

import datetime as dt
import hashlib
import secrets
from decimal import Decimal

import pgtrigger
from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, DateRangeField, RangeOperators
from django.db import models
from django.db.models import Func, Q
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from portal.money import format_fen

FIRST_BILLABLE = (2023, 3)  # FEE-4.2: months before 2023-03 are never charged


class Location(models.TextChoices):
    IN_CLOUD = "in_cloud", _("抖店云内")
    OUT_OF_CLOUD = "out_of_cloud", _("抖店云外")


# An API's first tier row is in force from here: before any usage (none before 2023-03).
TIER_HISTORY_START = dt.date(2000, 1, 1)

# FEE-2.1: every API has a tier history row in force from TIER_HISTORY_START, so "the tier in
# force on day D" always finds one. Checked at commit (deferred constraint triggers), so the API
# and its first row are written in one transaction in either order: an API inserted without
# one, or its covering row deleted or moved later, fails the commit with IntegrityError
# (SQLSTATE 23514). An API deleted with its history passes (it no longer exists at commit).
_TIER_HISTORY_CHECK = """
    IF EXISTS (SELECT 1 FROM billing_api WHERE id = {api_id})
       AND NOT EXISTS (
           SELECT 1 FROM billing_apitierchange
           WHERE api_id = {api_id} AND effective_from <= DATE '{start}'
       ) THEN
        RAISE EXCEPTION 'FEE-2.1: API % has no tier history row in force from {start}', {api_id}
            USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
"""


def _tier_history_check(api_id: str) -> str:
    return _TIER_HISTORY_CHECK.format(api_id=api_id, start=TIER_HISTORY_START.isoformat())


class Api(models.Model):
    class Tier(models.TextChoices):
        FREE = "free", _("免费API")
        BASIC = "basic", _("基础API")
        VALUE_ADDED = "value_added", _("增值API")

    code = models.CharField(_("API 名称"), max_length=120, unique=True, help_text="e.g. order.list")
    title = models.CharField(_("说明"), max_length=200, blank=True)
    tier = models.CharField(_("类型"), max_length=20, choices=Tier.choices)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("API")
        verbose_name_plural = _("API 目录")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                name="billing_api_tier_valid", condition=Q(tier__in=["free", "basic", "value_added"])
            ),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="billing_api_has_tier_history",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                timing=pgtrigger.Deferred,
                func=_tier_history_check("NEW.id"),
            ),
        ]

    def __str__(self):
        return self.code

    @property
    def is_paid(self) -> bool:
        return self.tier != self.Tier.FREE


class ApiTierChange(models.Model):
    """FEE-2.1 tier history: ``tier`` is in force from ``effective_from`` until the API's next row."""

    api = models.ForeignKey(Api, on_delete=models.CASCADE, related_name="tier_changes", verbose_name=_("API"))
    tier = models.CharField(_("类型"), max_length=20, choices=Api.Tier.choices)
    effective_from = models.DateField(_("生效日期"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("操作人"),
    )

    class Meta:
        verbose_name = pgettext_lazy("singular", "API 类型变更")
        verbose_name_plural = _("API 类型变更")
        ordering = ["api", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                name="billing_apitierchange_one_per_day", fields=["api", "effective_from"]
            ),
            models.CheckConstraint(
                name="billing_apitierchange_tier_valid",
                condition=Q(tier__in=["free", "basic", "value_added"]),
            ),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="billing_apitierchange_keeps_first_row",
                when=pgtrigger.After,
                operation=pgtrigger.Update | pgtrigger.Delete,
                timing=pgtrigger.Deferred,
                func=_tier_history_check("OLD.api_id"),
            ),
        ]

    def __str__(self):
        return f"{self.api} {self.tier} @ {self.effective_from}"


class ApiPrice(models.Model):
    api = models.ForeignKey(Api, on_delete=models.CASCADE, related_name="prices", verbose_name=_("API"))
    price_fen_per_1000 = models.BigIntegerField(_("单价(分/千次)"))
    effective_from = models.DateField(_("生效日期"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "API 价格")
        verbose_name_plural = _("API 价格")
        ordering = ["api", "-effective_from"]
        constraints = [
            models.UniqueConstraint(name="billing_apiprice_one_per_day", fields=["api", "effective_from"]),
            models.CheckConstraint(
                name="billing_apiprice_not_negative", condition=Q(price_fen_per_1000__gte=0)
            ),
        ]

    def __str__(self):
        return f"{self.api} {self.price_fen_per_1000}/1000 @ {self.effective_from}"


class App(models.Model):
    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.PROTECT, related_name="apps", verbose_name=_("组织")
    )
    name = models.CharField(_("应用名称"), max_length=120)
    app_key = models.CharField(_("App Key"), max_length=40, unique=True)
    secret_hash = models.CharField(_("密钥哈希"), max_length=64)
    secret_rotated_at = models.DateTimeField(_("密钥重置时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("应用")
        verbose_name_plural = pgettext_lazy("plural", "应用")
        ordering = ["organization_id", "id"]

    def __str__(self):
        return f"{self.name} ({self.app_key})"

    @staticmethod
    def hash_secret(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @staticmethod
    def new_key() -> str:
        return "ak" + secrets.token_hex(9)

    @staticmethod
    def new_secret() -> str:
        return secrets.token_urlsafe(32)


class OutOfCloudPermission(models.Model):
    """FEE-3.1(1): staff allow an app to call one value-added API from outside the cloud."""

    app = models.ForeignKey(
        App, on_delete=models.CASCADE, related_name="out_of_cloud_permissions", verbose_name=_("应用")
    )
    api = models.ForeignKey(Api, on_delete=models.CASCADE, related_name="+", verbose_name=_("API"))
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("授权人"),
    )
    granted_at = models.DateTimeField(_("授权时间"), auto_now_add=True)
    note = models.CharField(_("备注"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("云外调用权限")
        verbose_name_plural = pgettext_lazy("plural", "云外调用权限")
        constraints = [
            models.UniqueConstraint(name="billing_oocperm_one_per_app_api", fields=["app", "api"]),
        ]

    def __str__(self):
        return f"{self.app.app_key} → {self.api}"


class DateRangeInclusive(Func):
    function = "DATERANGE"
    output_field = DateRangeField()

    def __init__(self, start, end):
        super().__init__(start, end, models.Value("[]"))


class Discount(models.Model):
    """FEE-5.1: a quality app's discount ``rate`` (0.2 = 20% off) valid from/to (inclusive)."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="discounts", verbose_name=_("应用"))
    rate = models.DecimalField(_("折扣率(减免比例)"), max_digits=5, decimal_places=4)
    valid_from = models.DateField(_("生效日期"))
    valid_to = models.DateField(_("截止日期"))
    reason = models.CharField(_("原因"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("创建人"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("折扣")
        verbose_name_plural = pgettext_lazy("plural", "折扣")
        ordering = ["-valid_from"]
        constraints = [
            models.CheckConstraint(
                name="billing_discount_rate_range", condition=Q(rate__gt=0) & Q(rate__lt=1)
            ),
            models.CheckConstraint(
                name="billing_discount_dates_ordered", condition=Q(valid_to__gte=models.F("valid_from"))
            ),
            # One rate per app per day: overlapping validity periods are refused by the database.
            ExclusionConstraint(
                name="billing_discount_no_overlap",
                expressions=[
                    ("app", RangeOperators.EQUAL),
                    (DateRangeInclusive("valid_from", "valid_to"), RangeOperators.OVERLAPS),
                ],
            ),
        ]

    def __str__(self):
        return f"{self.app.app_key} -{self.rate:.2%} {self.valid_from}..{self.valid_to}"


class UsageHourly(models.Model):
    """Read model of the partitioned ``billing_usage_hourly`` (migrations 0002 and 0008).

    The composite key mirrors each partition's primary key (the parent declares none)."""

    pk = models.CompositePrimaryKey("app_id", "api_id", "location", "hour")
    app = models.ForeignKey(
        App, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", verbose_name=_("应用")
    )
    api = models.ForeignKey(
        Api, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", verbose_name=_("API")
    )
    location = models.CharField(_("调用位置"), max_length=12, choices=Location.choices)
    hour = models.DateTimeField(_("时段"))
    calls = models.BigIntegerField(_("调用次数"))

    class Meta:
        managed = False
        db_table = "billing_usage_hourly"
        verbose_name = pgettext_lazy("singular", "小时用量")
        verbose_name_plural = _("小时用量")

    def __str__(self):
        return f"{self.app_id}/{self.api_id}/{self.location}@{self.hour:%Y-%m-%d %H:%M}={self.calls}"


class UsageBatch(models.Model):
    """One ingest batch; its unique ``batch_id`` makes a re-sent batch count once.

    ``content_sha256`` is the SHA-256 of the body as received: the same id with the same body is
    a harmless duplicate, the same id with another body is refused (its rows would otherwise be
    dropped unseen). Batches recorded before the column existed have none, and a re-send of one
    of them stays a duplicate.
    """

    class Source(models.TextChoices):
        API = "api", "API"
        COMMAND = "command", _("命令")

    batch_id = models.CharField(_("批次号"), max_length=100, unique=True)
    source = models.CharField(_("来源"), max_length=10, choices=Source.choices)
    rows_total = models.PositiveIntegerField(_("总行数"), default=0)
    rows_accepted = models.PositiveIntegerField(_("接受行数"), default=0)
    rows_rejected = models.PositiveIntegerField(_("拒绝行数"), default=0)
    errors = models.JSONField(_("错误"), default=list, blank=True)
    received_at = models.DateTimeField(_("接收时间"), auto_now_add=True)
    seconds = models.FloatField(_("耗时(秒)"), default=0)
    content_sha256 = models.CharField("SHA-256", max_length=64, null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "用量批次")
        verbose_name_plural = _("用量批次")
        ordering = ["-received_at"]

    def __str__(self):
        return self.batch_id


class SettlementRun(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", _("已计划")
        RUNNING = "running", _("结算中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")

    year = models.PositiveSmallIntegerField(_("年"))
    month = models.PositiveSmallIntegerField(_("月"))
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.PLANNED)
    orgs_total = models.PositiveIntegerField(_("组织总数"), default=0)
    orgs_done = models.PositiveIntegerField(_("已完成组织"), default=0)
    chunks_total = models.PositiveIntegerField(_("分片数"), default=0)
    lines_total = models.PositiveIntegerField(_("账单行数"), default=0)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("操作人"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    last_error = models.TextField(_("最近错误"), blank=True)
    recheck = models.JSONField(_("复核结果"), default=dict, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "结算批次")
        verbose_name_plural = _("结算批次")
        ordering = ["-year", "-month"]
        constraints = [
            models.UniqueConstraint(name="billing_settlementrun_one_per_month", fields=["year", "month"]),
            models.CheckConstraint(
                name="billing_settlementrun_month_valid", condition=Q(month__gte=1, month__lte=12)
            ),
            models.CheckConstraint(
                name="billing_settlementrun_fee_4_2_from_2023_03",
                condition=Q(year__gt=2023) | Q(year=2023, month__gte=3),
            ),
            models.CheckConstraint(
                name="billing_settlementrun_progress", condition=Q(orgs_done__lte=models.F("orgs_total"))
            ),
        ]

    def __str__(self):
        return f"{self.year}-{self.month:02d}"

    @property
    def percent(self) -> int:
        return 100 if not self.orgs_total else int(100 * self.orgs_done / self.orgs_total)


class SettlementChunk(models.Model):
    run = models.ForeignKey(
        SettlementRun,
        on_delete=models.CASCADE,
        related_name="chunks",
        verbose_name=pgettext_lazy("singular", "结算批次"),
    )
    index = models.PositiveIntegerField(_("序号"))
    organization_ids = ArrayField(models.BigIntegerField(), verbose_name=_("组织 ID 列表"))
    done_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    # Attempts are counted in their own committed transaction before the chunk's work starts,
    # so an attempt whose worker died (out of memory, a segfault) still counts; at the limit
    # (``BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS``) the chunk is failed and left for staff.
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0, db_default=0)
    last_attempt_at = models.DateTimeField(_("最近尝试时间"), null=True, blank=True)
    # The exception that ended the last attempt; empty when it ended without one (its worker died).
    last_error = models.TextField(_("最近错误"), blank=True, default="", db_default="")
    failed_at = models.DateTimeField(_("失败时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "结算分片")
        verbose_name_plural = _("结算分片")
        constraints = [
            models.UniqueConstraint(name="billing_settlementchunk_unique", fields=["run", "index"]),
            models.CheckConstraint(
                name="billing_settlementchunk_done_or_failed",
                condition=Q(done_at__isnull=True) | Q(failed_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.run} #{self.index}"

    @property
    def failure_reason(self) -> str:
        """Why the chunk failed, for admin: the last attempt's error, or that its worker died."""
        if self.last_error:
            return self.last_error
        return gettext("FEE-4.2: 工作进程在处理该分片时退出 (内存不足、崩溃或超时), 未留下错误信息。")


class SettlementLine(models.Model):
    """A month's line computed once by the planning SQL; bills are built from these rows."""

    run = models.ForeignKey(
        SettlementRun,
        on_delete=models.CASCADE,
        related_name="lines",
        verbose_name=pgettext_lazy("singular", "结算批次"),
    )
    organization_id = models.BigIntegerField(_("组织 ID"))
    app_id = models.BigIntegerField(_("应用 ID"))
    api_id = models.BigIntegerField("API ID")
    location = models.CharField(_("调用位置"), max_length=12)
    calls = models.BigIntegerField(_("调用次数"))
    amount_fen = models.BigIntegerField(_("金额(分)"))
    prices = models.JSONField(_("单价明细"), default=list)

    class Meta:
        indexes = [models.Index(name="billing_setline_run_org", fields=["run", "organization_id"])]

    def __str__(self):
        return f"{self.run} org {self.organization_id} app {self.app_id}"


class Bill(models.Model):
    """One bill per organization per natural month (FEE-4.2), charged in the same transaction."""

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.PROTECT, related_name="bills", verbose_name=_("组织")
    )
    year = models.PositiveSmallIntegerField(_("年"))
    month = models.PositiveSmallIntegerField(_("月"))
    run = models.ForeignKey(
        SettlementRun,
        null=True,
        on_delete=models.SET_NULL,
        related_name="bills",
        verbose_name=pgettext_lazy("singular", "结算批次"),
    )
    subtotal_fen = models.BigIntegerField(_("小计(分)"), default=0)
    discount_fen = models.BigIntegerField(_("折扣(分)"), default=0)
    total_fen = models.BigIntegerField(_("应付合计(分)"), default=0)
    ledger_entry_id = models.BigIntegerField(_("流水 ID"), null=True, blank=True)
    settled_at = models.DateTimeField(_("结算时间"), auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "账单")
        verbose_name_plural = _("账单")
        ordering = ["-year", "-month", "organization_id"]
        # The admin list in this order, newest month first, and one month's page of it.
        indexes = [models.Index(name="billing_bill_period_org", fields=["-year", "-month", "organization"])]
        constraints = [
            models.UniqueConstraint(
                name="billing_bill_one_per_org_month", fields=["organization", "year", "month"]
            ),
            models.CheckConstraint(name="billing_bill_month_valid", condition=Q(month__gte=1, month__lte=12)),
            models.CheckConstraint(
                name="billing_bill_fee_4_2_from_2023_03",
                condition=Q(year__gt=2023) | Q(year=2023, month__gte=3),
            ),
            models.CheckConstraint(
                name="billing_bill_total_is_subtotal_less_discount",
                condition=Q(total_fen=models.F("subtotal_fen") - models.F("discount_fen")),
            ),
            models.CheckConstraint(
                name="billing_bill_amounts_not_negative", condition=Q(discount_fen__gte=0, total_fen__gte=0)
            ),
        ]

    def __str__(self):
        return f"{self.organization} {self.year}-{self.month:02d}"


class BillApp(models.Model):
    bill = models.ForeignKey(
        Bill, on_delete=models.CASCADE, related_name="apps", verbose_name=pgettext_lazy("singular", "账单")
    )
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="+", verbose_name=_("应用"))
    subtotal_fen = models.BigIntegerField(_("小计(分)"))
    discount_rate = models.DecimalField(_("折扣率"), max_digits=5, decimal_places=4, default=0)
    discount_fen = models.BigIntegerField(_("折扣(分)"), default=0)
    total_fen = models.BigIntegerField(_("应付合计(分)"))

    class Meta:
        ordering = ["bill", "app_id"]
        constraints = [
            models.UniqueConstraint(name="billing_billapp_one_per_app", fields=["bill", "app"]),
            models.CheckConstraint(
                name="billing_billapp_total",
                condition=Q(total_fen=models.F("subtotal_fen") - models.F("discount_fen")),
            ),
        ]

    def __str__(self):
        return f"{self.bill} app {self.app_id}"


class BillLine(models.Model):
    bill = models.ForeignKey(
        Bill, on_delete=models.CASCADE, related_name="lines", verbose_name=pgettext_lazy("singular", "账单")
    )
    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="+", verbose_name=_("应用"))
    api = models.ForeignKey(Api, on_delete=models.PROTECT, related_name="+", verbose_name=_("API"))
    location = models.CharField(_("调用位置"), max_length=12, choices=Location.choices)
    calls = models.BigIntegerField(_("调用次数"))
    amount_fen = models.BigIntegerField(_("金额(分)"))
    # [{"price": fen per 1000, "calls": n, "from": "YYYY-MM-DD"}] — several when the price
    # changed during the month (each usage day is priced with the price then in force).
    prices = models.JSONField(_("单价明细"), default=list)

    class Meta:
        ordering = ["bill", "app_id", "api_id", "location"]
        constraints = [
            models.UniqueConstraint(
                name="billing_billline_unique", fields=["bill", "app", "api", "location"]
            ),
            models.CheckConstraint(
                name="billing_billline_not_negative", condition=Q(calls__gte=0, amount_fen__gte=0)
            ),
        ]

    def __str__(self):
        return f"{self.bill} {self.api_id} {self.location}"

    # The paid tier(s) in force on the bill's month, oldest first: set by the selector
    # ``bill_detail_groups`` from the tier history (the API's tier today may differ).
    tiers: list[str] | None = None

    @property
    def price_label(self) -> str:
        """Fen per 1,000 calls, for the CSV: "800", or "800 / 900" when the price changed."""
        return " / ".join(str(p["price"]) for p in self.prices) or "0"

    @property
    def price_yuan_label(self) -> str:
        """The same for people (page and PDF), as money: "¥8.00", or "¥8.00 / ¥9.00"."""
        return " / ".join(format_fen(p["price"]) for p in self.prices) or format_fen(0)

    @property
    def discounted_calls(self) -> list[tuple[Decimal, int]]:
        """FEE-5.1: (rate, calls) of this line's calls that fell on days of an app discount,
        by rate (settlement records them per price under ``prices[].discounted``)."""
        by_rate: dict[Decimal, int] = {}
        for price in self.prices:
            for part in price.get("discounted", ()):
                rate = Decimal(str(part["rate"]))
                by_rate[rate] = by_rate.get(rate, 0) + int(part["calls"])
        return sorted(by_rate.items())

    @property
    def discounted_label(self) -> str:
        """The same for the page and PDF, in words: "3,000 次, 优惠 20%" per rate, or "" if none."""
        return " / ".join(
            gettext("%(calls)s 次, 优惠 %(rate)s%%")
            % {"calls": f"{calls:,}", "rate": f"{(rate * 100).normalize():f}"}
            for rate, calls in self.discounted_calls
        )

    @property
    def discounted_codes(self) -> str:
        """The same for the CSV: "rate:calls" per rate, e.g. "0.2:3000"."""
        return " ".join(f"{rate}:{calls}" for rate, calls in self.discounted_calls)

    @property
    def tier(self) -> str:
        """One tier code for API clients: the last paid tier in force in the month."""
        return (self.tiers or [self.api.tier])[-1]

    @property
    def tier_codes(self) -> str:
        """The tier(s) of the billed days for the CSV and API, e.g. "basic → value_added"."""
        return " → ".join(self.tiers or [self.api.tier])

    @property
    def tier_label(self) -> str:
        """The same, translated for the bill page (基础API → 增值API)."""
        labels = dict(Api.Tier.choices)
        return " → ".join(str(labels.get(t, t)) for t in self.tiers or [self.api.tier])
