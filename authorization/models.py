"""Compass data grants (GRANT-1..11): a creator (达人) lets a shop or agency see their data.

Design:
- ``Grant`` is one authorization of a creator to an organization, scope ``all_data`` (all of
  the creator's sales data) or ``live_room`` (one room). An ``all_data`` grant is a window
  ``[start_date, end_date]`` (both inclusive, Asia/Shanghai, GRANT-10). Renewals move the
  window of the same row (GRANT-5 early renew: ``[min(start, tomorrow), new_end]``; GRANT-6
  renew of an expired grant: ``[new_start, new_end]``); every change writes a ``GrantEvent``
  with the old and new dates, so nothing is edited silently. A revoked grant stays revoked;
  authorizing again creates a new row and the older one stops being ``is_current`` (the lists
  show one row per party pair: a partial unique constraint).
- At most one live ``all_data`` grant per (creator, organization) at any date: an exclusion
  constraint (btree_gist) over ``daterange(start, end, '[]')`` of unrevoked rows. Services
  refuse the same with a rule code first; the database is the backstop for races and admin.
- State is never stored: ``authorized`` / ``scheduled`` / ``expired`` / ``revoked`` is derived
  from the dates, ``revoked_at`` and today (selectors.grant_state). ``expiry_recorded_for`` is
  only the daily job's bookkeeping (which end date it already announced), never read by the
  access decision.
- ``LiveRoomRequest`` is the organization's 解锁更多数据 request (GRANT-3); pending requests
  lapse 7 days after creation (decided from ``expires_at`` at read time, recorded by a job).
- ``LiveRoom``, ``CreatorDailySales`` and ``LiveRoomSales`` are the data a grant unlocks.
- ``OrganizationWebhook``: where an organization wants HMAC-signed "access changed" calls.
"""

import datetime as dt

import pgtrigger
from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateRangeField, RangeOperators
from django.db import models
from django.db.models import F, Func, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.models import Creator, Organization


class DateRange(Func):
    """``daterange(start, end, '[]')``: an end date is valid through the end of that day."""

    function = "DATERANGE"
    output_field = DateRangeField()


# The lists' sort key (GRANT-7, GRANT-8): the end date, and for live_room grants (no end date)
# a date after every real one, so NULLs sort last and keyset cursors compare plain dates. The
# organization's list index is built on this very expression (the planner matches it).
LIST_END_NONE = dt.date(9999, 12, 31)
LIST_END = Coalesce("end_date", Value(LIST_END_NONE), output_field=models.DateField())


class Scope(models.TextChoices):
    ALL_DATA = "all_data", _("全部带货数据")
    LIVE_ROOM = "live_room", _("单个直播间数据")


class GrantState(models.TextChoices):
    AUTHORIZED = "authorized", _("已授权")
    SCHEDULED = "scheduled", _("待生效")
    EXPIRED = "expired", _("已到期")
    REVOKED = "revoked", _("已被解除授权")


