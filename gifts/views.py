# ruff: noqa: RUF001
"""Shop pages for gifts: register, track status, upload licences, products and pre-check,
violations, disputes with evidence upload.

Access: only members of a shop see these pages; an id of another shop's gift, product, document
or dispute answers 404, like an id that does not exist. The main account (主账号) does
everything; a sub-account (子账号) reads every page, runs pre-checks and answers disputes with
evidence (customer service is often a sub-account's job), but cannot register or edit gifts,
upload licences or change listings (those answer 403 with code GIFT-MAIN-ONLY).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from gifts import listing_check as checks
from gifts import selectors, services
from gifts.errors import ListingBreach
from gifts.forms import (
    DisputeResponseForm,
    GiftForm,
    GiftSubmitForm,
    PrecheckForm,
    ProductCreateForm,
    ProductForm,
    ProductGiftForm,
    QualificationUploadForm,
)
from gifts.models import Gift, GiftCategory
from gifts.value import gift_value_promised, gift_value_resolve, value_basis_label
from portal import clock
from portal.errors import AlreadyDone, DomainError
from portal.forms import request_token_initial

PAGE_SIZE = 25


def _shop_membership(request):
    membership = request.active_membership
    if selectors.shop_of(membership) is None:
        raise Http404
    return membership


def _form_error(form, exc: DomainError):
    field = getattr(form, "SERVICE_FIELDS", {}).get(exc.field, exc.field)
    field = field if field in form.fields else None
    form.add_error(field, exc.display)


@login_required
def gift_list(request):
    membership = _shop_membership(request)
    state = request.GET.get("state") or None
    if state not in Gift.State.values:
        state = None
    page = Paginator(selectors.gift_list_for_shop(membership=membership, state=state), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "gifts/gift_list.html",
        {"page": page, "states": Gift.State.choices, "state": state, "membership": membership},
    )


@login_required
def gift_create(request):
    membership = _shop_membership(request)
    form = GiftForm(request.POST or None, initial=request_token_initial())
    if request.method == "POST" and form.is_valid():
        try:
            gift = services.gift_register(
                membership=membership,
                actor=request.user,
                data=form.service_data(),
                submit="submit" in request.POST,
                request_key=form.cleaned_data["request_token"],
            )
        except DomainError as exc:
            if exc.status == 403:
                raise
            _form_error(form, exc)
        else:
            messages.success(request, _("赠品已登记：%(state)s") % {"state": gift.get_state_display()})
            return redirect("gifts:gift-detail", gift_id=gift.pk)
    return render(request, "gifts/gift_form.html", {"form": form, "gift": None})


@login_required
def gift_edit(request, gift_id):
    membership = _shop_membership(request)
    gift = selectors.gift_get_for_shop(membership=membership, gift_id=gift_id)
    form = GiftForm(request.POST or None, initial=GiftForm.initial_for(gift))
    if request.method == "POST" and form.is_valid():
        try:
            services.gift_update(
                membership=membership,
                actor=request.user,
                gift=gift,
                data=form.service_data(),
                submit="submit" in request.POST,
            )
        except DomainError as exc:
            if exc.status == 403:
                raise
            _form_error(form, exc)
        else:
            messages.success(request, _("已保存。"))
            return redirect("gifts:gift-detail", gift_id=gift.pk)
    return render(request, "gifts/gift_form.html", {"form": form, "gift": gift})


@login_required
def gift_detail(request, gift_id):
    membership = _shop_membership(request)
    gift = selectors.gift_get_for_shop(membership=membership, gift_id=gift_id)
    return render(
        request,
        "gifts/gift_detail.html",
        {
            "gift": gift,
            "value": gift_value_resolve(gift),
            "promised": gift_value_promised(gift),
            "findings": checks.gift_findings(gift),
            "events": selectors.gift_events(gift=gift)[:50],
            "requests": gift.document_requests.order_by("-id"),
            "products": gift.products.all(),
            "membership": membership,
            "submit_form": GiftSubmitForm(initial=request_token_initial()),
        },
    )


@login_required
@require_POST
def gift_submit(request, gift_id):
    membership = _shop_membership(request)
    gift = selectors.gift_get_for_shop(membership=membership, gift_id=gift_id)
    form = GiftSubmitForm(request.POST)
    try:
        gift = services.gift_submit(
            membership=membership,
            actor=request.user,
            gift=gift,
            request_key=form.cleaned_data["request_token"] if form.is_valid() else None,
        )
    except AlreadyDone as done:
        # This very submit was already made (pressed twice, re-sent by the browser): say so.
        gift = done.result
        messages.success(
            request,
            _("该赠品已提交，无需重复提交。当前状态：%(state)s") % {"state": gift.get_state_display()},
        )
    else:
        messages.success(request, _("已提交：%(state)s") % {"state": gift.get_state_display()})
    return redirect("gifts:gift-detail", gift_id=gift.pk)


@login_required
@require_POST
def gift_withdraw(request, gift_id):
    membership = _shop_membership(request)
    gift = selectors.gift_get_for_shop(membership=membership, gift_id=gift_id)
    services.gift_withdraw(membership=membership, actor=request.user, gift=gift)
    messages.success(request, _("赠品已撤回。"))
    return redirect("gifts:gift-detail", gift_id=gift.pk)


# --- qualifications ---------------------------------------------------------------------------------


@login_required
def qualification_list(request):
    membership = _shop_membership(request)
    requests_page = Paginator(
        selectors.document_request_list_for_shop(membership=membership, open_only=True), PAGE_SIZE
    ).get_page(request.GET.get("requests_page"))
    licence_types = GiftCategory.objects.filter(licence_required=True).values_list("licence_type", flat=True)
    # The upload form offers the demands listed on this page (the form posts back to the same URL).
    form = QualificationUploadForm(
        request.POST or None,
        request.FILES or None,
        licence_types=licence_types,
        requests=list(requests_page),
        initial=request_token_initial(),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.qualification_upload(
                membership=membership,
                actor=request.user,
                licence_type=form.cleaned_data["licence_type"],
                upload=form.cleaned_data["file"],
                document_request_id=form.cleaned_data["document_request"],
                request_key=form.cleaned_data["request_token"],
            )
        except DomainError as exc:
            if exc.status in (403, 404):
                raise
            _form_error(form, exc)
        else:
            messages.success(request, _("资质文件已上传，等待平台审核。"))
            return redirect("gifts:qualifications")
    return render(
        request,
        "gifts/qualifications.html",
        {
            "form": form,
            "page": Paginator(
                selectors.qualification_list_for_shop(membership=membership), PAGE_SIZE
            ).get_page(request.GET.get("page")),
            "requests_page": requests_page,
            "today": clock.today(),
            "membership": membership,
        },
    )


@login_required
def document_file(request, kind, pk):
    """Stream a stored document to its shop's members or gift staff; anyone else gets 404."""
    doc = selectors.document_get(user=request.user, membership=request.active_membership, kind=kind, pk=pk)
    if not default_storage.exists(doc.storage_name):
        raise Http404
    response = FileResponse(
        default_storage.open(doc.storage_name, "rb"),
        content_type=doc.content_type,
        as_attachment=False,
        filename=doc.original_name,
    )
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return response


