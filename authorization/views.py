"""HTML pages: the creator's grants (GRANT-7), the organization's list (GRANT-8), data pages
behind the access check (GRANT-11) and the live room page with 解锁更多数据 (GRANT-3)."""

import csv
import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from authorization import selectors, services
from authorization.forms import AuthorizeForm, EarlyRenewForm, RenewForm, RevokeForm
from authorization.models import GrantState, LiveRoomRequest, Scope
from portal import clock
from portal.errors import AlreadyDone, DomainError
from portal.forms import request_token_initial
from portal.models import Organization
from portal.pagination import keyset_page
from portal.selectors import organization_search

PAGE_SIZE = 25
# Cursors of one list are not accepted by the other (signed with a per-list salt).
CREATOR_LIST_SALT = "authorization.grants.creator"
ORG_LIST_SALT = "authorization.grants.org"


def _creator_or_404(request):
    creator = getattr(request.user, "creator", None)
    if creator is None:
        raise Http404
    return creator


def _membership_or_404(request):
    membership = request.active_membership
    if membership is None or membership.organization.kind not in (
        Organization.Kind.SHOP,
        Organization.Kind.AGENCY,
    ):
        raise Http404
    return membership


@login_required
def index(request):
    if hasattr(request.user, "creator"):
        return redirect("authorization:creator-grants")
    _membership_or_404(request)
    return redirect("authorization:org-grants")


# --- creator ---------------------------------------------------------------------------------------

# The most organizations one authorize form carries (the API's limit too).
MAX_TICKED = 200


def _org_choices(query, ticked_ids):
    """GRANT-2 picker: the organizations already ticked (kept, ticked, through every new search
    and a refused submit), then the search's other matches."""
    ids = [int(v) for v in ticked_ids if v.isdigit() and len(v) < 19][:MAX_TICKED]
    ticked = list(
        AuthorizeForm.base_fields["organizations"].queryset.filter(pk__in=ids).order_by("name", "id")
    )
    found = (
        organization_search(query=query, kinds=[Organization.Kind.SHOP, Organization.Kind.AGENCY])
        if query
        else []
    )
    ticked_pks = {o.pk for o in ticked}
    return {"ticked": ticked, "found": [o for o in found if o.pk not in ticked_pks], "q": query}


@login_required
def creator_grants(request):
    """GRANT-7: organizations with all_data grants (nearest end first), actions in place,
    pending live-room requests and live-room grants; GRANT-2 authorize form."""
    creator = _creator_or_404(request)
    today = clock.today()
    # The search box is part of the authorize form, its button a submit named "search": without
    # JavaScript a search posts the ticked organizations along, and the page comes back with them
    # still ticked beside the new matches, nothing authorized (with htmx the results update as
    # the creator types, and Enter still lands here).
    searching = request.method == "POST" and "search" in request.POST
    form = AuthorizeForm(None if searching else (request.POST or None))
    if request.method == "POST" and not searching and form.is_valid():
        try:
            grants = services.grant_authorize_all_data(
                creator=creator,
                organizations=list(form.cleaned_data["organizations"]),
                start_date=form.cleaned_data["start_date"],
                end_date=form.cleaned_data["end_date"],
                actor=request.user,
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.display)
        else:
            messages.success(request, _("已授权给 %(n)d 个店铺/机构。") % {"n": len(grants)})
            return redirect("authorization:creator-grants")
    state = request.GET.get("state") or None
    if state not in GrantState.values:
        state = None
    page = keyset_page(
        selectors.grant_list_for_creator(creator=creator, today=today, state=state),
        keys=selectors.LIST_KEYS,
        cursor=request.GET.get("cursor") or None,
        size=PAGE_SIZE,
        salt=CREATOR_LIST_SALT,
    )
    return render(
        request,
        "authorization/creator_grants.html",
        {
            **_org_choices(
                (request.POST if request.method == "POST" else request.GET).get("q", ""),
                request.POST.getlist("organizations"),
            ),
            "page": page,
            "form": form,
            "start_value": request.POST.get("start_date", today.isoformat()),
            "end_value": request.POST.get("end_date", ""),
            "state": state,
            "states": GrantState.choices,
            "today": today,
            "tomorrow": today + dt.timedelta(days=1),
            **_row_tokens(),
            "requests": Paginator(
                selectors.live_room_request_pending_for_creator(creator=creator), PAGE_SIZE
            ).get_page(request.GET.get("requests_page")),
            "room_grants": Paginator(
                selectors.live_room_grant_list_for_creator(creator=creator, today=today), PAGE_SIZE
            ).get_page(request.GET.get("rooms_page")),
        },
    )


@login_required
def organization_search_partial(request):
    """htmx: organizations matching the typed name, as checkboxes for the authorize form."""
    _creator_or_404(request)
    return render(
        request,
        "authorization/_org_search.html",
        _org_choices(request.GET.get("q", ""), request.GET.getlist("organizations")),
    )


