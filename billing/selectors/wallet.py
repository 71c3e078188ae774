"""Wallet reads shared by pages, API, admin and Billing II's gate."""

import datetime as dt

from django.core.cache import cache
from django.db.models import Q, QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from billing import errors
from billing.models import (
    Bill,
    ClosureRequest,
    DepositAccount,
    DepositEntry,
    Invoice,
    LedgerEntry,
    TopUpOrder,
    Wallet,
)
from portal import clock
from portal.models import Membership

# Short lifetime as a backstop only: every balance change deletes the key on commit. The TTL
# bounds the one race a delete cannot close (a reader that read the old balance just before
# the commit and writes its answer just after the delete).
ARREARS_CACHE_SECONDS = 60


def arrears_cache_key(organization_id: int) -> str:
    return f"billing:arrears:{organization_id}"


def wallet_get_for_organization(*, organization_id: int) -> Wallet | None:
    """The organization's wallet, or None when it never had one (balance 0)."""
    return Wallet.objects.filter(organization_id=organization_id).first()


def wallet_balance_fen(*, organization_id: int) -> int:
    wallet = wallet_get_for_organization(organization_id=organization_id)
    return wallet.balance_fen if wallet else 0


def wallet_in_arrears(*, organization_id: int) -> bool:
    """FEE-6: is the organization's balance negative? Cached; balance changes clear the key."""
    key = arrears_cache_key(organization_id)
    cached = cache.get(key)
    if cached is not None:
        return cached
    value = Wallet.objects.filter(organization_id=organization_id, balance_fen__lt=0).exists()
    cache.set(key, value, ARREARS_CACHE_SECONDS)
    return value


def wallet_visible_to(*, membership: Membership | None) -> bool:
    """Members of an organization (main and sub accounts) see its wallet, read-only for subs."""
    return membership is not None


# Ledger date filters accept business days in this range only. The bounds keep every instant
# the filter computes (start of the day after ``date_to``, in Asia/Shanghai and in UTC) inside
# what Python and PostgreSQL can represent: ``9999-12-31 + 1 day`` overflowed into a 500.
LEDGER_DATE_MIN = dt.date(2000, 1, 1)
LEDGER_DATE_MAX = dt.date(2999, 12, 31)


