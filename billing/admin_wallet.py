"""Admin for wallets, ledger, top-ups, invoices, deposits (Billing I).

Ledger, wallets, orders, callbacks and deposit entries are read-only here (and the ledger
and deposit entries are append-only in the database too). Staff actions call services,
which write the audit entry (who, when, what) in the same transaction.
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.models import (
    ClosureRequest,
    DepositAccount,
    DepositEntry,
    Invoice,
    LedgerEntry,
    PaymentEvent,
    TopUpOrder,
    Wallet,
)
from billing.services import deposit as deposit_svc
from billing.services import invoice as invoice_svc
from portal.admin_scale import LargeTableAdmin, RecentValuesListFilter
from portal.errors import DomainError
from portal.models import Organization
from portal.money import format_fen, yuan_to_fen


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff may look, never edit: money moves only through services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _fen(field: str, label: str):
    def show(self, obj):
        return format_fen(getattr(obj, field))

    show.short_description = label
    show.admin_order_field = field
    return show


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("原因"), max_length=300, widget=forms.Textarea(attrs={"rows": 3}))


class AmountForm(forms.Form):
    amount_yuan = forms.DecimalField(label=_("金额 (元)"), max_digits=12, decimal_places=2, min_value=0.01)
    note = forms.CharField(label=_("备注"), max_length=200, required=False)


class PayInForm(AmountForm):
    """The "pay in" action's form. ``token`` is minted when the form is shown: submitting the
    same page twice (a double click, a browser resubmit) pays in once per account."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=64)


class DepositOpenForm(AmountForm):
    """ "Add" on deposit accounts: the first pay-in of an organization (or another pay-in of one
    that already has an account). ``token`` is minted when the form is shown and makes a
    double submission pay in once."""

    # Searched as typed (the organization admin's search), not a <select> of every organization.
    organization = forms.ModelChoiceField(
        label=_("组织"),
        queryset=Organization.objects.all(),
        widget=AutocompleteSelect(DepositAccount._meta.get_field("organization"), admin.site),
    )
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    field_order = ["organization", "amount_yuan", "note"]


def _with_form(modeladmin, request, queryset: QuerySet, form_class, title: str, apply, initial=None):
    """An action that first asks for input (a reason, an amount) on an intermediate page."""
    form = form_class(request.POST if "apply" in request.POST else None, initial=initial)
    if form.is_bound and form.is_valid():
        done = 0
        for obj in queryset:
            try:
                apply(obj, form.cleaned_data)
                done += 1
            except DomainError as exc:
                modeladmin.message_user(request, f"{obj}: {exc.display}", messages.ERROR)
        modeladmin.message_user(request, _("已处理 %(n)d 条。") % {"n": done}, messages.SUCCESS)
        return None
    return TemplateResponse(
        request,
        "billing/wallet_admin_action.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "objects": queryset,
            "action": request.POST.get("action"),
            "opts": modeladmin.model._meta,
        },
    )


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["organization", "balance", "in_arrears", "updated_at"]
    search_fields = ["organization__name"]
    list_select_related = ["organization"]
    balance = _fen("balance_fen", _("余额"))

    @admin.display(boolean=True, description=_("欠费"))
    def in_arrears(self, obj):
        return obj.balance_fen < 0


@admin.register(LedgerEntry)
class LedgerEntryAdmin(LargeTableAdmin, ReadOnlyAdmin):
    """Newest first by id, which the primary key serves: entries are appended, so id order is
    time order, and the ledger carries no index on its time alone (every credit would pay for
    it). A date drill-down (``date_hierarchy``) would scan the whole ledger for its years; the
    date filter offers ranges from now, which the same backward walk finds."""

    list_display = ["created_at", "wallet", "kind", "amount", "balance_after", "reference"]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["wallet__organization__name__icontains", "top_up_order__out_trade_no"]
    search_help_text = _("组织名称, 或充值订单号 (完整)")
    ordering = ["-id"]
    list_select_related = ["wallet__organization"]
    amount = _fen("amount_fen", _("金额"))
    balance_after = _fen("balance_after_fen", _("余额"))


@admin.register(TopUpOrder)
class TopUpOrderAdmin(LargeTableAdmin, ReadOnlyAdmin):
    """Newest first by id (orders are appended; no index on ``created_at`` alone), a date
    filter instead of a drill-down, as on the ledger."""

    list_display = ["out_trade_no", "organization", "amount", "provider", "state", "created_at", "paid_at"]
    list_filter = ["state", ("provider", RecentValuesListFilter), ("created_at", admin.DateFieldListFilter)]
    search_fields = ["out_trade_no", "organization__name__icontains"]
    search_help_text = _("订单号 (完整), 或组织名称")
    ordering = ["-id"]
    list_select_related = ["organization"]
    amount = _fen("amount_fen", _("金额"))