def _row_tokens() -> dict:
    """A grant row's one-time tokens: the renew forms' and the revoke form's own, so that using
    one form leaves the other's token unspent."""
    return {**request_token_initial(), "revoke_token": request_token_initial()["request_token"]}


def _row_response(request, grant, *, error=None, notice=None):
    if request.htmx:
        today = clock.today()
        grant.state = selectors.state_of(grant, today)
        return render(
            request,
            "authorization/_grant_row.html",
            {
                "g": grant,
                "error": error,
                "notice": notice,
                # A refused action keeps the dates the creator typed, to be corrected rather
                # than typed again (the row is swapped in place, the form with it).
                "entered": request.POST if error else {},
                "today": today,
                "tomorrow": today + dt.timedelta(days=1),
                **_row_tokens(),
            },
        )
    if error:
        messages.error(request, error)
    if notice:
        messages.success(request, notice)
    return redirect("authorization:creator-grants")


def _grant_action(request, grant_id, form_class, call, *, already_done=""):
    creator = _creator_or_404(request)
    grant = selectors.grant_get_for_creator(creator=creator, grant_id=grant_id)
    form = form_class(request.POST)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        # Named as the row labels it: the form's field name (end_date) means nothing to a reader.
        label = form.fields[field].label if field in form.fields else ""
        return _row_response(request, grant, error=f"{label}{_('：')}{errors[0]}" if label else errors[0])  # noqa: RUF001
    try:
        grant = call(grant, form.cleaned_data)
    except AlreadyDone as done:
        # This very form was already carried out (pressed twice, re-sent by the browser): the
        # grant is shown as it is now, not the refusal the repeat would meet.
        return _row_response(request, done.result, notice=already_done)
    except DomainError as exc:
        return _row_response(request, grant, error=exc.display)
    if not request.htmx:
        messages.success(request, _("操作成功。"))
    return _row_response(request, grant)


@login_required
@require_POST
def grant_revoke(request, grant_id):
    return _grant_action(
        request,
        grant_id,
        RevokeForm,
        lambda g, d: services.grant_revoke(
            grant=g, actor=request.user, reason=d["reason"], request_key=d["request_token"]
        ),
        already_done=_("已解除授权，无需重复提交。"),  # noqa: RUF001
    )


@login_required
@require_POST
def grant_early_renew(request, grant_id):
    return _grant_action(
        request,
        grant_id,
        EarlyRenewForm,
        lambda g, d: services.grant_early_renew(
            grant=g, end_date=d["end_date"], actor=request.user, request_key=d["request_token"]
        ),
        already_done=_("已提前续约，无需重复提交。"),  # noqa: RUF001
    )


@login_required
@require_POST
def grant_renew(request, grant_id):
    return _grant_action(
        request,
        grant_id,
        RenewForm,
        lambda g, d: services.grant_renew(
            grant=g,
            start_date=d["start_date"],
            end_date=d["end_date"],
            actor=request.user,
            request_key=d["request_token"],
        ),
        already_done=_("已续约，无需重复提交。"),  # noqa: RUF001
    )


@login_required
@require_POST
def live_room_grant_revoke(request, grant_id):
    creator = _creator_or_404(request)
    grant = selectors.grant_get_for_creator(creator=creator, grant_id=grant_id)
    services.grant_revoke(grant=grant, actor=request.user)
    messages.success(request, _("已解除直播间数据授权。"))
    return redirect("authorization:creator-grants")


@login_required
@require_POST
def request_decide(request, request_id, decision):
    creator = _creator_or_404(request)
    req = selectors.live_room_request_get_for_creator(creator=creator, request_id=request_id)
    if decision == "authorize":
        services.live_room_request_authorize(request=req, actor=request.user)
        messages.success(request, _("已授权直播间「%(room)s」。") % {"room": req.live_room.title})
    else:
        services.live_room_request_reject(request=req, actor=request.user)
        messages.success(request, _("已拒绝申请。"))
    return redirect("authorization:creator-grants")


# --- either party --------------------------------------------------------------------------------


@login_required
def grant_detail(request, grant_id):
    """A grant and its full event history, for the creator and the organization (GRANT-9)."""
    grant = selectors.grant_get_for_user(
        user=request.user, membership=request.active_membership, grant_id=grant_id
    )
    is_creator = getattr(request.user, "creator", None) == grant.creator
    return render(
        request,
        "authorization/grant_detail.html",
        {
            "g": grant,
            "state": selectors.state_of(grant),
            "events": selectors.grant_event_list(grant=grant),
            "is_creator": is_creator,
        },
    )


# --- organization --------------------------------------------------------------------------------


