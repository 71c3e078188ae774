"""Billing II pages: apps and keys, usage chart, bills (CSV, PDF statement), catalog, discounts.

Members of the owning organization see its apps, usage and bills (main and sub accounts);
another tenant's ids answer 404; only main accounts create apps and rotate secrets.
"""

import csv
import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from billing.forms_metering import AppCreateForm, UsageFilterForm
from billing.models import Api, Location
from billing.months import parse_month
from billing.selectors import metering as sel
from billing.services import metering as svc
from portal import clock
from portal.errors import NotFound
from portal.money import format_fen

TIER_COLORS = {"free": "#9ca3af", "basic": "#2563eb", "value_added": "#fe2c55"}
APP_COLORS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#65a30d", "#db2777"]


def _membership(request):
    if request.active_membership is None:
        raise NotFound()
    return request.active_membership


@login_required
def app_list(request):
    membership = _membership(request)
    form = AppCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        app, raw = svc.app_create(membership=membership, name=form.cleaned_data["name"], actor=request.user)
        return _secret_page(request, app, raw, created=True)
    page = Paginator(sel.app_list_for_membership(membership=membership), 30).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/apps.html",
        {"page": page, "form": form, "can_write": membership.is_main},
    )


@never_cache
def _secret_page(request, app, raw, *, created):
    return render(request, "billing/app_secret.html", {"app": app, "secret": raw, "created": created})


@login_required
@require_POST
def app_rotate(request, app_id: int):
    membership = _membership(request)
    sel.app_get_for_membership(membership=membership, app_id=app_id)  # other tenant → 404 first
    if not membership.is_main:
        messages.error(request, _("只有主账号可以重置密钥。"))
        return redirect("billing:apps")
    app, raw = svc.app_rotate_secret(membership=membership, app_id=app_id, actor=request.user)
    return _secret_page(request, app, raw, created=False)


@login_required
def usage(request):
    membership = _membership(request)
    today = clock.today()
    apps = list(sel.app_list_for_membership(membership=membership))
    form = UsageFilterForm(request.GET or None, apps=apps, today=today)
    year, month, app_id, api_id = today.year, today.month, None, None
    if form.is_bound and form.is_valid():
        year, month = parse_month(form.cleaned_data["month"], (year, month))
        app_id = form.cleaned_data["app"] or None
        api_id = form.cleaned_data["api"].pk if form.cleaned_data["api"] else None
    data = sel.usage_daily_for_membership(
        membership=membership, year=year, month=month, app_id=app_id, api_id=api_id
    )
    labels = [d.strftime("%m-%d") for d in data["days"]]
    tier_labels = dict(Api.Tier.choices)
    tier_chart = _bar_chart(
        labels,
        [
            {"label": str(tier_labels[t]), "data": data["by_tier"][t], "backgroundColor": TIER_COLORS[t]}
            for t in Api.Tier.values
        ],
    )
    app_chart = _bar_chart(
        labels,
        [
            {
                "label": data["app_names"][a],
                "data": series,
                "backgroundColor": APP_COLORS[i % len(APP_COLORS)],
            }
            for i, (a, series) in enumerate(sorted(data["by_app"].items()))
        ],
    )
    return render(
        request,
        "billing/usage.html",
        {
            "form": form,
            "year": year,
            "month": month,
            "data": data,
            "tier_chart": tier_chart,
            "app_chart": app_chart,
        },
    )


def _bar_chart(labels, datasets) -> dict:
    return {
        "type": "bar",
        "data": {"labels": labels, "datasets": datasets},
        "options": {
            "responsive": True,
            "animation": False,
            "scales": {"x": {"stacked": True}, "y": {"stacked": True, "beginAtZero": True}},
        },
    }


@login_required
def bill_list(request):
    membership = _membership(request)
    page = Paginator(sel.bill_list_for_membership(membership=membership), 24).get_page(
        request.GET.get("page")
    )
    return render(request, "billing/bills.html", {"page": page})


@login_required
def bill_detail(request, bill_id: int):
    bill = sel.bill_get_for_membership(membership=_membership(request), bill_id=bill_id)
    return render(
        request, "billing/bill_detail.html", {"bill": bill, "groups": sel.bill_detail_groups(bill=bill)}
    )


def _location_label(code: str) -> str:
    return str(dict(Location.choices).get(code, code))


