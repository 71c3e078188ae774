"""The organization's GRANT-11 webhook, set by its main account (GRANT-9: sub-accounts see no
all_data grants, so they neither receive nor configure what their revocations announce).

- ``webhook_configure`` sets the URL (and on/off); the first call generates the signing secret,
  returned once. ``webhook_secret_rotate`` replaces it, returned once; the portal never shows
  a secret again, and every delivery signs with the secret current when it is sent.
- Every event to an organization is a ``WebhookDelivery`` row, created after commit by the
  grant services (revoked / expired) or by ``webhook_send_test``; the Celery task calls
  ``webhook_delivery_send`` and records each attempt, so the settings page shows what
  happened.
- ``webhook_deliveries_prune`` (daily beat) deletes finished deliveries older than
  ``settings.WEBHOOK_DELIVERY_RETENTION_DAYS``, in primary-key batches; pending ones stay.
- ``webhook_deliveries_requeue_stale`` (beat, every few minutes) re-queues deliveries the
  broker lost (still pending ``settings.WEBHOOK_DELIVERY_STALE_MINUTES`` after they were
  queued) and fails them after ``REQUEUE_LIMIT`` re-queues: nothing is lost on a crash.
  ``webhook_delivery_send`` sends nothing for a row already delivered, nor while another run
  holds the row's sending lease, so a late original task and a re-queue never POST at the same
  time, never send a delivered row again and never undo a delivered row.
"""

import datetime as dt
import ipaddress
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from authorization import locks, webhooks
from authorization.models import FINISHED_STATUSES, OrganizationWebhook, WebhookDelivery
from portal.errors import DomainError, NotFound
from portal.models import Membership
from portal.services import audit_record

TEST_EVENT = "webhook.test"
PRUNE_BATCH_SIZE = 1000
REQUEUE_BATCH_SIZE = 500
REQUEUE_LIMIT = 3


def _require_main(membership: Membership | None) -> Membership:
    """Not a member: 404 (as elsewhere); a sub-account: 403, it knows its organization."""
    if membership is None:
        raise NotFound()
    if not membership.is_main:
        raise DomainError("GRANT-9", _("只有主账号可以管理授权变更回调。"), status=403)
    return membership


def https_only() -> bool:
    """Production (DEBUG off) accepts https only; a developer may point it at http://localhost."""
    return getattr(settings, "AUTHORIZATION_WEBHOOK_HTTPS_ONLY", not settings.DEBUG)


def webhook_url_validate(url: str) -> str:
    """A clear error on the ``url`` field: well-formed, https in production, and (in production)
    not a loopback / private / link-local address literal, which would let an organization
    make the portal call its own network."""
    url = (url or "").strip()
    if not url:
        raise DomainError("invalid", _("请填写回调地址(url)。"), field="url")
    schemes = ["https"] if https_only() else ["http", "https"]
    scheme = urlsplit(url).scheme.lower()
    if "://" in url and scheme not in schemes:
        raise DomainError("invalid", _("回调地址(url)必须使用 https。"), field="url")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise DomainError("invalid", _("回调地址(url)格式不正确。"), field="url") from exc
    if len(url) > OrganizationWebhook._meta.get_field("url").max_length:
        raise DomainError("invalid", _("回调地址(url)太长。"), field="url")
    parts = urlsplit(url)
    if https_only():
        host = (parts.hostname or "").lower()
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if host == "localhost" or host.endswith(".localhost") or (ip is not None and not ip.is_global):
            raise DomainError("invalid", _("回调地址(url)不能指向本机或内网地址。"), field="url")
    return url


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def webhook_get(*, membership: Membership) -> OrganizationWebhook | None:
    _require_main(membership)
    return OrganizationWebhook.objects.filter(organization_id=membership.organization_id).first()


def webhook_configure(
    *, membership: Membership, url: str, is_active: bool = True, actor
) -> tuple[OrganizationWebhook, str | None]:
    """Set the URL (create the webhook on first use). Returns (webhook, secret): the secret
    only when it was just generated, to show once."""
    _require_main(membership)
    url = webhook_url_validate(url)
    now = timezone.now()
    with transaction.atomic():
        hook, created = OrganizationWebhook.objects.get_or_create(
            organization_id=membership.organization_id,
            defaults={"url": url, "is_active": is_active, "secret": _new_secret(), "secret_rotated_at": now},
        )
        if not created:
            hook.url, hook.is_active = url, is_active
            hook.save(update_fields=["url", "is_active", "updated_at"])
        audit_record(
            actor=actor,
            action="grant_webhook.add" if created else "grant_webhook.change",
            obj=hook,
            details={"url": url, "is_active": is_active},
        )
    return hook, (hook.secret if created else None)


def webhook_secret_rotate(*, membership: Membership, actor) -> tuple[OrganizationWebhook, str]:
    """A new signing secret, effective for every delivery sent from now on (retries included)."""
    _require_main(membership)
    secret, now = _new_secret(), timezone.now()
    with transaction.atomic():
        updated = OrganizationWebhook.objects.filter(organization_id=membership.organization_id).update(
            secret=secret, secret_rotated_at=now, updated_at=now
        )
        if not updated:
            raise DomainError("invalid", _("请先设置回调地址(url)。"), field="url")
        hook = OrganizationWebhook.objects.get(organization_id=membership.organization_id)
        audit_record(actor=actor, action="grant_webhook.rotate_secret", obj=hook, details={})
    return hook, secret


