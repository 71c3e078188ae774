# ruff: noqa: RUF001
"""Back office for gift reviewers (group ``gift-reviewers``).

Shop data is read-only here: every decision is an admin action that calls a service, which
checks the rule, writes the event and the audit entry. Actions that need input (a reason, a
licence number, a deadline, a fair value) show a small form first. Review queues list the
longest-waiting item first.
"""

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import F
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from gifts import listing_check as checks
from gifts import services
from gifts.models import (
    DisputeEvidence,
    DocumentRequest,
    Gift,
    GiftCategory,
    GiftDispute,
    GiftEvent,
    GiftShipment,
    Order,
    Product,
    Qualification,
    RuleVersion,
    SpotCheck,
    Violation,
    ViolationAnnulment,
)
from gifts.value import gift_line_quantity, gift_value_resolve
from portal import clock
from portal.admin_scale import LargeTableAdmin, RecentValuesListFilter
from portal.errors import DomainError
from portal.money import format_fen, yuan_to_fen
from portal.services import audit_record

# --- action forms --------------------------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("原因"), widget=forms.Textarea(attrs={"rows": 3}))


class ApproveLicenceForm(forms.Form):
    licence_number = forms.CharField(label=gettext_lazy("许可证编号"), max_length=100)
    valid_until = forms.DateField(
        label=gettext_lazy("有效期至"), widget=forms.DateInput(attrs={"type": "date"})
    )


class DemandDocumentsForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("索取原因"), widget=forms.Textarea(attrs={"rows": 3}))
    days = forms.IntegerField(label=gettext_lazy("期限（天）"), min_value=1, max_value=60, initial=7)


class FairValueForm(forms.Form):
    amount = forms.DecimalField(
        label=gettext_lazy("市场公允价值（元）"),
        help_text=gettext_lazy("单件赠品的价值"),
        min_value=0,
        max_digits=12,
        decimal_places=2,
    )
    reason = forms.CharField(label=gettext_lazy("评估依据"), widget=forms.Textarea(attrs={"rows": 3}))
    overrides_declared = forms.BooleanField(
        label=gettext_lazy("商家声明价值明显不符，以公允价值为准"), required=False
    )


class DecideForm(forms.Form):
    decision = forms.ChoiceField(
        label=gettext_lazy("裁决"), choices=[c for c in GiftDispute.Decision.choices if c[0]]
    )
    note = forms.CharField(label=gettext_lazy("裁决说明"), widget=forms.Textarea(attrs={"rows": 3}))


class NoteForm(forms.Form):
    note = forms.CharField(label=gettext_lazy("核查说明"), widget=forms.Textarea(attrs={"rows": 3}))


def run_action(modeladmin, request, queryset, *, form_class, title, apply, single=False):
    """Show ``form_class`` for the selected rows, then call ``apply(obj, cleaned_data)`` per row.
    A refused row reports its rule code and message; the others go through."""
    if single and queryset.count() != 1:
        modeladmin.message_user(request, _("请只选择一条记录。"), messages.WARNING)
        return None
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        done = 0
        for obj in queryset:
            try:
                apply(obj, form.cleaned_data)
                done += 1
            except DomainError as exc:
                modeladmin.message_user(request, f"{obj}: {exc.display}", messages.ERROR)
        if done:
            modeladmin.message_user(
                request,
                _("%(title)s：已处理 %(done)s 条。") % {"title": title, "done": done},
                messages.SUCCESS,
            )
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "queryset": queryset,
        "action": request.POST.get("action"),
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "gifts/admin/action_form.html", context)


