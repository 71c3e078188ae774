"""Parties (P-1..P-4) and the cross-cutting records every domain app writes.

- ``User`` is the one login (P-1), custom from the first migration.
- ``Organization`` is a shop, agency or service provider (P-2); people belong to it through
  ``Membership`` with role main (主账号) or sub (子账号). At most one main membership per
  organization is a partial unique constraint, so no race or admin edit can create two.
- ``Creator`` is a user's creator profile (P-3, 达人).
- ``AuditEntry`` records every staff action (P-4) and ``Notification`` the in-portal inbox;
  the audit trail is append-only, enforced by a database trigger. A notification keeps its
  untranslated source text and parameters, so it reads in each reader's language.
- ``ApiKey`` lets machine clients call the API for one organization; only a hash is stored.
- ``OutboundEmail`` is the transactional outbox of notification emails: written in the
  notification's transaction, sent after commit, swept by beat when that send never happened
  or failed (``portal.services.outbound_emails_send_due``), so a crash loses no email.
"""

import hashlib
import secrets

import pgtrigger
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    display_name = models.CharField(_("显示名称"), max_length=100, blank=True)
    # The language the user picked with the switch (empty: the portal's default). Pages follow
    # it once the user signs in, on any browser; emails to the user are written in it.
    language = models.CharField(_("语言"), max_length=10, blank=True, choices=settings.LANGUAGES)

    def __str__(self):
        return self.display_name or self.username