# --- products and pre-check ------------------------------------------------------------------------------


@login_required
def product_list(request):
    membership = _shop_membership(request)
    form = ProductCreateForm(request.POST or None, initial=request_token_initial())
    if request.method == "POST" and form.is_valid():
        try:
            product = services.product_create(
                membership=membership,
                actor=request.user,
                data=form.service_data(),
                request_key=form.cleaned_data["request_token"],
            )
        except DomainError as exc:
            if exc.status == 403:
                raise
            _form_error(form, exc)
        else:
            return redirect("gifts:product-detail", product_id=product.pk)
    return render(
        request,
        "gifts/product_list.html",
        {
            "form": form,
            "page": Paginator(selectors.product_list_for_shop(membership=membership), PAGE_SIZE).get_page(
                request.GET.get("page")
            ),
            "membership": membership,
        },
    )


@login_required
def product_detail(request, product_id):
    membership = _shop_membership(request)
    product = selectors.product_get_for_shop(membership=membership, product_id=product_id)
    form = ProductForm(
        request.POST if request.POST.get("action") == "save" else None,
        initial={f: getattr(product, f) for f in services.PRODUCT_FIELDS},
    )
    findings = None
    status = 200
    action = request.POST.get("action")
    if request.method == "POST":
        try:
            if action == "save" and form.is_valid():
                services.product_update(
                    membership=membership, actor=request.user, product=product, data=form.cleaned_data
                )
                messages.success(request, _("已保存。"))
                return redirect("gifts:product-detail", product_id=product.pk)
            if action == "attach":
                gift = _posted_gift(request, membership)
                services.product_gift_attach(
                    membership=membership, actor=request.user, product=product, gift=gift
                )
                messages.success(request, _("赠品已附赠。"))
                return redirect("gifts:product-detail", product_id=product.pk)
            if action == "detach":
                gift = _posted_gift(request, membership)
                services.product_gift_detach(
                    membership=membership, actor=request.user, product=product, gift=gift
                )
                return redirect("gifts:product-detail", product_id=product.pk)
            if action == "publish":
                services.product_publish(membership=membership, actor=request.user, product=product)
                messages.success(request, _("商品已上架。"))
                return redirect("gifts:product-detail", product_id=product.pk)
            if action == "precheck":
                findings = checks.product_listing_check(product)
        except DomainError as exc:
            if exc.status in (403, 404):
                raise
            messages.error(request, exc.display)
            if exc.code == "invalid":
                status = 400  # malformed input, not a rule's refusal
            if isinstance(exc, ListingBreach):
                findings = exc.findings  # the pre-check table shows every rule the change would breach
            product.refresh_from_db()
    attached = list(product.gifts.select_related("category"))
    attachable = selectors.gift_list_for_shop(membership=membership, state=Gift.State.APPROVED).exclude(
        pk__in=[g.pk for g in attached]
    )
    return render(
        request,
        "gifts/product_detail.html",
        {
            "product": product,
            "form": form,
            "attached": attached,
            "attachable": attachable,
            "findings": findings,
            "membership": membership,
        },
        status=status,
    )


