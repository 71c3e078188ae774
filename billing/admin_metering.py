"""Admin for catalog, prices, permissions, discounts, usage batches, settlement runs, bills.

Every write goes through ``billing.services`` (which audit and drop the gate's cache), so an
admin edit is seen by the gate on its next call. Settlement runs and bills are read-only:
staff start or re-check a month (Celery tasks) and watch the progress bar; a failed chunk
(FEE-4.2: out of attempts) is shown on its run and reset from the chunk list.
"""

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.models import (
    Api,
    ApiPrice,
    ApiTierChange,
    App,
    Bill,
    BillApp,
    BillLine,
    Discount,
    OutOfCloudPermission,
    SettlementChunk,
    SettlementRun,
    UsageBatch,
)
from billing.selectors import metering as sel
from billing.services import metering as svc
from portal import clock
from portal.admin_scale import LargeTableAdmin
from portal.errors import DomainError
from portal.money import format_fen


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ApiPriceForm(forms.ModelForm):
    class Meta:
        model = ApiPrice
        fields = ["effective_from", "price_fen_per_1000"]

    def clean(self):
        data = super().clean()
        effective_from = data.get("effective_from")
        if effective_from:
            # An API being added has no saved prices yet: check against none.
            api = self.instance.api if self.instance.api_id else Api()
            try:
                svc.api_price_check(api=api, effective_from=effective_from)
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from exc
        return data


class ApiPriceInline(admin.TabularInline):
    """Price history is append-only: existing rows are shown read-only, new rows are added.

    (Editing a row's date used to save a new row and leave the old one in force.) A price that
    would change a settled month is refused by the form, naming FEE-4.2.
    """

    model = ApiPrice
    form = ApiPriceForm
    extra = 1
    can_delete = False
    fields = ["effective_from", "price_fen_per_1000", "created_at"]
    readonly_fields = ["created_at"]
    ordering = ["-effective_from"]

    def has_change_permission(self, request, obj=None):
        return False  # Django then renders existing rows read-only and ignores edits to them


class ApiTierChangeInline(ReadOnlyInline):
    """The tier history, read-only: a tier is changed on the API itself (``api_update``), which
    writes the row from tomorrow and refuses a settled month (FEE-4.2). A row dated after
    today is the scheduled change."""

    model = ApiTierChange
    fields = ["effective_from", "tier", "actor", "created_at"]
    readonly_fields = fields
    ordering = ["-effective_from"]