class Organization(models.Model):
    class Kind(models.TextChoices):
        SHOP = "shop", _("商家/店铺")
        AGENCY = "agency", _("机构")
        SERVICE_PROVIDER = "service_provider", _("服务商")

    name = models.CharField(_("名称"), max_length=200)
    kind = models.CharField(_("类型"), max_length=20, choices=Kind.choices)
    contact_email = models.EmailField(_("联系邮箱"), blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("组织")
        verbose_name_plural = pgettext_lazy("plural", "组织")
        indexes = [
            # Name search stays fast at 50,000 organizations: Django's icontains compiles to
            # UPPER(name) LIKE UPPER(%s), so the trigram GIN index is on UPPER(name).
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="portal_org_name_upper_trgm"),
        ]
        constraints = [
            models.CheckConstraint(
                name="portal_organization_kind_valid",
                condition=models.Q(kind__in=["shop", "agency", "service_provider"]),
            ),
        ]

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        MAIN = "main", _("主账号")
        SUB = "sub", _("子账号")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("用户")
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("组织")
    )
    role = models.CharField(_("角色"), max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("成员")
        verbose_name_plural = pgettext_lazy("plural", "成员")
        constraints = [
            models.UniqueConstraint(
                name="portal_membership_one_per_user_org", fields=["user", "organization"]
            ),
            # P-2: an organization has at most one main account.
            models.UniqueConstraint(
                name="portal_membership_one_main_per_org",
                fields=["organization"],
                condition=models.Q(role="main"),
            ),
            models.CheckConstraint(
                name="portal_membership_role_valid", condition=models.Q(role__in=["main", "sub"])
            ),
        ]

    def __str__(self):
        return f"{self.user} @ {self.organization} ({self.role})"

    @property
    def is_main(self) -> bool:
        return self.role == self.Role.MAIN


class Creator(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="creator", verbose_name=_("用户")
    )
    nickname = models.CharField(_("昵称"), max_length=100)
    douyin_id = models.CharField(_("抖音号"), max_length=64, unique=True)
    avatar_url = models.CharField(_("头像"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("达人")
        verbose_name_plural = pgettext_lazy("plural", "达人")
        indexes = [
            GinIndex(OpClass(Upper("nickname"), name="gin_trgm_ops"), name="portal_creator_nick_upper_trgm")
        ]

    def __str__(self):
        return self.nickname


@pgtrigger.register(
    pgtrigger.Protect(name="portal_audit_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
)
class AuditEntry(models.Model):
    """Who did what to which object, and when. Append-only."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("操作人"),
    )
    action = models.CharField(_("操作"), max_length=100)
    object_type = models.CharField(_("对象类型"), max_length=100)
    object_id = models.CharField(_("对象 ID"), max_length=64)
    details = models.JSONField(_("详情"), default=dict, blank=True)
    at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "审计记录")
        verbose_name_plural = _("审计记录")
        indexes = [
            models.Index(name="portal_audit_object", fields=["object_type", "object_id"]),
            # Admin search by object id alone (the index above leads with the type).
            models.Index(name="portal_audit_object_id", fields=["object_id"]),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_type}#{self.object_id}"


class Notification(models.Model):
    """In-portal inbox. Sent to a user, or to every member of an organization (user null)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("用户"),
    )
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("组织"),
    )
    kind = models.CharField(_("通知类型"), max_length=60)
    # The text as rendered when sent, in the portal's default language: what the email
    # carries, what admin lists, and all a row written before title_msgid existed has.
    title = models.CharField(_("标题"), max_length=200)
    body = models.TextField(_("内容"), blank=True)
    # The untranslated source msgids (Chinese, with %(name)s placeholders) and their values.
    # Translated when shown, so one row sent to an organization reads in each member's language.
    title_msgid = models.CharField(_("标题原文"), max_length=200, blank=True, default="")
    body_msgid = models.TextField(_("内容原文"), blank=True, default="")
    params = models.JSONField(_("参数"), default=dict, blank=True)
    url = models.CharField(_("链接"), max_length=300, blank=True)
    # Idempotency for jobs that notify ("grant 5 ends in 7 days" is sent once).
    dedupe_key = models.CharField(_("去重键"), max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(_("发送时间"), auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "通知")
        verbose_name_plural = _("通知")
        constraints = [
            models.CheckConstraint(
                name="portal_notification_has_recipient",
                condition=models.Q(user__isnull=False) | models.Q(organization__isnull=False),
            )
        ]

    def __str__(self):
        return self.title

    @property
    def display_title(self) -> str:
        """The title in the active language (the reader's, on a page or API response)."""
        return notification_text_render(self.title_msgid, self.params) if self.title_msgid else self.title

    @property
    def display_body(self) -> str:
        return notification_text_render(self.body_msgid, self.params) if self.body_msgid else self.body


def notification_text_render(msgid: str, params: dict) -> str:
    """Translate a notification's source msgid into the active language and fill it in.

    A translation whose placeholders do not match the stored parameters (a catalogue edited
    after the row was written) falls back to the source text rather than breaking the inbox.
    """
    if not msgid:
        return ""
    for text in (gettext(msgid), msgid):
        try:
            return text % params if params else text
        except (KeyError, ValueError, TypeError):
            continue
    return msgid


class OutboundEmail(models.Model):
    """One email of a notification to the recipients who read one language (the outbox).

    Written in the same transaction as its ``Notification``: a rollback writes neither, a
    commit always has both. After the commit the sender tries at once; the beat sweeper sends
    a row whose immediate send never ran (a crash, after ``next_attempt_at``, a grace of two
    minutes) and retries a failed one with back-off, until ``EMAIL_OUTBOX_MAX_ATTEMPTS``
    attempts have failed (state failed; staff may resend it from admin).

    A sender holds the row's lock (FOR UPDATE SKIP LOCKED) from before the SMTP call until the
    state is written, so two senders never send one row twice. Delivery is at-least-once only
    across a crash between the mail server accepting the email and that commit: the row is
    still pending then, and is sent again.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("待发送")
        SENT = "sent", _("已发送")
        FAILED = "failed", _("发送失败")

    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="emails",
        verbose_name=pgettext_lazy("singular", "通知"),
    )
    language = models.CharField(_("语言"), max_length=10)
    recipients = ArrayField(models.CharField(max_length=254), verbose_name=_("收件人"))
    subject = models.TextField(_("主题"))
    text = models.TextField(_("正文"))
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0)
    last_error = models.CharField(_("最近错误"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    # When the sweeper may (next) send a pending row: a grace after creation for the immediate
    # send, then the back-off after each failed attempt.
    next_attempt_at = models.DateTimeField(_("下次尝试时间"))
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "外发邮件")
        verbose_name_plural = _("外发邮件")
        constraints = [
            models.CheckConstraint(
                name="portal_outboundemail_state_valid",
                condition=models.Q(state__in=["pending", "sent", "failed"]),
            ),
            # sent_at says when the mail server took it: set exactly on sent rows.
            models.CheckConstraint(
                name="portal_outboundemail_sent_at_iff_sent",
                condition=models.Q(state="sent", sent_at__isnull=False)
                | (~models.Q(state="sent") & models.Q(sent_at__isnull=True)),
            ),
            models.CheckConstraint(
                name="portal_outboundemail_has_recipients", condition=models.Q(recipients__len__gt=0)
            ),
        ]
        indexes = [
            # The sweeper's query (partial: pending rows are the few in flight).
            models.Index(
                name="portal_outbound_email_due",
                fields=["next_attempt_at"],
                condition=models.Q(state="pending"),
            ),
            # Admin search by recipient (recipients && ARRAY[...]).
            GinIndex(name="portal_outbound_email_to", fields=["recipients"]),
            # The daily prune finds sent rows by age (``outbound_emails_prune``); pending and
            # failed rows are never pruned and stay out of it.
            models.Index(
                name="portal_outbound_email_sent",
                fields=["sent_at"],
                condition=models.Q(state="sent"),
            ),
        ]

    def __str__(self):
        return f"{self.subject[:60]} → {', '.join(self.recipients)[:80]} ({self.state})"


class ApiKey(models.Model):
    """A machine client's key for one organization. The key is shown once; we keep a hash."""

    PREFIX_LEN = 8

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("组织")
    )
    name = models.CharField(_("名称"), max_length=100)
    prefix = models.CharField(_("前缀"), max_length=PREFIX_LEN, unique=True)
    key_hash = models.CharField(_("密钥哈希"), max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("创建人"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("停用时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("singular", "API 密钥")
        verbose_name_plural = _("API 密钥")

    def __str__(self):
        return f"{self.prefix}… ({self.name})"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def generate(cls) -> tuple[str, str]:
        """Return (prefix, full key). The key is ``<prefix>.<secret>``."""
        prefix = secrets.token_hex(cls.PREFIX_LEN // 2)
        return prefix, f"{prefix}.{secrets.token_urlsafe(32)}"