def _posted_gift(request, membership) -> Gift:
    """The shop's gift an attach/detach button names; anything but an id is an error on the field."""
    form = ProductGiftForm(request.POST)
    if not form.is_valid():
        raise DomainError("invalid", _("请从列表中选择赠品"), field="gift")
    return selectors.gift_get_for_shop(membership=membership, gift_id=form.cleaned_data["gift"])


@login_required
def precheck(request):
    """Pre-check a listing before it exists: the same service as the API and the reviewers."""
    membership = _shop_membership(request)
    gifts_qs = selectors.gift_list_for_shop(membership=membership).exclude(state=Gift.State.REMOVED)
    form = PrecheckForm(request.POST or None, gifts_qs=gifts_qs)
    findings = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        findings = checks.listing_check(
            title=data["title"],
            subtitle=data["subtitle"],
            main_image_shows_gift_alone=data["main_image_shows_gift_alone"],
            gift_more_prominent=data["gift_more_prominent"],
            gifts=list(data["gifts"]),
        )
    return render(request, "gifts/precheck.html", {"form": form, "findings": findings})


# --- violations and disputes ------------------------------------------------------------------------------


@login_required
def violation_list(request):
    membership = _shop_membership(request)
    page = Paginator(selectors.violation_list_for_shop(membership=membership), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "gifts/violations.html", {"page": page})


@login_required
def dispute_list(request):
    membership = _shop_membership(request)
    page = Paginator(selectors.dispute_list_for_shop(membership=membership), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "gifts/dispute_list.html", {"page": page, "now": clock.now()})


@login_required
def dispute_detail(request, dispute_id):
    membership = _shop_membership(request)
    dispute = selectors.dispute_get_for_shop(membership=membership, dispute_id=dispute_id)
    form = DisputeResponseForm(request.POST or None, request.FILES or None, initial=request_token_initial())
    if request.method == "POST" and form.is_valid():
        try:
            services.dispute_respond(
                membership=membership,
                actor=request.user,
                dispute=dispute,
                response=form.cleaned_data["response"],
                files=form.cleaned_data["files"],
                request_key=form.cleaned_data["request_token"],
            )
        except DomainError as exc:
            if exc.status in (403, 404):
                raise
            _form_error(form, exc)
        else:
            messages.success(request, _("举证已提交。"))
            return redirect("gifts:dispute-detail", dispute_id=dispute.pk)
    calculation = dispute.calculation or {}
    if calculation.get("explanation"):
        # The row stores the explanation in the default language; translate it for display only.
        dispute.calculation = {**calculation, "explanation": _(calculation["explanation"])}
    now = clock.now()
    return render(
        request,
        "gifts/dispute_detail.html",
        {
            "dispute": dispute,
            "form": form,
            "value_basis_label": value_basis_label(calculation.get("figures", {}).get("value_basis", "")),
            "evidence": dispute.evidence.all(),
            "events": dispute.events.select_related("actor").order_by("-at", "-id"),
            "can_respond": dispute.state in ("awaiting_merchant", "merchant_responded")
            and now <= dispute.response_deadline_at,
            "now": now,
        },
    )