def webhook_send_test(*, membership: Membership, actor) -> WebhookDelivery:
    """Queue a signed test event to the configured URL; its result shows among the deliveries."""
    hook = webhook_get(membership=membership)
    if hook is None:
        raise DomainError("invalid", _("请先设置回调地址(url)。"), field="url")
    if not hook.is_active:
        raise DomainError("invalid", _("回调已停用。请先启用。"), field="is_active")
    payload = {"event": TEST_EVENT, "organization_id": membership.organization_id, "grants": []}
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            organization_id=membership.organization_id, event=TEST_EVENT, payload=payload, url=hook.url
        )
        _queue(delivery)
    return delivery


def deliveries_record(by_org: dict[int, list[dict]], *, event: str) -> list[WebhookDelivery]:
    """Record one pending delivery per hooked organization, in the caller's transaction (the
    grant change and its deliveries commit together); ``deliveries_queue`` after the commit."""
    hooks = dict(
        OrganizationWebhook.objects.filter(organization_id__in=by_org, is_active=True).values_list(
            "organization_id", "url"
        )
    )
    rows = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            organization_id=org_id,
            event=event,
            payload={"event": event, "grants": by_org[org_id]},
            url=hooks[org_id],
        )
        for org_id in sorted(hooks)
    )
    return rows


def deliveries_queue(deliveries: list[WebhookDelivery]) -> None:
    """Send each recorded delivery to the worker (after the commit that recorded them)."""
    for delivery in deliveries:
        _queue(delivery, on_commit=False)


def _queue(delivery: WebhookDelivery, *, on_commit: bool = True) -> None:
    from authorization.tasks import webhook_deliver

    def send():
        webhook_deliver.delay(delivery.organization_id, delivery.payload, delivery_id=delivery.pk)

    if on_commit:
        transaction.on_commit(send)
    else:
        send()


def webhook_delivery_send(
    *, organization_id: int, payload: dict, delivery_id: int | None = None
) -> int | None:
    """One attempt: POST the payload signed with the webhook's current secret and record the
    outcome on the delivery. Raises ``OSError`` on network errors and HTTP >= 400 (the task
    retries); returns the HTTP status, or None when the webhook is gone or disabled, or when
    the delivery is already delivered (or gone) and nothing is sent.

    Every write is conditional on the row not being delivered: the same delivery may run twice
    (a task the broker redelivers late after the sweeper re-queued it), and the second run must
    neither send again once the first has delivered nor turn a delivered row failed. A run
    claims the row before it POSTs (``sending_until``, a lease as long as the task's hard time
    limit), so two runs at the same moment send once: the other finds the lease held and sends
    nothing. A run that dies mid-POST holds the lease only until its time limit; the task's
    retry or the sweeper then sends. Receivers stay idempotent on (grant_id, reason): a POST
    whose answer was lost is sent again."""
    hook = OrganizationWebhook.objects.filter(organization_id=organization_id, is_active=True).first()
    deliveries = WebhookDelivery.objects.filter(pk=delivery_id, organization_id=organization_id).exclude(
        status=WebhookDelivery.Status.DELIVERED
    )
    if hook is None:
        deliveries.update(
            status=WebhookDelivery.Status.FAILED,
            error=_("回调已删除或停用。"),
            finished_at=timezone.now(),
            sending_until=None,
        )
        return None
    now = timezone.now()
    claimed = deliveries.filter(Q(sending_until__isnull=True) | Q(sending_until__lt=now)).update(
        attempts=F("attempts") + 1, url=hook.url, sending_until=now + sending_lease()
    )
    if delivery_id is not None and not claimed:
        return None  # delivered, pruned, or being sent by another run right now: nothing to send
    try:
        # In production the host is resolved once, refused if any address is internal, and
        # the connection goes to the address that was checked (authorization.webhooks).
        status = webhooks.post(url=hook.url, secret=hook.secret, payload=payload, public_only=https_only())
    except webhooks.InternalAddressRefused:
        deliveries.update(
            status=WebhookDelivery.Status.FAILED,
            error=_("回调地址(url)解析到本机或内网地址。已拒绝发送。"),
            finished_at=timezone.now(),
            sending_until=None,
        )
        return None  # not a transient failure: no retry
    except OSError as exc:
        deliveries.update(
            status=WebhookDelivery.Status.FAILED,
            response_status=getattr(exc, "code", None),
            error=str(exc)[:300],
            finished_at=timezone.now(),
            sending_until=None,
        )
        raise
    deliveries.update(
        status=WebhookDelivery.Status.DELIVERED,
        response_status=status,
        error="",
        finished_at=timezone.now(),
        sending_until=None,
    )
    return status


def sending_lease() -> dt.timedelta:
    """How long a run holds a delivery while it POSTs: the task's hard time limit, after which
    the run is dead for certain."""
    from authorization.tasks import webhook_deliver as task

    return dt.timedelta(seconds=task.time_limit)