@pgtrigger.register(
    # A room belongs to its creator for good: the access check caches room → creator.
    pgtrigger.ReadOnly(name="authorization_room_creator_fixed", fields=["creator"]),
)
class LiveRoom(models.Model):
    creator = models.ForeignKey(
        Creator, on_delete=models.CASCADE, related_name="live_rooms", verbose_name=_("达人")
    )
    title = models.CharField(_("直播间标题"), max_length=200)
    started_at = models.DateTimeField(_("开播时间"))
    ended_at = models.DateTimeField(_("下播时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "直播间")
        verbose_name_plural = _("直播间")
        indexes = [models.Index(name="authz_room_creator", fields=["creator", "-started_at"])]

    def __str__(self):
        return self.title


class CreatorDailySales(models.Model):
    """A creator's sales per business day: what an ``all_data`` grant unlocks."""

    creator = models.ForeignKey(
        Creator, on_delete=models.CASCADE, related_name="daily_sales", verbose_name=_("达人")
    )
    date = models.DateField(_("日期"))
    gmv_fen = models.BigIntegerField(_("成交金额(分)"))
    orders = models.IntegerField(_("订单数"))
    viewers = models.IntegerField(_("观看人数"))

    class Meta:
        verbose_name = pgettext_lazy("singular", "达人每日数据")
        verbose_name_plural = _("达人每日数据")
        constraints = [
            models.UniqueConstraint(name="authorization_dailysales_one_per_day", fields=["creator", "date"]),
            models.CheckConstraint(
                name="authorization_dailysales_non_negative",
                condition=Q(gmv_fen__gte=0, orders__gte=0, viewers__gte=0),
            ),
        ]

    def __str__(self):
        return f"{self.creator_id} {self.date}"


class LiveRoomSales(models.Model):
    """A live room's sales per hour: what a ``live_room`` grant unlocks."""

    live_room = models.ForeignKey(
        LiveRoom,
        on_delete=models.CASCADE,
        related_name="sales",
        verbose_name=pgettext_lazy("singular", "直播间"),
    )
    hour_at = models.DateTimeField(_("时段"))
    gmv_fen = models.BigIntegerField(_("成交金额(分)"))
    orders = models.IntegerField(_("订单数"))
    viewers = models.IntegerField(_("观看人数"))

    class Meta:
        verbose_name = pgettext_lazy("singular", "直播间数据")
        verbose_name_plural = _("直播间数据")
        constraints = [
            models.UniqueConstraint(
                name="authorization_roomsales_one_per_hour", fields=["live_room", "hour_at"]
            ),
            models.CheckConstraint(
                name="authorization_roomsales_non_negative",
                condition=Q(gmv_fen__gte=0, orders__gte=0, viewers__gte=0),
            ),
        ]

    def __str__(self):
        return f"{self.live_room_id} {self.hour_at:%Y-%m-%d %H:%M}"


class Grant(models.Model):
    creator = models.ForeignKey(
        Creator, on_delete=models.PROTECT, related_name="grants", verbose_name=_("达人")
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="grants_received", verbose_name=_("组织")
    )
    scope = models.CharField(_("授权范围"), max_length=20, choices=Scope.choices)
    live_room = models.ForeignKey(
        LiveRoom,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grants",
        verbose_name=pgettext_lazy("singular", "直播间"),
    )
    start_date = models.DateField(_("开始日期"))
    # Null only for live_room grants: they last until revoked.
    end_date = models.DateField(_("截止日期"), null=True, blank=True)
    # The row the lists show for its (creator, organization[, room]): the newest one.
    is_current = models.BooleanField(_("当前记录"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("创建人"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("解除授权时间"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("解除授权人"),
    )
    revoke_reason = models.CharField(_("解除原因"), max_length=300, blank=True)
    # Bookkeeping of the daily job (the end date whose expiry it recorded); never decides access.
    expiry_recorded_for = models.DateField(_("已记录到期日"), null=True, blank=True)
    # The end date both parties were reminded of (GRANT-10); a new end date is reminded again.
    reminder_sent_for = models.DateField(_("已提醒到期日"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "数据授权")
        verbose_name_plural = _("数据授权")
        constraints = [
            models.CheckConstraint(
                name="authorization_grant_scope_valid", condition=Q(scope__in=["all_data", "live_room"])
            ),
            # GRANT-1: all_data has a window and no room; live_room names its room.
            models.CheckConstraint(
                name="authorization_grant_scope_room",
                condition=Q(scope="all_data", live_room__isnull=True, end_date__isnull=False)
                | Q(scope="live_room", live_room__isnull=False),
            ),
            models.CheckConstraint(
                name="authorization_grant_end_after_start",
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
            ),
            models.CheckConstraint(
                name="authorization_grant_revoked_by_needs_at",
                condition=Q(revoked_by__isnull=True) | Q(revoked_at__isnull=False),
            ),
            # At most one live all_data grant per pair at any date (renewals move the window).
            ExclusionConstraint(
                name="authorization_grant_one_live_all_data",
                expressions=[
                    ("creator", RangeOperators.EQUAL),
                    ("organization", RangeOperators.EQUAL),
                    (DateRange("start_date", "end_date", Value("[]")), RangeOperators.OVERLAPS),
                ],
                condition=Q(revoked_at__isnull=True, scope="all_data"),
            ),
            models.UniqueConstraint(
                name="authorization_grant_one_live_room_grant",
                fields=["organization", "live_room"],
                condition=Q(revoked_at__isnull=True, scope="live_room"),
            ),
            models.UniqueConstraint(
                name="authorization_grant_one_current_all_data",
                fields=["creator", "organization"],
                condition=Q(is_current=True, scope="all_data"),
            ),
            models.UniqueConstraint(
                name="authorization_grant_one_current_room",
                fields=["organization", "live_room"],
                condition=Q(is_current=True, scope="live_room"),
            ),
        ]
        indexes = [
            # GRANT-8: the organization's list, nearest end date first, live rooms (no end
            # date) last; keyset pages seek (LIST_END, id) and the state filters are LIST_END
            # ranges, all on this one index whatever the page depth.
            models.Index(
                F("organization"),
                LIST_END,
                F("id"),
                name="authz_grant_org_keyset",
                condition=Q(is_current=True),
            ),
            # GRANT-9: a sub-account's list is live_room grants only; without this it would
            # walk past every all_data row of the organization to reach them.
            models.Index(
                F("organization"),
                LIST_END,
                F("id"),
                name="authz_grant_org_rooms",
                condition=Q(is_current=True, scope="live_room"),
            ),
            # GRANT-7: the creator's all_data list, nearest end date first.
            models.Index(
                name="authz_grant_creator_list",
                fields=["creator", "end_date", "id"],
                condition=Q(is_current=True, scope="all_data"),
            ),
            # GRANT-11: the access check reads the current rows of one pair.
            models.Index(
                name="authz_grant_pair",
                fields=["organization", "creator"],
                condition=Q(is_current=True),
            ),
            # Daily job: only grants whose expiry is not yet recorded stay in this index.
            models.Index(
                name="authz_grant_expiry_due",
                fields=["end_date"],
                condition=Q(revoked_at__isnull=True, scope="all_data")
                & (Q(expiry_recorded_for__isnull=True) | Q(expiry_recorded_for__lt=F("end_date"))),
            ),
        ]

    def __str__(self):
        return f"{self.creator_id}→{self.organization_id} {self.scope} [{self.start_date}, {self.end_date}]"


@pgtrigger.register(
    pgtrigger.Protect(name="authorization_event_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
)
class GrantEvent(models.Model):
    """Every operation on a grant, visible to both parties. Append-only (database trigger)."""

    class Operation(models.TextChoices):
        AUTHORIZE = "authorize", _("授权")
        REVOKE = "revoke", _("解除授权")
        EARLY_RENEW = "early_renew", _("提前续约")
        RENEW = "renew", _("续约")
        EXPIRE = "expire", _("到期")

    grant = models.ForeignKey(
        Grant,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=pgettext_lazy("singular", "数据授权"),
    )
    operation = models.CharField(_("操作"), max_length=20, choices=Operation.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("操作人"),
    )
    old_start_date = models.DateField(_("原开始日期"), null=True, blank=True)
    old_end_date = models.DateField(_("原截止日期"), null=True, blank=True)
    new_start_date = models.DateField(_("新开始日期"), null=True, blank=True)
    new_end_date = models.DateField(_("新截止日期"), null=True, blank=True)
    reason = models.CharField(_("原因"), max_length=300, blank=True)
    at = models.DateTimeField(_("时间"), default=timezone.now)
    # The renew forms' one-time token (the API's Idempotency-Key): the same request sent again is
    # told apart from a new one, and is recorded at most once per grant (GRANT-5, GRANT-6).
    request_key = models.CharField(_("请求键"), max_length=100, null=True, blank=True, editable=False)

    class Meta:
        verbose_name = pgettext_lazy("singular", "授权记录")
        verbose_name_plural = _("授权记录")
        indexes = [models.Index(name="authz_event_grant", fields=["grant", "at"])]
        constraints = [
            models.CheckConstraint(
                name="authorization_event_operation_valid",
                condition=Q(operation__in=["authorize", "revoke", "early_renew", "renew", "expire"]),
            ),
            # The daily job records one expiry per end date, however often it runs.
            models.UniqueConstraint(
                name="authorization_event_expire_once",
                fields=["grant", "old_end_date"],
                condition=Q(operation="expire"),
            ),
            models.UniqueConstraint(
                name="authorization_event_once_per_request_key",
                fields=["grant", "request_key"],
                condition=Q(request_key__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.operation} grant#{self.grant_id}"


class LiveRoomRequest(models.Model):
    """GRANT-3: an organization asks for one live room's data; the creator decides."""

    VALID_DAYS = 7

    class Status(models.TextChoices):
        PENDING = "pending", _("待处理")
        AUTHORIZED = "authorized", _("已授权")
        REJECTED = "rejected", _("已拒绝")
        EXPIRED = "expired", _("已过期")

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="live_room_requests", verbose_name=_("组织")
    )
    live_room = models.ForeignKey(
        LiveRoom,
        on_delete=models.CASCADE,
        related_name="requests",
        verbose_name=pgettext_lazy("singular", "直播间"),
    )
    # = live_room.creator, kept here so the creator's pending list is one index range.
    creator = models.ForeignKey(
        Creator, on_delete=models.CASCADE, related_name="live_room_requests", verbose_name=_("达人")
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("申请人")
    )
    created_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    expires_at = models.DateTimeField(_("过期时间"))
    status = models.CharField(_("状态"), max_length=20, choices=Status.choices, default=Status.PENDING)
    decided_at = models.DateTimeField(_("处理时间"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("处理人"),
    )
    grant = models.ForeignKey(
        Grant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=pgettext_lazy("singular", "数据授权"),
    )

    class Meta:
        verbose_name = pgettext_lazy("singular", "直播间授权申请")
        verbose_name_plural = _("直播间授权申请")
        constraints = [
            models.CheckConstraint(
                name="authorization_request_status_valid",
                condition=Q(status__in=["pending", "authorized", "rejected", "expired"]),
            ),
            models.CheckConstraint(
                name="authorization_request_authorized_has_grant",
                condition=Q(status="authorized", grant__isnull=False)
                | (~Q(status="authorized") & Q(grant__isnull=True)),
            ),
            models.CheckConstraint(
                name="authorization_request_expires_after_created",
                condition=Q(expires_at__gt=F("created_at")),
            ),
            models.UniqueConstraint(
                name="authorization_request_one_pending",
                fields=["organization", "live_room"],
                condition=Q(status="pending"),
            ),
        ]
        indexes = [
            models.Index(
                name="authz_request_creator",
                fields=["creator", "expires_at"],
                condition=Q(status="pending"),
            ),
            models.Index(name="authz_request_org", fields=["organization", "-created_at"]),
        ]

    def __str__(self):
        return f"{self.organization_id} → room {self.live_room_id} ({self.status})"


class OrganizationWebhook(models.Model):
    """An organization's endpoint for 'access changed' events (revoked, expired), HMAC-SHA256.

    Set by the organization's main account (settings page / API) or grant-ops in the admin.
    The secret is kept in clear because signing needs it; the portal shows it once, when it is
    generated, and deliveries always sign with the secret current at send time.
    """

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="grant_webhook", verbose_name=_("组织")
    )
    url = models.URLField(_("回调地址"), max_length=500)
    secret = models.CharField(_("签名密钥"), max_length=200)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    secret_rotated_at = models.DateTimeField(_("密钥生成时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("授权变更回调")
        verbose_name_plural = pgettext_lazy("plural", "授权变更回调")

    def __str__(self):
        return f"{self.organization} → {self.url}"


# A delivery is finished once an attempt has answered (delivered) or failed; a failed one may
# still be retried for a few minutes (tasks.webhook_deliver), which moves finished_at forward.
FINISHED_STATUSES = ("delivered", "failed")


class WebhookDelivery(models.Model):
    """One event sent (or being sent) to an organization's webhook: what the settings page
    lists as recent deliveries. Written by the delivery task on every attempt.

    A row is queued to Celery after commit; if the broker loses that task it would stay
    ``pending`` for ever. The sweeper (``webhook_deliveries_requeue_stale``) re-queues such a
    row at most once per stale period, counting in ``requeues`` and stamping ``requeued_at``
    under a row lock, and marks it failed after a few re-queues."""

    class Status(models.TextChoices):
        PENDING = "pending", _("发送中")
        DELIVERED = "delivered", _("已送达")
        FAILED = "failed", _("失败")

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", verbose_name=_("组织")
    )
    event = models.CharField(_("事件"), max_length=50)
    payload = models.JSONField(_("消息内容"))
    url = models.URLField(_("回调地址"), max_length=500, blank=True)
    status = models.CharField(_("状态"), max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0)
    response_status = models.PositiveIntegerField(_("响应状态码"), null=True, blank=True)
    error = models.CharField(_("错误"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    requeued_at = models.DateTimeField(_("重新排队时间"), null=True, blank=True)
    requeues = models.PositiveIntegerField(_("重新排队次数"), default=0)
    # Set by the run that is POSTing the delivery right now, for at most the task's hard time
    # limit; another run of the same delivery (a late original, a re-queue) sends nothing
    # while it is in the future. Cleared when the attempt's outcome is recorded.
    sending_until = models.DateTimeField(_("发送租约到期"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "回调发送记录")
        verbose_name_plural = _("回调发送记录")
        constraints = [
            models.CheckConstraint(
                name="authorization_delivery_status_valid",
                condition=Q(status__in=["pending", "delivered", "failed"]),
            ),
        ]
        indexes = [
            models.Index(name="authz_delivery_org", fields=["organization", "-created_at", "-id"]),
            # The daily prune finds finished deliveries by age through this (partial: pending
            # rows, the few still in flight, are never pruned and stay out of it).
            models.Index(
                name="authz_delivery_finished",
                fields=["finished_at"],
                condition=Q(status__in=FINISHED_STATUSES),
            ),
            # The sweeper finds pending rows by when they were last queued through this
            # (partial: the pending rows are few; the expression is the one it filters on).
            models.Index(
                Coalesce("requeued_at", "created_at"),
                name="authz_delivery_pending_queued",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self):
        return f"{self.organization_id} {self.event} ({self.status})"
