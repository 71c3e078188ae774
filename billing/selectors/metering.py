"""Billing II reads shared by pages, API and admin, always scoped by the acting membership."""

import datetime as dt
from collections import defaultdict

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from billing.models import Api, ApiPrice, ApiTierChange, App, Bill, BillApp, BillLine, Discount
from portal import clock
from portal.errors import NotFound
from portal.models import Membership


def _org_id(membership: Membership | None) -> int:
    if membership is None:
        raise NotFound()
    return membership.organization_id


def app_list_for_membership(*, membership: Membership | None) -> QuerySet[App]:
    return App.objects.filter(organization_id=_org_id(membership)).order_by("id")


def app_get_for_membership(*, membership: Membership | None, app_id: int) -> App:
    app = App.objects.filter(organization_id=_org_id(membership), pk=app_id).first()
    if app is None:
        raise NotFound()
    return app


def bill_list_for_membership(*, membership: Membership | None) -> QuerySet[Bill]:
    return Bill.objects.filter(organization_id=_org_id(membership)).order_by("-year", "-month")


def bill_get_for_membership(*, membership: Membership | None, bill_id: int) -> Bill:
    bill = (
        Bill.objects.filter(organization_id=_org_id(membership), pk=bill_id)
        .select_related("organization")
        .first()
    )
    if bill is None:
        raise NotFound()
    return bill


def bill_lines(*, bill: Bill) -> QuerySet[BillLine]:
    return (
        BillLine.objects.filter(bill=bill)
        .select_related("app", "api")
        .order_by("app_id", "api__code", "location")
    )


def bill_apps(*, bill: Bill) -> QuerySet[BillApp]:
    return BillApp.objects.filter(bill=bill).select_related("app").order_by("app_id")


def bill_tiers_by_api(*, bill: Bill, apis: list[Api]) -> dict[int, list[str]]:
    """FEE-2.1: per API, the paid tier(s) in force on the bill's month, oldest first.

    Same rule as settlement: a tier history row is in force from its effective_from until the
    API's next row, and a day before an API's first row takes its current tier. Only the paid
    tiers are listed, because a day on which the API was free is never billed: an API made
    basic from the free tier on the 15th bills (and shows) 基础API for the days from the 15th;
    one moved from basic to value-added shows "basic → value_added". A settled month's tier
    history never changes (``api_tier_check``), so this reads the same as when it was billed.
    One query over the history rows (a few per API), none over usage."""
    first, end = dt.date(bill.year, bill.month, 1), clock.month_range(bill.year, bill.month)[1]
    end_day = clock.local(end).date()
    rows = defaultdict(list)
    for api_id, day, tier in (
        ApiTierChange.objects.filter(api__in=apis, effective_from__lt=end_day)
        .order_by("api_id", "effective_from")
        .values_list("api_id", "effective_from", "tier")
    ):
        rows[api_id].append((day, tier))
    tiers: dict[int, list[str]] = {}
    for api in apis:
        history = rows.get(api.pk, [])
        # (from, tier) periods; before the first row (or with no row) the current tier applies
        periods = [(dt.date.min, api.tier), *history] if not history or history[0][0] > first else history
        in_month = [
            tier
            for (start, tier), nxt in zip(periods, [*periods[1:], (end_day, None)], strict=True)
            if nxt[0] > first and start < end_day
        ]
        paid = [t for t in dict.fromkeys(in_month) if t != Api.Tier.FREE]
        tiers[api.pk] = paid or [api.tier]
    return tiers


def bill_detail_groups(*, bill: Bill) -> list[dict]:
    """Per app: its lines, subtotal, discount and total (the bill page, CSV, PDF and API).

    Each line gets ``tiers``: the paid tier(s) in force on the month (``bill_tiers_by_api``)."""
    lines = defaultdict(list)
    all_lines = list(bill_lines(bill=bill))
    apis = {line.api_id: line.api for line in all_lines}
    tiers = bill_tiers_by_api(bill=bill, apis=list(apis.values()))
    for line in all_lines:
        line.tiers = tiers[line.api_id]
        lines[line.app_id].append(line)
    return [{"app": a.app, "row": a, "lines": lines.get(a.app_id, [])} for a in bill_apps(bill=bill)]


def api_day_annotations(day: dt.date) -> dict:
    """Annotations of an ``Api`` queryset for ``day`` (one query, no query per API):

    - ``price_today``: the price in force that day (fen per 1,000 calls; None for none);
    - ``tier_today``: the tier of the history row in force that day (None: no row on or before
      it, so settlement and the gate fall back to ``Api.tier``);
    - ``next_tier`` / ``next_tier_from``: the first scheduled tier change after that day.
    """
    prices = ApiPrice.objects.filter(api=OuterRef("pk"), effective_from__lte=day).order_by("-effective_from")
    tiers = ApiTierChange.objects.filter(api=OuterRef("pk"))
    in_force = tiers.filter(effective_from__lte=day).order_by("-effective_from")
    upcoming = tiers.filter(effective_from__gt=day).order_by("effective_from")
    return {
        "price_today": Subquery(prices.values("price_fen_per_1000")[:1]),
        "tier_today": Subquery(in_force.values("tier")[:1]),
        "next_tier": Subquery(upcoming.values("tier")[:1]),
        "next_tier_from": Subquery(upcoming.values("effective_from")[:1]),
    }