def webhook_deliveries_prune(
    *, now: dt.datetime | None = None, retention_days: int | None = None, batch_size: int = PRUNE_BATCH_SIZE
) -> int:
    """Delete deliveries that finished (delivered or failed) more than ``retention_days``
    (default ``settings.WEBHOOK_DELIVERY_RETENTION_DAYS``) ago; return how many went.

    Age is counted from ``finished_at``, not ``created_at``: a failed attempt is retried by the
    task within minutes and each attempt moves ``finished_at`` forward, so a row finished a day
    or more ago has no retry left. Pending rows (no ``finished_at``) are never deleted.

    One short transaction per batch of at most ``batch_size`` primary keys, found through the
    partial index ``authz_delivery_finished``: no long lock and no giant DELETE on a large
    table. The DELETE repeats the age condition, so a row that changed since it was picked is
    left alone. Safe to run twice or concurrently: a row already deleted is simply not found.
    """
    retention_days = settings.WEBHOOK_DELIVERY_RETENTION_DAYS if retention_days is None else retention_days
    if retention_days < 1:
        raise ImproperlyConfigured("WEBHOOK_DELIVERY_RETENTION_DAYS must be at least 1.")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    cutoff = (now or timezone.now()) - dt.timedelta(days=retention_days)
    old = WebhookDelivery.objects.filter(status__in=FINISHED_STATUSES, finished_at__lt=cutoff)
    deleted = 0
    while True:
        pks = list(old.order_by("finished_at").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return deleted
        count, _ = old.filter(pk__in=pks).delete()
        deleted += count
        if len(pks) < batch_size:
            return deleted


def webhook_retry_schedule() -> dt.timedelta:
    """The longest a delivery task can take over all its attempts, from its own retry
    settings: every attempt at its hard time limit plus every backoff at its maximum
    (Celery waits ``min(retry_backoff_max, factor * 2**retries)``, less with jitter)."""
    from authorization.tasks import webhook_deliver as task

    factor = int(task.retry_backoff)  # True means a factor of 1 second
    waits = sum(min(task.retry_backoff_max, factor * 2**n) for n in range(task.max_retries))
    return dt.timedelta(seconds=waits + (task.max_retries + 1) * task.time_limit)


def webhook_deliveries_requeue_stale(
    *,
    now: dt.datetime | None = None,
    stale_after: dt.timedelta | None = None,
    max_requeues: int = REQUEUE_LIMIT,
    batch_size: int = REQUEUE_BATCH_SIZE,
) -> dict[str, int]:
    """Re-queue deliveries the broker lost; return how many were re-queued and given up.

    A delivery is queued after commit; a crash between commit and publish, or a flushed Redis,
    leaves its row ``pending`` with no task to send it. A row still pending ``stale_after``
    (default ``settings.WEBHOOK_DELIVERY_STALE_MINUTES``) after it was last queued
    (``requeued_at``, else ``created_at``) is queued again, ``requeues`` counting; one that
    has already been re-queued ``max_requeues`` times is marked failed instead.

    ``stale_after`` must exceed the task's whole retry schedule, so a row whose task is merely
    slow is not taken for lost. Rows are locked in batches of ``batch_size`` (FOR UPDATE SKIP
    LOCKED) and stamped in the same short transaction that queues them on commit: a concurrent
    sweep skips them, and once committed they are no longer stale, so each is queued at most
    once per sweep and per stale period. A row the original task delivers meanwhile is not
    pending any more and is left alone; a late original after a re-queue finds it delivered
    (``webhook_delivery_send``).
    """
    if stale_after is None:
        stale_after = dt.timedelta(minutes=settings.WEBHOOK_DELIVERY_STALE_MINUTES)
    if stale_after <= webhook_retry_schedule():
        raise ImproperlyConfigured(
            "WEBHOOK_DELIVERY_STALE_MINUTES must exceed the delivery task's retry schedule "
            f"({webhook_retry_schedule()})."
        )
    if max_requeues < 0:
        raise ValueError("max_requeues must not be negative.")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    now = now or timezone.now()
    requeued = failed = 0
    while True:
        with transaction.atomic():
            stale = locks.lock_stale_deliveries(queued_before=now - stale_after, limit=batch_size)
            give_up = [d.pk for d in stale if d.requeues >= max_requeues]
            again = [d for d in stale if d.requeues < max_requeues]
            if give_up:
                WebhookDelivery.objects.filter(pk__in=give_up).update(
                    status=WebhookDelivery.Status.FAILED,
                    error=_("发送任务丢失,已重新排队 %(n)d 次仍未发送。已放弃。") % {"n": max_requeues},
                    finished_at=now,
                )
            if again:
                WebhookDelivery.objects.filter(pk__in=[d.pk for d in again]).update(
                    requeues=F("requeues") + 1, requeued_at=now
                )
            for delivery in again:
                _queue(delivery)  # after commit, as the first time
        requeued += len(again)
        failed += len(give_up)
        if len(stale) < batch_size:
            return {"requeued": requeued, "failed": failed}
