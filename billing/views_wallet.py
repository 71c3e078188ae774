"""Wallet pages (Billing I): wallet + ledger + chart + CSV, top-up flow with the sandbox
cashier, invoices, deposit and closure. Same services and selectors as the API.

Members of the organization see its pages; only the main account (主账号) writes. Another
tenant's order or invoice answers 404.
"""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from billing.forms_wallet import ClosureForm, InvoiceRequestForm, LedgerFilterForm, TopUpForm
from billing.models import Invoice, LedgerEntry, TopUpOrder
from billing.payments import checkout_url_for, get_provider, sandbox
from billing.selectors import wallet as sel
from billing.services import deposit as deposit_svc
from billing.services import invoice as invoice_svc
from billing.services import topup as topup_svc
from portal import clock
from portal.errors import DomainError
from portal.forms import request_token_initial

# Rows per page of the HTML lists. Offset pages (Django's Paginator, ``_pagination.html``)
# suit these per-organization lists; portal.pagination's keyset pages are for the deep API
# lists, where counting and skipping rows would cost.
PAGE_SIZE = 20


def _membership(request, *, write: bool = False):
    membership = request.active_membership
    if membership is None:
        raise Http404
    if write and not membership.is_main:
        raise PermissionDenied(_("只有主账号可以执行此操作。"))
    return membership


def _wallet_context(org_id: int) -> dict:
    balance = sel.wallet_balance_fen(organization_id=org_id)
    return {"balance_fen": balance, "in_arrears": balance < 0, "arrears_fen": max(0, -balance)}


def _chart_config(org_id: int) -> dict:
    points = [
        (int(t.timestamp() * 1000), b / 100)
        for t, b in sel.balance_series_for_organization(organization_id=org_id)
    ]
    radius = [2] * len(points)
    now = int(clock.now().timestamp() * 1000)
    if points and now > points[-1][0]:
        # The balance holds until now: the line runs on to today, with no dot (no entry there).
        points.append((now, points[-1][1]))
        radius.append(0)
    return {
        "type": "line",
        "data": {
            "datasets": [
                {
                    "label": _("余额 (元)"),
                    # On a time axis (epoch milliseconds; the page's script formats the ticks in
                    # Asia/Shanghai), so a quiet month takes the room a month takes. Chart.js
                    # needs numbers; yuan as a float is for drawing only (money stays fen).
                    "data": [{"x": x, "y": y} for x, y in points],
                    "stepped": True,
                    "borderColor": "#2563eb",
                    "pointRadius": radius,
                }
            ],
        },
        "options": {
            "responsive": True,
            "maintainAspectRatio": False,
            "plugins": {"legend": {"display": False}},
            # From the first entry to now: no blank stretch of future months after the line.
            "scales": {
                "x": {"type": "linear", **({"min": points[0][0], "max": points[-1][0]} if points else {})}
            },
        },
    }


@login_required
def wallet(request):
    membership = _membership(request)
    org_id = membership.organization_id
    filters = LedgerFilterForm(request.GET or None)
    if filters.is_bound and not filters.is_valid():
        # The form shows the error next to the field; an unusable filter lists nothing rather
        # than the whole ledger under a filter the developer did not get.
        entries = LedgerEntry.objects.none()
    else:
        entries = sel.ledger_list_for_organization(organization_id=org_id, **filters.filters())
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    bill_ids = sel.ledger_bill_ids(organization_id=org_id, entries=page)
    for entry in page:
        # The note column names what an entry is in the reader's language (the stored
        # ``reference`` is a machine string: "bill #3", "top-up T…"), linked to its bill or order.
        entry.bill_id = bill_ids.get((entry.period_year, entry.period_month))
    return render(
        request,
        "billing/wallet.html",
        {
            **_wallet_context(org_id),
            "filters": filters,
            "page": page,
            "chart_config": _chart_config(org_id),
            "invoiceable_fen": sel.invoiceable_fen(organization_id=org_id),
            "recent_orders": sel.top_up_order_list_for_organization(organization_id=org_id)[:5],
        },
    )


class _Echo:
    def write(self, value):
        return value