class ApiForm(forms.ModelForm):
    class Meta:
        model = Api
        fields = ["code", "title", "tier"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # An existing API's tier field shows (and edits) the tier in force from tomorrow, so
            # saving the title leaves a scheduled change alone, and choosing today's tier cancels it.
            self.initial["tier"] = self._tier_tomorrow()
            self.fields["tier"].help_text = _(
                "类型变更自明天(北京时间 0 点)起生效; 今天的调用仍按当前类型计费和放行。"
            )

    def _tier_tomorrow(self):
        tomorrow = clock.today() + dt.timedelta(days=1)
        return svc.api_tier_in_force(api=self.instance, day=tomorrow) or self.instance.tier

    def clean_tier(self):
        tier = self.cleaned_data.get("tier")
        if self.instance.pk and tier and tier != self._tier_tomorrow():
            # Friendly form error; ``api_update`` checks again under the lock.
            try:
                svc.api_tier_check(api=self.instance, effective_from=clock.today() + dt.timedelta(days=1))
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from exc
        return tier


@admin.register(Api)
class ApiAdmin(admin.ModelAdmin):
    form = ApiForm
    list_display = ["code", "title", "tier_in_force", "scheduled_tier", "current_price"]
    list_filter = ["tier"]
    search_fields = ["code", "title"]
    inlines = [ApiTierChangeInline, ApiPriceInline]

    def get_queryset(self, request):
        # Today's tier and price and the next scheduled change, in the list's one query; "today"
        # is the business date (Asia/Shanghai), as settlement reads it.
        return super().get_queryset(request).annotate(**sel.api_day_annotations(clock.today()))

    @admin.display(description=_("类型"), ordering="tier")
    def tier_in_force(self, obj):
        """The tier in force today (its history), also between midnight and the job that copies
        it to ``Api.tier``; a day before the history (2000-01-01) would show ``Api.tier``, as
        settlement reads it."""
        return Api.Tier(obj.tier_today or obj.tier).label

    def get_readonly_fields(self, request, obj=None):
        # The gate caches by API name; a rename would leave stale entries behind.
        return ["code"] if obj else []

    @admin.display(description=_("当前单价(元/千次)"), ordering="price_today")
    def current_price(self, obj):
        # In yuan, as the rest of the back office (a bare "120" read as ¥120, not ¥1.20).
        return "—" if obj.price_today is None else format_fen(obj.price_today)

    @admin.display(description=_("已排定的类型变更"))
    def scheduled_tier(self, obj):
        """A change made today is in force from tomorrow: it shows here until then."""
        if not obj.next_tier:
            return "—"
        return _("%(tier)s, 自 %(day)s 起") % {
            "tier": Api.Tier(obj.next_tier).label,
            "day": obj.next_tier_from,
        }

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The forms check FEE-4.2 before saving, outside the services' lock; a month planned in
        # between makes the service refuse on save. Django has rolled the save back by then:
        # show the rule on the same page instead of a 500.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.display, messages.ERROR)
            return redirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if change:
            scheduled = "tier" in form.changed_data
            svc.api_update(api=obj, tier=form.cleaned_data["tier"], title=obj.title, actor=request.user)
            if scheduled:
                messages.info(request, _("API类型变更已排定, 自明天(北京时间 0 点)起生效。"))
        else:
            created = svc.api_create(code=obj.code, tier=obj.tier, title=obj.title, actor=request.user)
            obj.pk = created.pk

    def save_formset(self, request, form, formset, change):
        if formset.model is not ApiPrice:
            return super().save_formset(request, form, formset, change)
        for price in formset.save(commit=False):
            svc.api_price_set(
                api=form.instance,
                price_fen_per_1000=price.price_fen_per_1000,
                effective_from=price.effective_from,
                actor=request.user,
            )
        return None

    def has_delete_permission(self, request, obj=None):
        return False  # bills refer to APIs; retire an API by making it free instead


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ["name", "app_key", "organization", "created_at", "secret_rotated_at"]
    search_fields = ["name", "app_key", "organization__name"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["app_key", "secret_rotated_at", "created_at"]
    fields = ["organization", "name", "app_key", "secret_rotated_at", "created_at"]
    list_select_related = ["organization"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            svc.app_rename(app_id=obj.pk, name=obj.name, actor=request.user)  # audited
            return
        app, raw = svc.app_create_for_organization(
            organization_id=obj.organization_id, name=obj.name, actor=request.user
        )
        obj.pk, obj.app_key = app.pk, app.app_key
        messages.warning(request, _("App Secret (只显示一次, 请交给开发者): %(s)s") % {"s": raw})

    def has_delete_permission(self, request, obj=None):
        return False


class PermissionForm(forms.ModelForm):
    class Meta:
        model = OutOfCloudPermission
        fields = ["app", "api", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "api" in self.fields:
            self.fields["api"].queryset = Api.objects.filter(tier=Api.Tier.VALUE_ADDED)


@admin.register(OutOfCloudPermission)
class OutOfCloudPermissionAdmin(admin.ModelAdmin):
    form = PermissionForm
    list_display = ["app", "api", "granted_by", "granted_at", "note"]
    search_fields = ["app__app_key", "app__name", "api__code"]
    autocomplete_fields = ["app"]
    list_select_related = ["app", "api", "granted_by"]

    def has_change_permission(self, request, obj=None):
        return False  # grant or revoke; nothing to edit

    def save_model(self, request, obj, form, change):
        perm = svc.permission_grant(app=obj.app, api=obj.api, actor=request.user, note=obj.note)
        obj.pk = perm.pk

    def delete_model(self, request, obj):
        svc.permission_revoke(permission=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for perm in queryset:
            svc.permission_revoke(permission=perm, actor=request.user)


class DiscountForm(forms.ModelForm):
    class Meta:
        model = Discount
        fields = ["app", "rate", "valid_from", "valid_to", "reason"]

    def clean(self):
        data = super().clean()
        app, start, end = data.get("app"), data.get("valid_from"), data.get("valid_to")
        if app and start and end:
            overlapping = Discount.objects.filter(app=app, valid_from__lte=end, valid_to__gte=start)
            if self.instance.pk:
                overlapping = overlapping.exclude(pk=self.instance.pk)
            if overlapping.exists():
                raise forms.ValidationError(_("FEE-5.1: 该应用在此期间已有折扣(折扣期不得重叠)。"))
            # Friendly form error; ``discount_set`` checks again under the lock.
            try:
                svc.discount_settled_check(
                    discount=self.instance if self.instance.pk else None,
                    app=app,
                    rate=data.get("rate"),
                    valid_from=start,
                    valid_to=end,
                )
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from exc
        return data

    def validate_constraints(self):
        pass  # clean() names the rule; the exclusion constraint stays the database backstop


@admin.register(Discount)
class DiscountAdmin(admin.ModelAdmin):
    form = DiscountForm
    list_display = ["app", "rate", "valid_from", "valid_to", "reason", "created_by"]
    list_filter = ["valid_from"]
    search_fields = ["app__app_key", "app__name"]
    autocomplete_fields = ["app"]
    list_select_related = ["app", "created_by"]

    def save_model(self, request, obj, form, change):
        try:
            svc.discount_set(
                app=obj.app,
                rate=obj.rate,
                valid_from=obj.valid_from,
                valid_to=obj.valid_to,
                reason=obj.reason,
                actor=request.user,
                discount=obj if change else None,
            )
        except DomainError as exc:
            messages.error(request, exc.display)
            raise

    def has_delete_permission(self, request, obj=None):
        """FEE-4.2: a discount covering a day of a settled month is kept (the month's bills
        were computed with it); the delete button is hidden and the delete page answers 403."""
        if obj is not None and obj.pk is not None:
            try:
                svc.discount_settled_check(discount=obj, delete=True)
            except DomainError:
                return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        svc.discount_delete(discount=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        try:
            with transaction.atomic():  # all or none: a refused one keeps the others too
                for d in queryset:
                    svc.discount_delete(discount=d, actor=request.user)
        except DomainError as exc:
            messages.error(request, exc.display)
            raise PermissionDenied(exc.message) from exc


@admin.register(UsageBatch)
class UsageBatchAdmin(LargeTableAdmin):
    list_display = [
        "batch_id",
        "source",
        "rows_total",
        "rows_accepted",
        "rows_rejected",
        "seconds",
        "received_at",
    ]
    search_fields = ["batch_id"]
    ordering = ["-id"]  # batches are appended: newest first on the primary key
    readonly_fields = [f.name for f in UsageBatch._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BillAppInline(ReadOnlyInline):
    model = BillApp
    fields = ["app", "subtotal_fen", "discount_rate", "discount_fen", "total_fen"]
    readonly_fields = fields


class BillLineInline(ReadOnlyInline):
    model = BillLine
    fields = ["app", "api", "location", "calls", "prices", "amount_fen"]
    readonly_fields = fields


class BillPeriodFilter(admin.SimpleListFilter):
    """The months settled, from the runs (a few dozen rows), not ``SELECT DISTINCT`` over the
    bills (one per organization and month)."""

    title = _("账期")
    parameter_name = "period"

    def lookups(self, request, model_admin):
        runs = SettlementRun.objects.order_by("-year", "-month").values_list("year", "month")
        return [(f"{y}-{m:02d}", f"{y}-{m:02d}") for y, m in runs]

    def queryset(self, request, queryset):
        year, _sep, month = (self.value() or "").partition("-")
        if not (year.isdigit() and month.isdigit()):
            return queryset
        return queryset.filter(year=int(year), month=int(month))


@admin.register(Bill)
class BillAdmin(LargeTableAdmin):
    list_display = ["organization", "period", "subtotal", "discount", "total", "ledger_entry_id", "run"]
    list_filter = [BillPeriodFilter]
    search_fields = ["organization__name__icontains"]
    list_select_related = ["organization", "run"]
    readonly_fields = [f.name for f in Bill._meta.fields]
    inlines = [BillAppInline, BillLineInline]

    @admin.display(description=_("账期"), ordering="year")
    def period(self, obj):
        return f"{obj.year}-{obj.month:02d}"

    @admin.display(description=_("小计"))
    def subtotal(self, obj):
        return format_fen(obj.subtotal_fen)

    @admin.display(description=_("折扣"))
    def discount(self, obj):
        return format_fen(obj.discount_fen)

    @admin.display(description=_("应付合计"))
    def total(self, obj):
        return format_fen(obj.total_fen)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _may_run_settlement(request) -> bool:
    """P-4: starting, continuing or re-checking a month, or resetting a failed chunk of it,
    charges wallets (or writes its result), so it takes the permissions to add and change
    settlement runs; viewing runs and bills is not enough."""
    return request.user.has_perm("billing.add_settlementrun") and request.user.has_perm(
        "billing.change_settlementrun"
    )


def _failed_chunks_url(run_id: int) -> str:
    return reverse("admin:billing_settlementchunk_changelist") + f"?run__id__exact={run_id}&state=failed"


class RunMonthForm(forms.Form):
    year = forms.IntegerField(label=_("年"), min_value=2023, max_value=2100)
    month = forms.IntegerField(label=_("月"), min_value=1, max_value=12)
    action = forms.ChoiceField(label=_("操作"), choices=[("run", _("结算")), ("recheck", _("复核"))])


@admin.register(SettlementRun)
class SettlementRunAdmin(admin.ModelAdmin):
    change_list_template = "billing/settlement_run_changelist.html"
    list_display = [
        "period",
        "status",
        "failed_chunks_link",
        "progress",
        "orgs",
        "lines_total",
        "bills_link",
        "recheck_ok",
        "finished_at",
    ]
    list_filter = ["status"]
    readonly_fields = [
        "year",
        "month",
        "status",
        "failed_chunks_detail",
        "progress",
        "orgs_done",
        "orgs_total",
        "chunks_total",
        "lines_total",
        "started_by",
        "created_at",
        "finished_at",
        "last_error",
        "recheck",
        "bills_link",
    ]
    fields = readonly_fields
    actions = ["continue_runs", "recheck_runs"]

    @admin.display(description=_("账期"), ordering="year")
    def period(self, obj):
        return f"{obj.year}-{obj.month:02d}"

    def get_queryset(self, request):
        # The failed chunks of every run on the page, in the list's one query.
        return (
            super()
            .get_queryset(request)
            .annotate(failed_chunks=Count("chunks", filter=Q(chunks__failed_at__isnull=False)))
        )

    @admin.display(description=_("失败分片"), ordering="failed_chunks")
    def failed_chunks_link(self, obj):
        """FEE-4.2: chunks out of attempts are not worked again until staff reset them."""
        if not obj.failed_chunks:
            return "—"
        return format_html(
            '<a href="{}" data-testid="failed-chunks"><strong>{}</strong></a>',
            _failed_chunks_url(obj.pk),
            gettext("%(n)s 个分片失败, 需要处理") % {"n": obj.failed_chunks},
        )

    @admin.display(description=_("失败分片"))
    def failed_chunks_detail(self, obj):
        chunks = list(obj.chunks.filter(failed_at__isnull=False).order_by("index"))
        if not chunks:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    c.index,
                    len(c.organization_ids),
                    c.attempts,
                    date_format(timezone.localtime(c.failed_at), "DATETIME_FORMAT"),
                    c.failure_reason,
                )
                for c in chunks
            ),
        )
        return format_html(
            '<p class="errornote">{}</p><table data-testid="failed-chunks"><thead><tr><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">{}</a></p>',
            gettext(
                "FEE-4.2: 以下分片多次尝试仍未完成, 已停止重试; 排查原因后在分片列表中重置即可重新结算。"
            ),
            gettext("序号"),
            gettext("组织数"),
            gettext("尝试次数"),
            gettext("失败时间"),
            gettext("原因"),
            rows,
            _failed_chunks_url(obj.pk),
            gettext("前往分片列表重置"),
        )

    @admin.display(description=_("进度"))
    def progress(self, obj):
        return format_html(
            '<progress value="{}" max="{}"></progress> {}%',
            obj.orgs_done,
            max(obj.orgs_total, 1),
            obj.percent,
        )

    @admin.display(description=_("组织 已完成/总数"))
    def orgs(self, obj):
        return f"{obj.orgs_done} / {obj.orgs_total}"

    @admin.display(description=_("账单"))
    def bills_link(self, obj):
        url = reverse("admin:billing_bill_changelist") + f"?period={obj.year}-{obj.month:02d}"
        return format_html('<a href="{}">{}</a>', url, _("查看账单"))

    @admin.display(description=_("复核"), boolean=True)
    def recheck_ok(self, obj):
        return obj.recheck.get("ok") if obj.recheck else None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "run-month/",
                self.admin_site.admin_view(self.run_month_view),
                name="billing_settlement_run_month",
            ),
            *super().get_urls(),
        ]

    def _may_run(self, request) -> bool:
        return _may_run_settlement(request)

    def has_run_permission(self, request) -> bool:
        return self._may_run(request)

    def changelist_view(self, request, extra_context=None):
        failed = SettlementChunk.objects.filter(failed_at__isnull=False).count()
        return super().changelist_view(
            request,
            {
                **(extra_context or {}),
                "may_run": self._may_run(request),
                "failed_chunks": failed,
                "failed_chunks_url": reverse("admin:billing_settlementchunk_changelist") + "?state=failed",
            },
        )

    def run_month_view(self, request):
        """Staff start (or continue) or re-check a month; the work runs in Celery tasks."""
        if not self._may_run(request):
            raise PermissionDenied
        form = RunMonthForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            year, month, action = (
                form.cleaned_data["year"],
                form.cleaned_data["month"],
                form.cleaned_data["action"],
            )
            self._enqueue(request, year, month, action)
            return redirect("admin:billing_settlementrun_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("结算或复核某月"),
            "opts": self.model._meta,
        }
        return render(request, "billing/settlement_run_month.html", context)

    def _enqueue(self, request, year, month, action):
        from billing.services.settlement import _check_month
        from billing.tasks_metering import recheck_month_task, settle_month_task

        try:
            _check_month(year, month)
        except DomainError as exc:
            messages.error(request, exc.display)
            return
        from portal.services import audit_record

        if action == "run":
            run, _created = SettlementRun.objects.get_or_create(year=year, month=month)
            audit_record(actor=request.user, action="billing.settlement_run", obj=run)
            settle_month_task.delay(year, month, request.user.pk)
            messages.success(request, _("已提交 %(y)s-%(m)02d 的结算任务。") % {"y": year, "m": month})
        else:
            if not SettlementRun.objects.filter(year=year, month=month).exists():
                messages.error(request, _("该月尚未结算。"))
                return
            recheck_month_task.delay(year, month, request.user.pk)
            messages.success(request, _("已提交 %(y)s-%(m)02d 的复核任务。") % {"y": year, "m": month})

    @admin.action(description=_("继续/重跑所选月份 (只补未完成的分片)"), permissions=["run"])
    def continue_runs(self, request, queryset):
        if not self._may_run(request):
            raise PermissionDenied
        for run in queryset:
            self._enqueue(request, run.year, run.month, "run")

    @admin.action(description=_("复核所选月份"), permissions=["run"])
    def recheck_runs(self, request, queryset):
        if not self._may_run(request):
            raise PermissionDenied
        for run in queryset:
            self._enqueue(request, run.year, run.month, "recheck")


class ChunkStateFilter(admin.SimpleListFilter):
    title = _("状态")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", _("待结算")), ("done", _("已完成")), ("failed", _("失败"))]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(done_at__isnull=True, failed_at__isnull=True)
        if self.value() == "done":
            return queryset.filter(done_at__isnull=False)
        if self.value() == "failed":
            return queryset.filter(failed_at__isnull=False)
        return queryset


@admin.register(SettlementChunk)
class SettlementChunkAdmin(admin.ModelAdmin):
    """A month's chunks with their attempts (FEE-4.2). Read-only; a failed chunk (out of
    attempts: its worker kept dying, or it kept raising) is reset by the action below, which
    takes the permission to run settlement and is audited (``settlement_chunk_reset``)."""

    list_display = [
        "__str__",
        "state",
        "orgs",
        "attempts",
        "last_attempt_at",
        "done_at",
        "failed_at",
        "reason",
    ]
    list_filter = [ChunkStateFilter, "run"]
    list_select_related = ["run"]
    ordering = ["-run__year", "-run__month", "index"]
    readonly_fields = [
        "run",
        "index",
        "state",
        "orgs",
        "attempts",
        "last_attempt_at",
        "done_at",
        "failed_at",
        "reason",
        "organization_ids",
    ]
    fields = readonly_fields
    actions = ["reset_chunks"]

    @admin.display(description=_("状态"))
    def state(self, obj):
        if obj.done_at is not None:
            return gettext("已完成")
        if obj.failed_at is not None:
            return format_html("<strong>{}</strong>", gettext("失败"))
        return gettext("待结算")

    @admin.display(description=_("组织数"))
    def orgs(self, obj):
        return len(obj.organization_ids)

    @admin.display(description=_("原因"))
    def reason(self, obj):
        if obj.failed_at is not None:
            return obj.failure_reason
        return obj.last_error or "—"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_run_permission(self, request) -> bool:
        return _may_run_settlement(request)

    @admin.action(description=_("重置所选失败分片并重新结算"), permissions=["run"])
    def reset_chunks(self, request, queryset):
        from billing.services.settlement import settlement_chunk_reset

        if not _may_run_settlement(request):
            raise PermissionDenied
        reset = []
        for chunk in queryset.order_by("pk"):
            try:
                settlement_chunk_reset(chunk_id=chunk.pk, actor=request.user)
            except DomainError as exc:
                messages.error(request, exc.display)
            else:
                reset.append(str(chunk))
        if reset:
            messages.success(
                request, gettext("已重置并重新提交结算: %(chunks)s") % {"chunks": ", ".join(reset)}
            )