def catalog_list(*, today: dt.date | None = None) -> QuerySet[Api]:
    """Every API with the price in force today (fen per 1,000 calls; None for none)."""
    return Api.objects.annotate(**api_day_annotations(today or clock.today())).order_by("tier", "code")


def discount_list_for_membership(*, membership: Membership | None) -> QuerySet[Discount]:
    return Discount.objects.filter(app__organization_id=_org_id(membership)).select_related("app")


def discount_policy_current(*, today: dt.date | None = None) -> list[dict]:
    """FEE-5.1 public policy: the discount rates in force today and how many apps have each."""
    today = today or clock.today()
    rows = (
        Discount.objects.filter(valid_from__lte=today, valid_to__gte=today)
        .values_list("rate", "valid_from", "valid_to")
        .order_by("-rate", "valid_to")
    )
    grouped: dict = defaultdict(int)
    for row in rows:
        grouped[row] += 1
    return [{"rate": r, "valid_from": f, "valid_to": t, "apps": n} for (r, f, t), n in grouped.items()]


# Calls per Asia/Shanghai day of one month, by the tier in force that day and by app: the
# same rule as settlement (``LINES_SQL``, CTE ``tr``) — each ``billing_apitierchange`` row is in
# force from its effective_from until the API's next row, and a day before an API's first row
# takes its current tier (``Api.tier``). Usage is first summed per day, app and API (the
# month's partition read through its primary key, one organization's apps), then each of those
# few rows takes its day's tier and is summed again: one statement, no loop over usage rows.
# ``{filters}``: extra conditions on ``u`` (an app, an API).
USAGE_DAILY_SQL = """
    WITH daily AS (
        SELECT (u.hour AT TIME ZONE 'Asia/Shanghai')::date AS day, u.app_id, a.name AS app_name,
               u.api_id, sum(u.calls) AS calls
        FROM billing_usage_hourly u
        JOIN billing_app a ON a.id = u.app_id
        WHERE u.hour >= %(start)s AND u.hour < %(end)s AND a.organization_id = %(org)s {filters}
        GROUP BY 1, 2, 3, 4
    ),
    tr AS (
        SELECT api_id, tier, effective_from AS from_date,
               lead(effective_from) OVER (PARTITION BY api_id ORDER BY effective_from) AS to_date
        FROM billing_apitierchange
        WHERE api_id IN (SELECT DISTINCT api_id FROM daily)
    )
    SELECT d.day, coalesce(tr.tier, x.tier) AS tier, d.app_id, d.app_name, sum(d.calls)
    FROM daily d
    JOIN billing_api x ON x.id = d.api_id
    LEFT JOIN tr ON tr.api_id = d.api_id AND d.day >= tr.from_date
                AND (tr.to_date IS NULL OR d.day < tr.to_date)
    GROUP BY 1, 2, 3, 4 ORDER BY 1
"""


def usage_daily_for_membership(
    *,
    membership: Membership | None,
    year: int,
    month: int,
    app_id: int | None = None,
    api_id: int | None = None,
) -> dict:
    """Calls per Asia/Shanghai day of one month, by the tier in force that day (FEE-2.1, as
    settlement bills it) and by app (GROUP BY in SQL, ``USAGE_DAILY_SQL``)."""
    org_id = _org_id(membership)
    start, end = clock.month_range(year, month)
    filters = []
    params = {"start": start, "end": end, "org": org_id}
    if app_id:
        filters.append("AND u.app_id = %(app)s")
        params["app"] = app_id
    if api_id:
        filters.append("AND u.api_id = %(api)s")
        params["api"] = api_id
    with connection.cursor() as cur:
        cur.execute(USAGE_DAILY_SQL.format(filters=" ".join(filters)), params)
        rows = cur.fetchall()
    ndays = (end - start).days
    days = [dt.date(year, month, 1) + dt.timedelta(days=i) for i in range(ndays)]
    index = {d: i for i, d in enumerate(days)}
    by_tier: dict = {t: [0] * ndays for t in Api.Tier.values}
    by_app: dict = {}
    names: dict = {}
    total = 0
    for day, tier, a_id, a_name, calls in rows:
        calls = int(calls)
        by_tier[tier][index[day]] += calls
        by_app.setdefault(a_id, [0] * ndays)[index[day]] += calls
        names[a_id] = a_name
        total += calls
    return {"days": days, "by_tier": by_tier, "by_app": by_app, "app_names": names, "total_calls": total}