@login_required
def ledger_csv(request):
    """Streams the filtered ledger: rows are written as the cursor yields them. A bad filter
    raises ``BillingError`` (400 page naming the field) before the first byte is sent."""
    membership = _membership(request)
    filters = LedgerFilterForm(request.GET or None)
    entries = sel.ledger_list_for_organization(
        organization_id=membership.organization_id, **filters.filters()
    )
    writer = csv.writer(_Echo())
    kinds = dict(LedgerEntry.Kind.choices)

    def rows():
        yield "\ufeff"  # BOM: spreadsheet programs then read the Chinese labels as UTF-8
        yield writer.writerow(
            ["id", "time", "kind", "kind_label", "amount_fen", "balance_after_fen", "reference"]
        )
        for e in entries.iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    e.pk,
                    clock.local(e.created_at).isoformat(),
                    e.kind,
                    str(kinds[e.kind]),
                    e.amount_fen,
                    e.balance_after_fen,
                    e.reference,
                ]
            )

    resp = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = 'attachment; filename="ledger.csv"'
    return resp


@login_required
def top_up_list(request):
    """Every top-up of the organization, newest first, each linking to its result page."""
    membership = _membership(request)
    org_id = membership.organization_id
    page = Paginator(sel.top_up_order_list_for_organization(organization_id=org_id), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "billing/topup_list.html", {**_wallet_context(org_id), "page": page})


@login_required
@require_http_methods(["GET", "POST"])
def top_up(request):
    membership = _membership(request)
    form = TopUpForm(request.POST or None, initial=request_token_initial())
    if request.method == "POST":
        _membership(request, write=True)
        if form.is_valid():
            amount = form.cleaned_data["amount_fen"]

            def create():
                order = topup_svc.top_up_create(
                    organization_id=membership.organization_id, amount_fen=amount, actor=request.user
                )
                return 201, {"out_trade_no": order.out_trade_no}

            try:
                body, _replayed = _once(
                    organization_id=membership.organization_id,
                    scope="top-up-page",
                    data={"amount_fen": amount},
                    token=form.cleaned_data["request_token"],
                    call=create,
                )
            except DomainError as exc:
                form.add_error(None, exc.display)
            else:
                order = _order_or_404(request, body["out_trade_no"])
                return redirect(get_provider(order.provider).checkout_url(order=order))
    return render(
        request,
        "billing/topup.html",
        {**_wallet_context(membership.organization_id), "form": form, "can_write": membership.is_main},
    )


def _once(*, organization_id: int, scope: str, data: dict, token: str, call) -> tuple[dict, bool]:
    """Run ``call`` once per form token: a double-clicked submit, or the browser re-sending the
    POST, gets the first request's answer instead of a second order or invoice. Without a token
    (a form not shown by this page) every POST runs. Returns the answer and whether it is the
    first request's, replayed."""
    if not token:
        return call()[1], False
    _status, body, replayed = topup_svc.idempotent_call(
        organization_id=organization_id,
        scope=scope,
        key=token,
        fingerprint=topup_svc.request_fingerprint(data),
        call=call,
    )
    return body, replayed


def _order_or_404(request, out_trade_no) -> TopUpOrder:
    order = sel.top_up_order_get(
        organization_id=_membership(request).organization_id, out_trade_no=out_trade_no
    )
    if order is None:
        raise Http404
    return order


@login_required
def top_up_result(request, out_trade_no):
    order = _order_or_404(request, out_trade_no)
    template = "billing/_wallet_topup_status.html" if request.htmx else "billing/topup_result.html"
    response = render(
        request,
        template,
        {
            "order": order,
            "pay_url": checkout_url_for(order=order),
            **_wallet_context(order.organization_id),
        },
    )
    if request.htmx and order.is_final:
        # The poll that sees the final state redraws the whole page once (it polls no more): a
        # credit that ended the arrears takes the FEE-6.2 banner away, one that did not keeps it.
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def sandbox_cashier(request, out_trade_no):
    """The sandbox provider's cashier (收银台). Pay / fail sign and deliver the provider's
    callback to our webhook (in-process, no network), then return to the result page."""
    if request.method == "POST":
        _membership(request, write=True)
    order = _order_or_404(request, out_trade_no)
    if order.provider != "sandbox":
        raise Http404
    if request.method == "POST" and not order.is_final:
        status = "paid" if request.POST.get("action") == "pay" else "failed"
        provider = get_provider("sandbox")
        response = provider.deliver(
            body=sandbox.event_body(order=order, status=status), host=request.get_host(), now=clock.now()
        )
        if response.status_code != 200:
            messages.error(request, _("支付回调被拒绝: %(code)s") % {"code": response.status_code})
        return redirect("billing:top-up-result", out_trade_no=order.out_trade_no)
    return render(request, "billing/cashier_sandbox.html", {"order": order})