@admin.register(PaymentEvent)
class PaymentEventAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ["received_at", "provider", "event_id", "order", "status", "outcome", "amount_fen"]
    list_filter = [
        ("provider", RecentValuesListFilter),
        ("outcome", RecentValuesListFilter),
        ("status", RecentValuesListFilter),
    ]
    # No index on the event's order: every top-up credit would write one more entry (the credit
    # path's index trim, bench/RESULTS_billing_wallet.md). A search by order number scans the
    # events, which staff do rarely; the top-up order's own page is the usual way in.
    search_fields = ["event_id", "order__out_trade_no"]
    search_help_text = _("事件 ID 或充值订单号 (完整)")
    list_select_related = ["order"]  # nullable: Django's default select_related() skips it


class InvoiceStateFilter(admin.SimpleListFilter):
    """The review queue opens on pending requests."""

    title = _("状态")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("all", _("全部")), *Invoice.State.choices]

    def choices(self, changelist):
        value = self.value() or Invoice.State.REQUESTED
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or Invoice.State.REQUESTED
        return queryset if value == "all" else queryset.filter(state=value)


@admin.register(Invoice)
class InvoiceAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = [
        "requested_at",
        "organization",
        "title",
        "taxpayer_id",
        "kind",
        "amount",
        "state",
        "number",
    ]
    list_filter = [InvoiceStateFilter, "kind"]
    search_fields = ["number", "taxpayer_id", "organization__name__icontains", "title__icontains"]
    search_help_text = _("发票号码或纳税人识别号 (完整), 组织名称或发票抬头")
    # Requests are appended: id order is request order, and the queue's partial index
    # (billing_invoice_queue) is on id.
    ordering = ["-id"]
    list_select_related = ["organization"]
    actions = ["issue", "reject"]
    amount = _fen("amount_fen", _("金额"))

    def has_change_permission(self, request, obj=None):
        # Needed on the list for the review actions to show. Never on one invoice: its page
        # would offer Save, which writes back every field as read and so could undo a review
        # committed in between (state, number, PDF). Reviews go through the actions' services.
        return obj is None and request.user.has_perm("billing.change_invoice")

    def get_readonly_fields(self, request, obj=None):
        # The PDF lives in private storage, which is not served: its field would link to a
        # 404. ``pdf_file`` links to ``pdf_view`` below instead.
        return [("pdf_file" if f.name == "pdf" else f.name) for f in self.model._meta.fields]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="PDF")
    def pdf_file(self, obj):
        if obj is None or obj.state != Invoice.State.ISSUED or not obj.pdf:
            return "-"
        url = reverse("admin:billing_invoice_pdf", args=[obj.pk])
        return format_html('<a href="{}">{}.pdf</a>', url, obj.number)

    def get_urls(self):
        pdf = path(
            "<int:invoice_id>/pdf/",
            self.admin_site.admin_view(self.pdf_view),
            name="billing_invoice_pdf",
        )
        return [pdf, *super().get_urls()]

    def pdf_view(self, request, invoice_id):
        """The issued invoice's PDF for staff who may view invoices (``admin_view`` already
        sent anyone else to the admin login)."""
        invoice = Invoice.objects.filter(pk=invoice_id).first()
        if invoice is None:
            raise Http404
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        if invoice.state != Invoice.State.ISSUED or not invoice.pdf:
            raise Http404
        try:
            pdf = invoice.pdf.open("rb")
        except FileNotFoundError as exc:  # the row says issued but storage lost the file
            raise Http404 from exc
        return FileResponse(pdf, content_type="application/pdf", filename=f"{invoice.number}.pdf")

    @admin.action(description=_("开具所选发票 (生成号码和 PDF)"), permissions=["change"])
    def issue(self, request, queryset):
        done = 0
        for invoice in queryset:
            try:
                invoice_svc.invoice_issue(invoice_id=invoice.pk, actor=request.user)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{invoice}: {exc.display}", messages.ERROR)
        self.message_user(request, _("已开具 %(n)d 张发票。") % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("驳回所选申请 (需填写原因)"), permissions=["change"])
    def reject(self, request, queryset):
        return _with_form(
            self,
            request,
            queryset,
            ReasonForm,
            _("驳回发票申请"),
            lambda inv, data: invoice_svc.invoice_reject(
                invoice_id=inv.pk, actor=request.user, reason=data["reason"]
            ),
        )