@login_required
def org_grants(request):
    """GRANT-8: every creator that ever granted us, with state, nearest end first."""
    membership = _membership_or_404(request)
    state = request.GET.get("state") or None
    if state not in GrantState.values:
        state = None
    qs = selectors.grant_list_for_organization(membership=membership, state=state)
    page = keyset_page(
        qs,
        keys=selectors.LIST_KEYS,
        cursor=request.GET.get("cursor") or None,
        size=PAGE_SIZE,
        salt=ORG_LIST_SALT,
    )
    return render(
        request,
        "authorization/org_grants.html",
        {
            "page": page,
            "state": state,
            "states": GrantState.choices,
            "is_main": membership.is_main,
        },
    )


def _creator_for_org_or_404(creator_id):
    from portal.models import Creator

    creator = Creator.objects.filter(pk=creator_id).first()
    if creator is None:
        raise Http404
    return creator


@login_required
def creator_data(request, creator_id):
    """The creator's sales (all_data): shown only while the access check allows."""
    membership = _membership_or_404(request)
    creator = _creator_for_org_or_404(creator_id)
    decision = selectors.access_check(
        organization_id=membership.organization_id,
        creator_id=creator.pk,
        scope=Scope.ALL_DATA,
        membership=membership,
    )
    ctx = {
        "creator": creator,
        "decision": decision,
        "is_main": membership.is_main,
        "rooms": selectors.live_room_list(creator_id=creator.pk)[:30],
    }
    if decision.allowed:
        rows = list(selectors.creator_daily_sales(creator_id=creator.pk))
        ctx["rows"] = rows
        ctx["totals"] = {k: sum(getattr(r, k) for r in rows) for k in ("gmv_fen", "orders", "viewers")}
        ctx["chart"] = selectors.chart_config(
            labels=[r.date.isoformat() for r in rows],
            gmv_fen=[r.gmv_fen for r in rows],
            label=_("每日成交金额(元)"),
        )
    return render(request, "authorization/creator_data.html", ctx)


@login_required
def creator_data_export(request, creator_id):
    """CSV export of the same data, behind the same check (GRANT-9: never for sub-accounts)."""
    membership = _membership_or_404(request)
    creator = _creator_for_org_or_404(creator_id)
    decision = selectors.access_check(
        organization_id=membership.organization_id,
        creator_id=creator.pk,
        scope=Scope.ALL_DATA,
        membership=membership,
    )
    if not decision.allowed:
        raise Http404
    resp = HttpResponse(content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="creator-{creator.pk}-sales.csv"'
    out = csv.writer(resp)
    out.writerow(["date", "gmv_fen", "orders", "viewers"])
    for r in selectors.creator_daily_sales(creator_id=creator.pk):
        out.writerow([r.date.isoformat(), r.gmv_fen, r.orders, r.viewers])
    return resp


@login_required
def live_rooms(request):
    _membership_or_404(request)
    query = request.GET.get("q", "")
    if "\x00" in query or len(query) > 200:
        raise DomainError("invalid", _("搜索词无效。"), field="q")
    page = Paginator(selectors.live_room_list(query=query), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "authorization/live_rooms.html", {"page": page, "q": query})


@login_required
def live_room_detail(request, live_room_id):
    """A live room's page: its figures while access allows, else 解锁更多数据 (GRANT-3)."""
    membership = _membership_or_404(request)
    room = selectors.live_room_get(live_room_id=live_room_id)
    if request.method == "POST":
        if request.POST.get("confirmed") != "1":  # GRANT-3: the request exists only once confirmed
            raise DomainError("GRANT-3", _("请在弹窗中确认申请。"), field="confirmed")
        services.live_room_request_create(membership=membership, live_room=room, actor=request.user)
        messages.success(request, _("已发送申请。等待达人授权。"))
        return redirect(reverse("authorization:live-room", args=[room.pk]))
    decision = selectors.access_check(
        organization_id=membership.organization_id,
        creator_id=room.creator_id,
        scope=Scope.LIVE_ROOM,
        live_room_id=room.pk,
        membership=membership,
    )
    ctx = {"room": room, "decision": decision}
    if decision.allowed:
        rows = list(selectors.live_room_sales(live_room_id=room.pk))
        ctx["rows"] = rows
        ctx["totals"] = {k: sum(getattr(r, k) for r in rows) for k in ("gmv_fen", "orders", "viewers")}
        ctx["chart"] = selectors.chart_config(
            labels=[clock.local(r.hour_at).strftime("%m-%d %H:%M") for r in rows],
            gmv_fen=[r.gmv_fen for r in rows],
            label=_("成交金额(元)"),
        )
    else:
        pending = LiveRoomRequest.objects.filter(
            organization_id=membership.organization_id,
            live_room=room,
            status=LiveRoomRequest.Status.PENDING,
            expires_at__gt=clock.now(),
        ).first()
        ctx["pending"] = pending
    return render(request, "authorization/live_room.html", ctx)