def ledger_filter_error(
    *, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> tuple[str, str] | None:
    """(field, message) for the first unusable date filter, None when both are fine.

    One check for the page form, the API serializer and the selector itself."""
    for field, value in (("date_from", date_from), ("date_to", date_to)):
        if value is not None and not LEDGER_DATE_MIN <= value <= LEDGER_DATE_MAX:
            return field, str(
                _("日期须在 %(min)s 至 %(max)s 之间。")
                % {"min": LEDGER_DATE_MIN.isoformat(), "max": LEDGER_DATE_MAX.isoformat()}
            )
    if date_from is not None and date_to is not None and date_from > date_to:
        return "date_to", str(_("结束日期不能早于开始日期。"))
    return None


def ledger_list_for_organization(
    *,
    organization_id: int,
    kind: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[LedgerEntry]:
    """The organization's ledger, newest first; dates are Asia/Shanghai days, inclusive.

    A date outside ``LEDGER_DATE_MIN..LEDGER_DATE_MAX`` (or ``date_from`` after ``date_to``)
    raises ``BillingError`` naming the field: a 400 on the API, an error page, never a 500."""
    problem = ledger_filter_error(date_from=date_from, date_to=date_to)
    if problem is not None:
        raise errors.BillingError("invalid", problem[1], field=problem[0])
    qs = LedgerEntry.objects.filter(wallet__organization_id=organization_id)
    if kind:
        qs = qs.filter(kind=kind)
    if date_from:
        qs = qs.filter(created_at__gte=clock.start_of_day(date_from))
    if date_to:
        qs = qs.filter(created_at__lt=clock.start_of_day(date_to + dt.timedelta(days=1)))
    return qs.select_related("top_up_order").order_by("-created_at", "-id")


def balance_series_for_organization(
    *, organization_id: int, limit: int = 500
) -> list[tuple[dt.datetime, int]]:
    """(time, balance after) of the latest ``limit`` entries, oldest first, for the chart."""
    rows = list(
        LedgerEntry.objects.filter(wallet__organization_id=organization_id)
        .order_by("-created_at", "-id")
        .values_list("created_at", "balance_after_fen")[:limit]
    )
    rows.reverse()
    return rows


def ledger_bill_ids(*, organization_id: int, entries) -> dict[tuple[int, int], int]:
    """{(year, month): bill id} of the settlement charges among ``entries`` (one page of the
    ledger), in one query: the ledger's note links each charge to the bill it paid."""
    periods = {
        (e.period_year, e.period_month)
        for e in entries
        if e.kind == LedgerEntry.Kind.SETTLEMENT_CHARGE and e.period_year
    }
    if not periods:
        return {}
    rows = Bill.objects.filter(
        organization_id=organization_id, year__in={y for y, _m in periods}, month__in={m for _y, m in periods}
    ).values_list("year", "month", "pk")
    return {(y, m): pk for y, m, pk in rows if (y, m) in periods}


def top_up_order_list_for_organization(*, organization_id: int) -> QuerySet[TopUpOrder]:
    return TopUpOrder.objects.filter(organization_id=organization_id).order_by("-created_at", "-id")


def top_up_order_get(*, organization_id: int, out_trade_no: str) -> TopUpOrder | None:
    if "\x00" in out_trade_no:
        return None  # no trade number holds NUL (PostgreSQL text cannot; comparing raised DataError)
    return TopUpOrder.objects.filter(organization_id=organization_id, out_trade_no=out_trade_no).first()


def wallet_totals(*, organization_id: int) -> dict:
    """Sums over the ledger: credits (top-ups + deposit transfers) and charges (as positive fen)."""
    agg = LedgerEntry.objects.filter(wallet__organization_id=organization_id).aggregate(
        credits=Sum("amount_fen", filter=~Q(kind=LedgerEntry.Kind.SETTLEMENT_CHARGE), default=0),
        charges=Sum("amount_fen", filter=Q(kind=LedgerEntry.Kind.SETTLEMENT_CHARGE), default=0),
    )
    return {"credits_fen": int(agg["credits"]), "charges_fen": -int(agg["charges"])}


def paid_charges_fen(*, organization_id: int) -> int:
    """FEE-4.3 "fees actually paid": the part of the settled charges that credits covered.

    paid = total charges - current arrears, floored at 0. Since balance = credits - charges
    and arrears = max(0, -balance), this equals min(total charges, total credits): money that
    was topped up (or transferred from the deposit) *and* spent on settled fees. Unspent
    top-ups are never in it, and it never decreases (entries are append-only and signed).
    """
    t = wallet_totals(organization_id=organization_id)
    return max(0, min(t["charges_fen"], t["credits_fen"]))


def invoiced_or_requested_fen(*, organization_id: int) -> int:
    return int(
        Invoice.objects.filter(organization_id=organization_id)
        .exclude(state=Invoice.State.REJECTED)
        .aggregate(s=Sum("amount_fen", default=0))["s"]
    )


def invoiceable_fen(*, organization_id: int) -> int:
    """FEE-4.3: paid charges minus what is already invoiced or requested (not rejected), ≥ 0."""
    return max(
        0,
        paid_charges_fen(organization_id=organization_id)
        - invoiced_or_requested_fen(organization_id=organization_id),
    )


def invoice_list_for_organization(*, organization_id: int) -> QuerySet[Invoice]:
    return Invoice.objects.filter(organization_id=organization_id).order_by("-requested_at", "-id")


def invoice_get(*, organization_id: int, invoice_id: int) -> Invoice | None:
    return Invoice.objects.filter(organization_id=organization_id, pk=invoice_id).first()


def deposit_account_get(*, organization_id: int) -> DepositAccount | None:
    return DepositAccount.objects.filter(organization_id=organization_id).first()


def deposit_entry_list(*, organization_id: int) -> QuerySet[DepositEntry]:
    return DepositEntry.objects.filter(account__organization_id=organization_id).order_by(
        "-created_at", "-id"
    )


def closure_request_list(*, organization_id: int) -> QuerySet[ClosureRequest]:
    return ClosureRequest.objects.filter(organization_id=organization_id).order_by("-requested_at", "-id")