@login_required
def bill_csv(request, bill_id: int):
    bill = sel.bill_get_for_membership(membership=_membership(request), bill_id=bill_id)
    resp = HttpResponse(content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="bill-{bill.year}-{bill.month:02d}.csv"'
    resp.write("\ufeff")  # Excel opens UTF-8 Chinese correctly with a BOM
    w = csv.writer(resp)
    header = ["app_key", "app", "api", "tier", "location", "calls", "price_fen_per_1000", "amount_fen"]
    w.writerow([*header, "discounted_calls"])
    for g in sel.bill_detail_groups(bill=bill):
        for line in g["lines"]:
            w.writerow(
                [
                    g["app"].app_key,
                    g["app"].name,
                    line.api.code,
                    line.tier_codes,  # the tier(s) of the billed days, not today's
                    line.location,
                    line.calls,
                    line.price_label,
                    line.amount_fen,
                    line.discounted_codes,  # FEE-5.1: calls on discounted days, by rate
                ]
            )
        row = g["row"]
        w.writerow([g["app"].app_key, g["app"].name, "", "", "subtotal", "", "", row.subtotal_fen])
        w.writerow(
            [
                g["app"].app_key,
                g["app"].name,
                "",
                "",
                f"discount {row.discount_rate}",
                "",
                "",
                -row.discount_fen,
            ]
        )
        w.writerow([g["app"].app_key, g["app"].name, "", "", "app total", "", "", row.total_fen])
    w.writerow(["", "", "", "", "bill total", "", "", bill.total_fen])
    return resp


@login_required
def bill_pdf(request, bill_id: int):
    from billing.pdf import build_pdf

    bill = sel.bill_get_for_membership(membership=_membership(request), bill_id=bill_id)
    table = [
        [_("应用"), "API", _("调用位置"), _("调用次数"), _("享受折扣的调用"), _("单价(元/千次)"), _("金额")]
    ]
    for g in sel.bill_detail_groups(bill=bill):
        for line in g["lines"]:
            table.append(
                [
                    g["app"].name,
                    line.api.code,
                    _location_label(line.location),
                    f"{line.calls:,}",
                    line.discounted_label or "—",
                    line.price_yuan_label,
                    format_fen(line.amount_fen),
                ]
            )
        row = g["row"]
        table.append([g["app"].name, _("小计"), "", "", "", "", format_fen(row.subtotal_fen)])
        if row.discount_fen:
            table.append(
                [
                    g["app"].name,
                    _("折扣") + f" {row.discount_rate:.2%}",
                    "",
                    "",
                    "",
                    "",
                    "-" + format_fen(row.discount_fen),
                ]
            )
    pdf = build_pdf(
        title=_("技术服务费账单 %(y)s年%(m)s月") % {"y": bill.year, "m": bill.month},
        fields=[
            (_("组织"), bill.organization.name),
            (_("账期"), f"{bill.year}-{bill.month:02d}"),
            (_("小计"), format_fen(bill.subtotal_fen)),
            (_("折扣"), format_fen(-bill.discount_fen)),
            (_("应付合计"), format_fen(bill.total_fen)),
            (_("结算时间"), clock.local(bill.settled_at).strftime("%Y-%m-%d %H:%M")),
        ],
        table=table,
        footer=_("按自然月结算, 每日按当日生效单价计费, 金额四舍五入到分 (FEE-4.2)。"),
    )
    resp = HttpResponse(pdf, content_type="application/pdf")
    resp["Content-Disposition"] = f'inline; filename="statement-{bill.year}-{bill.month:02d}.pdf"'
    return resp


# The catalog holds up to 1,000 APIs (scale rules): one page of them at a time.
CATALOG_PAGE_SIZE = 50


def catalog(request):
    page = Paginator(sel.catalog_list(), CATALOG_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "billing/catalog.html", {"page": page})


def discount_policy(request):
    """FEE-5.1: public page with the policy and the rates in force today."""
    membership = getattr(request, "active_membership", None)
    mine = list(sel.discount_list_for_membership(membership=membership)) if membership else []
    today = clock.today()
    return render(
        request,
        "billing/discount_policy.html",
        {
            "current": sel.discount_policy_current(today=today),
            "mine": mine,
            "today": today,
            "year_ago": today - dt.timedelta(days=365),
        },
    )