@login_required
@require_http_methods(["GET", "POST"])
def invoices(request):
    membership = _membership(request)
    org_id = membership.organization_id
    form = InvoiceRequestForm(request.POST or None, initial=request_token_initial())
    if request.method == "POST":
        _membership(request, write=True)
        if form.is_valid():
            d = form.cleaned_data
            fields = {k: d[k] for k in ("amount_fen", "title", "taxpayer_id", "kind", "email")}

            def create():
                invoice = invoice_svc.invoice_request(organization_id=org_id, actor=request.user, **fields)
                return 201, {"invoice_id": invoice.pk}

            try:
                # FEE-4.3: a double submit is one request, not two invoices for the same money.
                body, _replayed = _once(
                    organization_id=org_id,
                    scope="invoice-page",
                    data=fields,
                    token=d["request_token"],
                    call=create,
                )
            except DomainError as exc:
                form.add_error("amount_yuan" if exc.field == "amount_fen" else None, exc.display)
            else:
                messages.success(request, _("发票申请已提交, 等待审核。"))
                return redirect("billing:invoice", invoice_id=body["invoice_id"])
    page = Paginator(sel.invoice_list_for_organization(organization_id=org_id), 20).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "billing/invoice_list.html",
        {
            **_wallet_context(org_id),
            "form": form,
            "page": page,
            "can_write": membership.is_main,
            "invoiceable_fen": sel.invoiceable_fen(organization_id=org_id),
            "paid_charges_fen": sel.paid_charges_fen(organization_id=org_id),
        },
    )


def _invoice_or_404(request, invoice_id) -> Invoice:
    invoice = sel.invoice_get(organization_id=_membership(request).organization_id, invoice_id=invoice_id)
    if invoice is None:
        raise Http404
    return invoice


@login_required
def invoice_detail(request, invoice_id):
    invoice = _invoice_or_404(request, invoice_id)
    return render(
        request,
        "billing/invoice_detail.html",
        {"invoice": invoice, **_wallet_context(invoice.organization_id)},
    )


@login_required
def invoice_pdf(request, invoice_id):
    invoice = _invoice_or_404(request, invoice_id)
    if invoice.state != Invoice.State.ISSUED or not invoice.pdf:
        raise Http404
    try:
        pdf = invoice.pdf.open("rb")
    except FileNotFoundError as exc:  # the row says issued but storage lost the file (as in admin)
        raise Http404 from exc
    return FileResponse(pdf, content_type="application/pdf", filename=f"{invoice.number}.pdf")


@login_required
@require_http_methods(["GET", "POST"])
def deposit(request):
    membership = _membership(request)
    org_id = membership.organization_id
    form = ClosureForm(request.POST or None, initial=request_token_initial())
    account = sel.deposit_account_get(organization_id=org_id)
    return render(
        request,
        "billing/deposit.html",
        {
            **_wallet_context(org_id),
            "form": form,
            "can_write": membership.is_main,
            "deposit_fen": account.balance_fen if account else 0,
            "page": Paginator(sel.deposit_entry_list(organization_id=org_id), PAGE_SIZE).get_page(
                request.GET.get("page")
            ),
            "closures": Paginator(sel.closure_request_list(organization_id=org_id), PAGE_SIZE).get_page(
                request.GET.get("closures_page")
            ),
        },
    )


@login_required
@require_POST
def closure_request(request):
    membership = _membership(request, write=True)
    form = ClosureForm(request.POST)
    valid = form.is_valid()
    reason = form.cleaned_data.get("reason", "") if valid else ""

    def create():
        closure = deposit_svc.closure_request_create(
            organization_id=membership.organization_id, actor=request.user, reason=reason
        )
        return 201, {"closure_id": closure.pk}

    # FEE-6.3: refused while in arrears — DomainErrorMiddleware shows the rule and message. The
    # same form sent again (its token) is told it was done, not refused for the open request it
    # made; the token alone identifies it (a reason edited after going back changes nothing).
    _body, replayed = _once(
        organization_id=membership.organization_id,
        scope="closure-page",
        data={},
        token=form.cleaned_data.get("request_token", "") if valid else "",
        call=create,
    )
    messages.success(request, _("注销申请已提交，无需重复提交。") if replayed else _("注销申请已提交。"))  # noqa: RUF001
    return redirect(reverse("billing:deposit"))