def run_simple(modeladmin, request, queryset, *, title, apply):
    done = 0
    for obj in queryset:
        try:
            apply(obj)
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.display}", messages.ERROR)
    if done:
        modeladmin.message_user(
            request, _("%(title)s：已处理 %(done)s 条。") % {"title": title, "done": done}, messages.SUCCESS
        )


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Staff read shop data; decisions are actions (which need the change permission)."""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.readonly_fields)


class LargeReadOnlyModelAdmin(LargeTableAdmin, ReadOnlyModelAdmin):
    """Shop data that grows with the shops' business: orders, shipments, violations, events,
    disputes (see ``portal.admin_scale``)."""


def _waiting(since):
    return timesince(since, clock.now()) if since else "—"


def queue_state_filter(model, default: str):
    """A state filter whose unfiltered view is the review queue (``default``); 全部 shows all."""

    class QueueStateFilter(admin.SimpleListFilter):
        title = gettext_lazy("状态")
        parameter_name = "queue"

        def lookups(self, request, model_admin):
            return [("all", _("全部")), *model.State.choices]

        def choices(self, changelist):
            current = self.value() or default
            for value, label in self.lookup_choices:
                yield {
                    "selected": current == value,
                    "query_string": changelist.get_query_string({self.parameter_name: value}),
                    "display": label,
                }

        def queryset(self, request, queryset):
            if self.value() is None and request.method == "POST":
                return queryset  # an action on selected rows: the default view must not drop them
            value = self.value() or default
            return queryset if value == "all" else queryset.filter(state=value)

    return QueueStateFilter


def _findings_html(findings):
    if not findings:
        return format_html('<span style="color:#166534">{}</span>', _("预检通过：未发现问题"))
    return format_html(
        "<ul>{}</ul>",
        format_html_join("", "<li><strong>{}</strong> {}</li>", ((f.rule, f.message) for f in findings)),
    )


# --- staff-managed reference data ------------------------------------------------------------------


@admin.register(GiftCategory)
class GiftCategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "is_prohibited", "licence_required", "licence_type")
    list_filter = ("is_prohibited", "licence_required")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        services.category_save(category=obj, actor=request.user, changed=list(form.changed_data))

    def delete_model(self, request, obj):
        self._audit_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):  # the list's "delete selected" action
        for obj in queryset:
            self._audit_delete(request, obj)
        super().delete_queryset(request, queryset)

    @staticmethod
    def _audit_delete(request, obj):
        audit_record(actor=request.user, action="gifts.category_delete", obj=obj, details={"name": obj.name})


@admin.register(RuleVersion)
class RuleVersionAdmin(admin.ModelAdmin):
    list_display = ("code", "version", "title", "effective_from", "effective_to")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="gifts.ruleversion_change" if change else "gifts.ruleversion_create",
            obj=obj,
            details={"changed": list(form.changed_data)},
        )

    def has_delete_permission(self, request, obj=None):
        return False  # violations point at versions; a version ends by its effective_to


# --- gifts: the review queue ----------------------------------------------------------------------


# Labels for the keys an event's details use most; another key is shown as stored.
EVENT_DETAIL_LABELS = {
    "reason": gettext_lazy("原因"),
    "note": gettext_lazy("备注"),
    "notes": gettext_lazy("备注"),
    "fields": gettext_lazy("修改的字段"),
    "changed": gettext_lazy("修改的字段"),
    "decision": gettext_lazy("裁决"),
    "outcome": gettext_lazy("结果"),
    "order_no": gettext_lazy("订单号"),
    "tracking_no": gettext_lazy("运单号"),
}


def _detail_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_detail_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_detail_value(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    return str(value)


class EventInline(admin.TabularInline):
    """The gift's event log as a reviewer reads it: local time, labels rather than codes, and
    the details as "key: value" lines (empty values left out), not raw JSON."""

    model = GiftEvent
    fk_name = "gift"
    fields = ("when", "event", "state_change", "rule_id", "actor", "details_text")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-at", "-id")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("时间"))
    def when(self, e):
        return f"{clock.local(e.at):%Y-%m-%d %H:%M}"

    @admin.display(description=gettext_lazy("事件"))
    def event(self, e):
        return e.kind_label

    @admin.display(description=gettext_lazy("状态变化"))
    def state_change(self, e):
        if not e.to_state:
            return "—"
        return f"{e.from_state_label} → {e.to_state_label}" if e.from_state else e.to_state_label

    @admin.display(description=gettext_lazy("详情"))
    def details_text(self, e):
        items = [(k, v) for k, v in (e.details or {}).items() if v not in (None, "", [], {})]
        if not items:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            "{}: {}",
            ((EVENT_DETAIL_LABELS.get(k, k), _detail_value(v)) for k, v in items),
        )


@admin.register(Gift)
class GiftAdmin(ReadOnlyModelAdmin):
    list_display = (
        "name",
        "shop",
        "category",
        "state",
        "ship_from",
        "value",
        "waiting",
        "domestic_shipping_approved",
    )
    list_filter = (queue_state_filter(Gift, Gift.State.SUBMITTED), "ship_from", "category", "is_lottery")
    search_fields = ("name", "brand", "shop__name")
    list_select_related = ("shop", "category")
    readonly_fields = ("resolved_value", "listing_findings", "licence_documents")
    inlines = [EventInline]
    show_full_result_count = False
    actions = [
        "approve",
        "reject",
        "request_revisions",
        "approve_domestic_shipping",
        "demand_documents",
        "set_fair_value",
        "remove",
    ]

    def get_ordering(self, request):
        # The queue: the gift that has waited longest comes first.
        return [F("submitted_at").asc(nulls_last=True), "id"]

    @admin.display(description=gettext_lazy("等待时长"), ordering="submitted_at")
    def waiting(self, gift):
        return _waiting(gift.submitted_at) if gift.state == Gift.State.SUBMITTED else "—"

    @admin.display(description=gettext_lazy("赠品价值 (GIFT-1.2)"))
    def value(self, gift):
        v = gift_value_resolve(gift)
        return f"{format_fen(v.amount_fen)} · {v.basis_label}"

    @admin.display(description=gettext_lazy("赠品价值 (GIFT-1.2)"))
    def resolved_value(self, gift):
        v = gift_value_resolve(gift)
        extra = ""
        if gift.fair_value_fen is not None:
            when = clock.local(gift.fair_value_set_at).strftime("%Y-%m-%d %H:%M")
            extra = (
                _(" · 公允价值 %(value)s 由 %(by)s 于 %(when)s 设置：")
                % {"value": format_fen(gift.fair_value_fen), "by": gift.fair_value_set_by, "when": when}
            ) + str(gift.fair_value_reason)
        return f"{format_fen(v.amount_fen)}（{v.basis_label}）{extra}"

    @admin.display(description=gettext_lazy("审核发现 (GIFT-2.x)"))
    def listing_findings(self, gift):
        return _findings_html(checks.gift_findings(gift))

    @admin.display(description=gettext_lazy("店铺资质文件"))
    def licence_documents(self, gift):
        docs = Qualification.objects.filter(shop_id=gift.shop_id).order_by("-id")[:10]
        if not docs:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}" target="_blank" rel="noopener">{}</a> · {} · {}',
            (
                (
                    reverse("gifts:document-file", args=["qualification", q.pk]),
                    q.original_name,
                    q.licence_type,
                    q.get_state_display(),
                )
                for q in docs
            ),
        )

    @admin.action(description=gettext_lazy("审核通过 (GIFT-2.1)"), permissions=["change"])
    def approve(self, request, queryset):
        run_simple(
            self,
            request,
            queryset,
            title=_("审核通过"),
            apply=lambda g: services.gift_approve(gift=g, actor=request.user),
        )

    @admin.action(description=gettext_lazy("驳回（需写明原因）"), permissions=["change"])
    def reject(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title=_("驳回赠品"),
            apply=lambda g, d: services.gift_reject(gift=g, actor=request.user, reason=d["reason"]),
        )

    @admin.action(description=gettext_lazy("要求修改（需写明原因）"), permissions=["change"])
    def request_revisions(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title=_("要求修改"),
            apply=lambda g, d: services.gift_request_revisions(
                gift=g, actor=request.user, reason=d["reason"]
            ),
        )

    @admin.action(description=gettext_lazy("批准国内发货 (GIFT-4.3)"), permissions=["change"])
    def approve_domestic_shipping(self, request, queryset):
        run_simple(
            self,
            request,
            queryset,
            title=_("批准国内发货"),
            apply=lambda g: services.gift_domestic_shipping_approve(gift=g, actor=request.user),
        )

    @admin.action(description=gettext_lazy("索取资质 (GIFT-3)"), permissions=["change"])
    def demand_documents(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=DemandDocumentsForm,
            title=_("索取资质"),
            apply=lambda g, d: services.document_request_create(
                gift=g,
                actor=request.user,
                reason=d["reason"],
                deadline_at=clock.now() + dt.timedelta(days=d["days"]),
            ),
        )

    @admin.action(description=gettext_lazy("设置市场公允价值 (GIFT-1.2)"), permissions=["change"])
    def set_fair_value(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=FairValueForm,
            title=_("设置市场公允价值"),
            apply=lambda g, d: services.gift_fair_value_set(
                gift=g,
                amount_fen=yuan_to_fen(d["amount"]),
                reason=d["reason"],
                actor=request.user,
                overrides_declared=d["overrides_declared"],
            ),
        )

    @admin.action(description=gettext_lazy("删除赠品（需写明原因）"), permissions=["change"])
    def remove(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title=_("删除赠品"),
            apply=lambda g, d: services.gift_remove(gift=g, actor=request.user, reason=d["reason"]),
        )


# --- qualifications ------------------------------------------------------------------------------------


@admin.register(Qualification)
class QualificationAdmin(ReadOnlyModelAdmin):
    list_display = ("licence_type", "shop", "state", "document", "waiting", "licence_number", "valid_until")
    list_filter = (queue_state_filter(Qualification, Qualification.State.PENDING), "licence_type")
    search_fields = ("shop__name", "licence_number")
    list_select_related = ("shop",)
    readonly_fields = ("document",)
    actions = ["approve", "reject", "revoke"]

    def get_ordering(self, request):
        return ["uploaded_at", "id"]

    @admin.display(description=gettext_lazy("文件"))
    def document(self, q):
        url = reverse("gifts:document-file", args=["qualification", q.pk])
        return format_html(
            _('<a href="{}" target="_blank" rel="noopener" class="document-link">查看 {}</a>'),
            url,
            q.original_name,
        )

    @admin.display(description=gettext_lazy("等待时长"), ordering="uploaded_at")
    def waiting(self, q):
        return _waiting(q.uploaded_at) if q.state == Qualification.State.PENDING else "—"

    @admin.action(description=gettext_lazy("审核通过（填写许可证编号和有效期）"), permissions=["change"])
    def approve(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=ApproveLicenceForm,
            title=_("资质审核通过"),
            single=True,
            apply=lambda q, d: services.qualification_approve(
                qualification=q,
                actor=request.user,
                licence_number=d["licence_number"],
                valid_until=d["valid_until"],
            ),
        )

    @admin.action(description=gettext_lazy("驳回资质（需写明原因）"), permissions=["change"])
    def reject(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title=_("驳回资质"),
            apply=lambda q, d: services.qualification_reject(
                qualification=q, actor=request.user, reason=d["reason"]
            ),
        )

    @admin.action(
        description=gettext_lazy("吊销资质：被发证机关吊销或查明无效（需写明原因，GIFT-2.3）"),
        permissions=["change"],
    )
    def revoke(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title=_("吊销资质"),
            apply=lambda q, d: services.qualification_revoke(
                qualification=q, actor=request.user, reason=d["reason"]
            ),
        )


@admin.register(DocumentRequest)
class DocumentRequestAdmin(ReadOnlyModelAdmin):
    list_display = ("gift", "state", "deadline_at", "requested_by", "requested_at", "fulfilled_by")
    list_filter = ("state",)


# --- listings, shipping, spot checks, violations ---------------------------------------------------------


@admin.register(Product)
class ProductAdmin(ReadOnlyModelAdmin):
    list_display = ("title", "shop", "state", "created_at")
    list_filter = ("state",)
    search_fields = ("title", "shop__name")
    readonly_fields = ("listing_findings", "attached_gifts")
    actions = ["take_down"]

    @admin.display(description=gettext_lazy("预检发现 (GIFT-2.x)"))
    def listing_findings(self, product):
        return _findings_html(checks.product_listing_check(product))

    @admin.display(description=gettext_lazy("赠品"))
    def attached_gifts(self, product):
        return ", ".join(g.name for g in product.gifts.all()) or "—"

    @admin.action(description=gettext_lazy("下架商品 (GIFT-2.5)"), permissions=["change"])
    def take_down(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title=_("下架商品"),
            apply=lambda p, d: services.product_take_down(product=p, actor=request.user, reason=d["reason"]),
        )


@admin.register(Order)
class OrderAdmin(LargeReadOnlyModelAdmin):
    list_display = (
        "order_no",
        "shop",
        "product",
        "paid_amount_fen",
        "ship_by_at",
        "signed_for_at",
        "product_dispute_state",
    )
    search_fields = ("order_no", "shop__name__icontains")
    search_help_text = gettext_lazy("订单号 (完整) 或店铺名称")


@admin.register(GiftShipment)
class GiftShipmentAdmin(LargeReadOnlyModelAdmin):
    list_display = (
        "order",
        "gift",
        "quantity",
        "due",
        "shipped_at",
        "tracking_no",
        "fake_shipping",
        "judged_at",
    )
    list_select_related = ("order", "gift")
    search_fields = ("order__order_no", "tracking_no")
    search_help_text = gettext_lazy("订单号或运单号 (完整)")
    actions = ["mark_fake"]

    @admin.display(description=gettext_lazy("应发货时间 (GIFT-4.2)"))
    def due(self, s):
        return s.due_by_at

    @admin.action(description=gettext_lazy("认定虚假发货 (GIFT-4.2)"), permissions=["change"])
    def mark_fake(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=NoteForm,
            title=_("认定虚假发货"),
            apply=lambda s, d: services.gift_shipment_mark_fake(
                shipment=s, actor=request.user, note=d["note"]
            ),
        )


class SpotCheckForm(forms.ModelForm):
    class Meta:
        model = SpotCheck
        fields = ["gift", "outcome", "notes", "checked_at"]


@admin.register(SpotCheck)
class SpotCheckAdmin(admin.ModelAdmin):
    """Staff record a spot check (GIFT-3); the service records the violation its outcome means."""

    form = SpotCheckForm
    list_display = ("gift", "outcome", "checked_by", "checked_at", "violation")
    list_filter = ("outcome",)
    autocomplete_fields = ("gift",)

    def get_changeform_initial_data(self, request):
        return {"checked_at": clock.now()}

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        check, result = services.spot_check_record(
            gift=obj.gift, actor=request.user, outcome=obj.outcome, notes=obj.notes, checked_at=obj.checked_at
        )
        obj.pk = check.pk
        if result is not None and not result.recorded:
            self.message_user(request, result.skipped_reason, messages.WARNING)


class AnnulledFilter(admin.SimpleListFilter):
    title = gettext_lazy("是否撤销")
    parameter_name = "annulled"

    def lookups(self, request, model_admin):
        return [("no", _("有效")), ("yes", _("已撤销"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(annulment__isnull=self.value() == "no")
        return queryset


@admin.register(Violation)
class ViolationAdmin(LargeReadOnlyModelAdmin):
    list_display = (
        "occurred_at",
        "shop",
        "rule_id",
        "violation_type",
        "rule_version",
        "gift",
        "product",
        "gift_value_fen",
        "weight",
        "standing",
    )
    list_filter = (
        AnnulledFilter,
        ("rule_id", RecentValuesListFilter),
        ("violation_type", RecentValuesListFilter),
    )
    search_fields = ("shop__name__icontains",)
    list_select_related = ("shop", "rule_version", "gift", "product", "annulment")
    readonly_fields = ("standing",)

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("状态"))
    def standing(self, v):
        if not v.is_annulled:
            return _("有效")
        a = v.annulment
        return format_html(
            '<span class="annulled" data-annulled="{}">{}</span> {} · {}',
            a.pk,
            _("已撤销（不计权重）"),
            clock.local(a.annulled_at).strftime("%Y-%m-%d %H:%M"),
            a.reason,
        )


@admin.register(ViolationAnnulment)
class ViolationAnnulmentAdmin(ReadOnlyModelAdmin):
    list_display = ("annulled_at", "violation", "cause", "shipment", "annulled_by")
    list_filter = ("cause",)
    list_select_related = ("violation__shop", "shipment__order", "shipment__gift", "annulled_by")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(GiftEvent)
class GiftEventAdmin(LargeReadOnlyModelAdmin):
    list_display = ("at", "shop", "kind", "from_state", "to_state", "rule_id", "actor", "gift", "dispute")
    list_filter = (("kind", RecentValuesListFilter), ("rule_id", RecentValuesListFilter))
    list_select_related = ("shop", "actor", "gift", "dispute")

    def has_change_permission(self, request, obj=None):
        return False


# --- disputes ------------------------------------------------------------------------------------------


class EvidenceInline(admin.TabularInline):
    model = DisputeEvidence
    fields = ("link", "content_type", "size_bytes", "uploaded_by", "uploaded_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("证据"))
    def link(self, e):
        url = reverse("gifts:document-file", args=["evidence", e.pk])
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, e.original_name)


@admin.register(GiftDispute)
class GiftDisputeAdmin(LargeReadOnlyModelAdmin):
    list_display = ("order", "shop", "gift", "kind", "state", "deadline", "returned_intact", "preview")
    list_filter = ("state", "kind")
    search_fields = ("order__order_no", "shop__name__icontains")
    list_select_related = ("order", "shop", "gift")
    readonly_fields = ("calculation_now",)
    inlines = [EvidenceInline]
    actions = ["decide"]

    def get_ordering(self, request):
        return ["response_deadline_at", "id"]

    def get_queryset(self, request):
        # The compensation preview needs each order's gift line quantity: in the list's query.
        return super().get_queryset(request).annotate(line_quantity=gift_line_quantity())

    @admin.display(description=gettext_lazy("举证截止"), ordering="response_deadline_at")
    def deadline(self, d):
        return d.response_deadline_at

    @admin.display(description=gettext_lazy("完好退回赠品数量"))
    def returned_intact(self, d):
        """GIFT-5.4: units returned intact of those due, on a return; "—" elsewhere."""
        return d.units_returned_intact_text

    @admin.display(description=gettext_lazy("赔付预估"))
    def preview(self, d):
        calc = services.dispute_preview(d, line_quantity=d.line_quantity)
        return f"{calc.rule} {format_fen(calc.compensation_fen)}"

    @admin.display(description=gettext_lazy("按当前价值计算 (GIFT-5)"))
    def calculation_now(self, d):
        calc = services.dispute_preview(d)
        return format_html(
            _("{} · {} · 赔付 {} · 扣除 {} · 运费 {} · {}"),
            calc.rule,
            calc.explanation,
            format_fen(calc.compensation_fen),
            format_fen(calc.refund_deduction_fen),
            calc.return_shipping_payer or "—",
            calc.figures,
        )

    @admin.action(description=gettext_lazy("裁决争议"), permissions=["change"])
    def decide(self, request, queryset):
        return run_action(
            self,
            request,
            queryset,
            form_class=DecideForm,
            title=_("裁决赠品争议"),
            apply=lambda d, data: services.dispute_decide(
                dispute=d, actor=request.user, decision=data["decision"], note=data["note"]
            ),
        )
