"""Billing II reads shared by pages, API and admin, always scoped by the acting membership."""

import datetime as dt
from collections import defaultdict

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from billing.models import Api, ApiPrice, App, Bill, BillApp, BillLine, Discount
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


def bill_detail_groups(*, bill: Bill) -> list[dict]:
    """Per app: its lines, subtotal, discount and total (the bill page, CSV and PDF)."""
    lines = defaultdict(list)
    for line in bill_lines(bill=bill):
        lines[line.app_id].append(line)
    return [{"app": a.app, "row": a, "lines": lines.get(a.app_id, [])} for a in bill_apps(bill=bill)]


def catalog_list(*, today: dt.date | None = None) -> QuerySet[Api]:
    """Every API with the price in force today (fen per 1,000 calls; None for none)."""
    today = today or clock.today()
    current = (
        ApiPrice.objects.filter(api=OuterRef("pk"), effective_from__lte=today)
        .order_by("-effective_from")
        .values("price_fen_per_1000")[:1]
    )
    return Api.objects.annotate(price_today=Subquery(current)).order_by("tier", "code")


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


def usage_daily_for_membership(
    *,
    membership: Membership | None,
    year: int,
    month: int,
    app_id: int | None = None,
    api_id: int | None = None,
) -> dict:
    """Calls per Asia/Shanghai day of one month, by tier and by app (GROUP BY in SQL)."""
    org_id = _org_id(membership)
    start, end = clock.month_range(year, month)
    where = ["u.hour >= %(start)s", "u.hour < %(end)s", "a.organization_id = %(org)s"]
    params = {"start": start, "end": end, "org": org_id}
    if app_id:
        where.append("u.app_id = %(app)s")
        params["app"] = app_id
    if api_id:
        where.append("u.api_id = %(api)s")
        params["api"] = api_id
    sql = f"""
        SELECT (u.hour AT TIME ZONE 'Asia/Shanghai')::date AS day, x.tier, a.id, a.name, sum(u.calls)
        FROM billing_usage_hourly u
        JOIN billing_app a ON a.id = u.app_id
        JOIN billing_api x ON x.id = u.api_id
        WHERE {" AND ".join(where)}
        GROUP BY 1, 2, 3, 4 ORDER BY 1
    """
    with connection.cursor() as cur:
        cur.execute(sql, params)
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
