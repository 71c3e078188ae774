"""Invoices (FEE-4.3): requests checked under the wallet lock, staff issue or reject.

The invoiceable amount is defined in ``billing.selectors.wallet.invoiceable_fen``: settled
charges covered by credits, minus invoices issued or requested (rejected ones free their
amount again). Never for unspent top-ups, never twice for the same money.
"""

import datetime as dt
import re
import unicodedata

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing import errors, locks
from billing.models import Invoice
from billing.pdf import build_pdf
from billing.selectors.wallet import invoiceable_fen
from portal import clock
from portal.money import format_fen
from portal.services import audit_record, notification_send

# GB 32100-2015 统一社会信用代码: 18 characters from this 31-character alphabet (no I, O, S,
# V, Z); the last one is a check character over the first 17 with these weights.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_normalize(code: str) -> str:
    """The code as stored: a code typed with a Chinese input method arrives in full-width
    characters, which NFKC folds to the ASCII the register uses."""
    return unicodedata.normalize("NFKC", code or "").strip().upper()


def uscc_is_valid(code: str) -> bool:
    code = uscc_normalize(code)
    return bool(_USCC_RE.match(code)) and uscc_check_char(code[:17]) == code[17]


def invoice_request(
    *, organization_id: int, amount_fen: int, title: str, taxpayer_id: str, kind: str, email: str, actor=None
) -> Invoice:
    """Request an invoice of ``amount_fen`` ≤ the invoiceable amount.

    The check and the insert run under the wallet row lock, the lock every balance change
    and every other invoice request of the organization takes: two concurrent requests are
    serialised and the second sees the first one's amount.
    """
    taxpayer_id = uscc_normalize(taxpayer_id)
    if not uscc_is_valid(taxpayer_id):
        raise errors.BillingError(
            errors.TAXPAYER_ID,
            _("纳税人识别号须为 18 位统一社会信用代码 (校验位正确)。"),
            field="taxpayer_id",
        )
    if kind not in Invoice.Kind.values:
        raise errors.BillingError("invalid", "Unknown invoice type.", field="kind")
    if not title or not title.strip():
        raise errors.BillingError("invalid", "A title is required.", field="title")
    if not isinstance(amount_fen, int) or amount_fen <= 0:
        raise errors.BillingError(errors.FEE_4_3, _("金额必须为正数。"), field="amount_fen")
    with transaction.atomic():
        locks.wallet_lock(organization_id=organization_id)
        available = invoiceable_fen(organization_id=organization_id)
        if amount_fen > available:
            raise errors.BillingError(
                errors.FEE_4_3,
                _("开票金额超过可开票金额 %(available)s (仅限已结算并已支付的费用)。")
                % {"available": format_fen(available)},
                field="amount_fen",
            )
        return Invoice.objects.create(
            organization_id=organization_id,
            amount_fen=amount_fen,
            title=title.strip()[:200],
            taxpayer_id=taxpayer_id,
            kind=kind,
            email=email,
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        )


def invoice_pdf_bytes(*, invoice: Invoice) -> bytes:
    return build_pdf(
        title=f"电子发票 Electronic invoice {invoice.number}",
        fields=[
            ("发票号码 Number", invoice.number or ""),
            ("发票类型 Type", str(invoice.get_kind_display())),
            ("购买方 Buyer", invoice.title),
            ("纳税人识别号 Taxpayer ID", invoice.taxpayer_id),
            ("开票日期 Date", f"{clock.local(invoice.reviewed_at or clock.now()):%Y-%m-%d}"),
        ],
        table=[
            ["项目 Item", "金额 Amount"],
            ["技术服务费 Technical service fee (FEE-4.3)", format_fen(invoice.amount_fen)],
        ],
        footer="开放平台技术服务费 · Open platform technical service fees",
        author="开放平台",
    )


def invoice_issue(*, invoice_id: int, actor, now: dt.datetime | None = None) -> Invoice:
    """Staff issue a requested invoice: a number, a PDF, an audit entry, a notice."""
    now = now or clock.now()
    with transaction.atomic():
        invoice = locks.invoice_lock(invoice_id=invoice_id)
        if invoice.state != Invoice.State.REQUESTED:
            raise errors.BillingConflict(errors.FEE_4_3, "Only a requested invoice can be issued.")
        invoice.state = Invoice.State.ISSUED
        invoice.number = f"INV{clock.local(now):%Y%m%d}{invoice.pk:08d}"
        invoice.reviewed_by = actor
        invoice.reviewed_at = now
        invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(invoice_pdf_bytes(invoice=invoice)), save=False)
        invoice.save(update_fields=["state", "number", "reviewed_by", "reviewed_at", "pdf"])
        audit_record(
            actor=actor,
            action="billing.invoice_issue",
            obj=invoice,
            details={"number": invoice.number, "amount_fen": invoice.amount_fen},
        )
        notification_send(
            kind="billing.invoice_issued",
            title=gettext_noop("发票已开具 %(number)s"),
            params={"number": invoice.number},
            url=f"/billing/invoices/{invoice.pk}/",
            organization=invoice.organization,
            dedupe_key=f"billing.invoice_issued:{invoice.pk}",
        )
        return invoice


def invoice_reject(*, invoice_id: int, actor, reason: str, now: dt.datetime | None = None) -> Invoice:
    """Staff reject a request with a reason; its amount becomes invoiceable again."""
    reason = (reason or "").strip()
    if not reason:
        raise errors.BillingError("invalid", "A reason is required.", field="reason")
    with transaction.atomic():
        invoice = locks.invoice_lock(invoice_id=invoice_id)
        if invoice.state != Invoice.State.REQUESTED:
            raise errors.BillingConflict(errors.FEE_4_3, "Only a requested invoice can be rejected.")
        invoice.state = Invoice.State.REJECTED
        invoice.reject_reason = reason[:300]
        invoice.reviewed_by = actor
        invoice.reviewed_at = now or clock.now()
        invoice.save(update_fields=["state", "reject_reason", "reviewed_by", "reviewed_at"])
        audit_record(
            actor=actor,
            action="billing.invoice_reject",
            obj=invoice,
            details={"reason": invoice.reject_reason},
        )
        notification_send(
            kind="billing.invoice_rejected",
            title=gettext_noop("发票申请被驳回"),
            body="%(reason)s",
            params={"reason": invoice.reject_reason},
            url=f"/billing/invoices/{invoice.pk}/",
            organization=invoice.organization,
            dedupe_key=f"billing.invoice_rejected:{invoice.pk}",
        )
        return invoice