class DepositEntryInline(admin.TabularInline):
    model = DepositEntry
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "amount_fen", "note", "actor"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DepositAccount)
class DepositAccountAdmin(ReadOnlyAdmin):
    list_display = ["organization", "deposit", "wallet_balance"]
    search_fields = ["organization__name"]
    list_select_related = ["organization__wallet"]
    inlines = [DepositEntryInline]
    actions = ["transfer_arrears", "pay_in"]
    deposit = _fen("balance_fen", _("保证金余额"))

    @admin.display(description=_("钱包余额"))
    def wallet_balance(self, obj):
        wallet = getattr(obj.organization, "wallet", None)
        return format_fen(wallet.balance_fen if wallet else 0)

    def has_change_permission(self, request, obj=None):
        return obj is None and request.user.has_perm("billing.change_depositaccount")

    def has_add_permission(self, request, obj=None):
        # "Add" records a pay-in through the service (which opens the account); it never
        # saves a model form, so no balance can be typed in.
        return request.user.has_perm("billing.add_depositaccount")

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = DepositOpenForm(request.POST)
        else:
            form = DepositOpenForm(initial={"token": uuid.uuid4().hex})
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            try:
                entry = deposit_svc.deposit_pay_in(
                    organization_id=data["organization"].pk,
                    amount_fen=yuan_to_fen(data["amount_yuan"]),
                    actor=request.user,
                    note=data["note"],
                    idempotency_key=f"admin-add:{data['token']}",
                )
            except DomainError as exc:
                form.add_error(None, exc.display)
            else:
                self.message_user(
                    request,
                    _("已为 %(org)s 登记缴纳保证金 %(amount)s。")
                    % {"org": data["organization"], "amount": format_fen(entry.amount_fen)},
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:billing_depositaccount_change", args=[entry.account_id]))
        return TemplateResponse(
            request,
            "billing/deposit_account_admin_add.html",
            {
                **self.admin_site.each_context(request),
                "title": _("登记缴纳保证金 (无账户时开立)"),
                "form": form,
                "opts": self.model._meta,
                **(extra_context or {}),
            },
        )

    @admin.action(description=_("用保证金抵扣超过一个月的欠费 (FEE-6.3)"), permissions=["change"])
    def transfer_arrears(self, request, queryset):
        moved = already = 0
        for account in queryset:
            started = timezone.now()
            entry = deposit_svc.deposit_transfer_arrears(
                organization_id=account.organization_id, actor=request.user
            )
            # The service hands back the day's earlier transfer when there was one (one a day):
            # that moved nothing now, and staff must not read it as a second transfer.
            if entry is not None and entry.created_at >= started:
                moved += 1
            elif entry is not None:
                already += 1
        self.message_user(request, _("已为 %(n)d 个组织抵扣欠费。") % {"n": moved}, messages.SUCCESS)
        if already:
            self.message_user(
                request, _("%(n)d 个组织今日已抵扣过, 未再抵扣。") % {"n": already}, messages.WARNING
            )

    @admin.action(description=_("登记缴纳保证金"), permissions=["change"])
    def pay_in(self, request, queryset):
        return _with_form(
            self,
            request,
            queryset,
            PayInForm,
            _("登记缴纳保证金"),
            lambda acc, data: deposit_svc.deposit_pay_in(
                organization_id=acc.organization_id,
                amount_fen=yuan_to_fen(data["amount_yuan"]),
                actor=request.user,
                note=data["note"],
                idempotency_key=f"admin-action:{data['token']}:{acc.pk}",
            ),
            initial={"token": uuid.uuid4().hex},
        )


@admin.register(DepositEntry)
class DepositEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "kind", "amount", "actor", "note"]
    list_filter = ["kind"]
    list_select_related = ["account__organization", "actor"]
    amount = _fen("amount_fen", _("金额"))


@admin.register(ClosureRequest)
class ClosureRequestAdmin(ReadOnlyAdmin):
    list_display = ["requested_at", "organization", "state", "reason", "reviewed_by", "reviewed_at"]
    list_filter = ["state"]
    list_select_related = ["organization", "reviewed_by"]
    actions = ["approve", "reject"]

    def has_change_permission(self, request, obj=None):
        return obj is None and request.user.has_perm("billing.change_closurerequest")

    @admin.action(description=_("批准注销 (欠费时拒绝, FEE-6.3)"), permissions=["change"])
    def approve(self, request, queryset):
        for closure in queryset:
            try:
                deposit_svc.closure_approve(closure_id=closure.pk, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{closure}: {exc.display}", messages.ERROR)

    @admin.action(description=_("驳回注销申请"), permissions=["change"])
    def reject(self, request, queryset):
        return _with_form(
            self,
            request,
            queryset,
            ReasonForm,
            _("驳回注销申请"),
            lambda c, data: deposit_svc.closure_reject(
                closure_id=c.pk, actor=request.user, note=data["reason"]
            ),
        )
