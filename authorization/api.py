"""DRF views of the authorization app: validate → call a service/selector → serialize.

Creators act on their own grants (``creator/…``); organizations read what they were granted
(``org/…``, GRANT-9 applied by the selectors) and ask the access check (GRANT-11). Another
party's ids answer 404.
"""

from django.http import Http404, JsonResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from authorization import selectors, services
from authorization.models import Grant, GrantEvent, GrantState, LiveRoomRequest, Scope
from portal.api_auth import ApiKeyAuthentication, api_key_organization_id
from portal.errors import AlreadyDone, DomainError
from portal.models import ApiKey, Membership, Organization
from portal.pagination import KeysetPagination

# --- serializers ---------------------------------------------------------------------------------


class GrantOut(serializers.ModelSerializer):
    state = serializers.SerializerMethodField()
    organization_name = serializers.CharField(source="organization.name", read_only=True)
    creator_nickname = serializers.CharField(source="creator.nickname", read_only=True)

    class Meta:
        model = Grant
        fields = [
            "id",
            "creator",
            "creator_nickname",
            "organization",
            "organization_name",
            "scope",
            "live_room",
            "start_date",
            "end_date",
            "state",
            "revoked_at",
            "created_at",
        ]

    def get_state(self, obj) -> str:
        return getattr(obj, "state", None) or selectors.state_of(obj)


class CreatorGrantOut(GrantOut):
    class Meta(GrantOut.Meta):
        fields = [f for f in GrantOut.Meta.fields if f != "creator_nickname"]


class OrgGrantOut(GrantOut):
    class Meta(GrantOut.Meta):
        fields = [f for f in GrantOut.Meta.fields if f != "organization_name"]


class GrantEventOut(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True)

    class Meta:
        model = GrantEvent
        fields = [
            "id",
            "operation",
            "actor",
            "old_start_date",
            "old_end_date",
            "new_start_date",
            "new_end_date",
            "reason",
            "at",
        ]


class LiveRoomRequestOut(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    live_room_title = serializers.CharField(source="live_room.title", read_only=True)

    class Meta:
        model = LiveRoomRequest
        fields = [
            "id",
            "organization",
            "live_room",
            "live_room_title",
            "creator",
            "status",
            "created_at",
            "expires_at",
            "grant",
        ]

    def get_status(self, obj) -> str:
        return selectors.request_status(obj)


class AuthorizeIn(serializers.Serializer):
    organizations = serializers.ListField(child=serializers.IntegerField(), allow_empty=True, max_length=200)
    start_date = serializers.DateField()
    end_date = serializers.DateField()


class EarlyRenewIn(serializers.Serializer):
    end_date = serializers.DateField()


class RenewIn(serializers.Serializer):
    start_date = serializers.DateField()
    end_date = serializers.DateField()


class RevokeIn(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class RoomRequestIn(serializers.Serializer):
    live_room = serializers.IntegerField()


class AccessIn(serializers.Serializer):
    organization = serializers.IntegerField(required=False)
    creator = serializers.IntegerField()
    scope = serializers.ChoiceField(choices=Scope.choices)
    room = serializers.IntegerField(required=False)


class AccessOut(serializers.Serializer):
    allowed = serializers.BooleanField()
    state = serializers.CharField()
    valid_until = serializers.DateField(allow_null=True)
    code = serializers.CharField()


STATE_PARAM = OpenApiParameter("state", str, enum=GrantState.values, description="derived state (GRANT-10)")


def _creator(request):
    """The signed-in creator. An organization's Api-Key speaks for its organization only, never
    for its owner's creator profile (P-3: one person can be both)."""
    creator = getattr(request.user, "creator", None)
    if creator is None or isinstance(request.auth, ApiKey):
        raise Http404
    return creator


def _membership(request) -> Membership:
    m = getattr(request, "active_membership", None)
    if m is None or m.organization.kind not in (Organization.Kind.SHOP, Organization.Kind.AGENCY):
        raise Http404
    return m


def _state(request):
    state = request.query_params.get("state") or None
    if state is not None and state not in GrantState.values:
        raise DomainError("invalid", "Unknown state.", field="state")
    return state


# --- creator ---------------------------------------------------------------------------------------


class CreatorGrantListApi(ListAPIView):
    serializer_class = CreatorGrantOut
    filter_backends: list = []
    pagination_class = KeysetPagination  # deep pages seek on the list index, no OFFSET
    keyset_keys = selectors.LIST_KEYS
    keyset_salt = "authorization.api.grants.creator"

    @extend_schema(
        parameters=[STATE_PARAM],
        summary="GRANT-7: my all_data grants, nearest end date first (keyset pages: follow `next`)",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.grant_list_for_creator(creator=_creator(self.request), state=_state(self.request))

    @extend_schema(
        request=AuthorizeIn,
        responses={201: CreatorGrantOut(many=True)},
        summary="GRANT-2: authorize all_data to one or several organizations",
    )
    def post(self, request):
        creator = _creator(request)
        data = AuthorizeIn(data=request.data)
        data.is_valid(raise_exception=True)
        ids = set(data.validated_data["organizations"])
        orgs = list(Organization.objects.filter(pk__in=ids))
        if len(orgs) != len(ids):
            raise DomainError("invalid", "Unknown organization.", field="organizations")
        grants = services.grant_authorize_all_data(
            creator=creator,
            organizations=orgs,
            start_date=data.validated_data["start_date"],
            end_date=data.validated_data["end_date"],
            actor=request.user,
        )
        return Response(CreatorGrantOut(grants, many=True).data, status=status.HTTP_201_CREATED)


IDEMPOTENCY_KEY = OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)


class _CreatorGrantAction(APIView):
    in_serializer: type[serializers.Serializer] = RevokeIn

    def post(self, request, grant_id):
        grant = selectors.grant_get_for_creator(creator=_creator(request), grant_id=grant_id)
        data = self.in_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            key = request.headers.get("Idempotency-Key")
            grant = self.call(grant, data.validated_data, request.user, key)
        except AlreadyDone as done:
            # A retry of a renewal or revocation already made (same Idempotency-Key): the grant now.
            return Response(CreatorGrantOut(done.result).data, headers={"Idempotent-Replayed": "true"})
        return Response(CreatorGrantOut(grant).data)


class GrantRevokeApi(_CreatorGrantAction):
    in_serializer = RevokeIn

    @extend_schema(
        request=RevokeIn,
        responses=CreatorGrantOut,
        parameters=[IDEMPOTENCY_KEY],
        summary="GRANT-4: revoke (all_data or live_room)",
        description="A retry with the first call's Idempotency-Key returns the grant as revoked "
        "(``Idempotent-Replayed: true``) instead of the GRANT-4 refusal a second revocation meets; "
        "a key this grant spent on another operation is refused (409 ``IDEMPOTENCY-KEY-REUSED``).",
    )
    def post(self, request, grant_id):
        return super().post(request, grant_id)

    def call(self, grant, d, actor, request_key):
        return services.grant_revoke(grant=grant, actor=actor, reason=d["reason"], request_key=request_key)


class GrantEarlyRenewApi(_CreatorGrantAction):
    in_serializer = EarlyRenewIn

    @extend_schema(
        request=EarlyRenewIn,
        responses=CreatorGrantOut,
        parameters=[IDEMPOTENCY_KEY],
        summary="GRANT-5: early renew (from tomorrow, end later than the current end)",
        description="A retry with the first call's Idempotency-Key returns the grant as renewed "
        "(``Idempotent-Replayed: true``) instead of the GRANT-5 refusal a second renewal meets; "
        "the key with other dates, or a key this grant spent on another operation, is refused "
        "(409 ``IDEMPOTENCY-KEY-REUSED``).",
    )
    def post(self, request, grant_id):
        return super().post(request, grant_id)

    def call(self, grant, d, actor, request_key):
        return services.grant_early_renew(
            grant=grant, end_date=d["end_date"], actor=actor, request_key=request_key
        )


class GrantRenewApi(_CreatorGrantAction):
    in_serializer = RenewIn

    @extend_schema(
        request=RenewIn,
        responses=CreatorGrantOut,
        parameters=[IDEMPOTENCY_KEY],
        summary="GRANT-6: renew an expired grant",
        description="A retry with the first call's Idempotency-Key returns the grant as renewed "
        "(``Idempotent-Replayed: true``) instead of the GRANT-6 refusal a second renewal meets; "
        "the key with other dates, or a key this grant spent on another operation, is refused "
        "(409 ``IDEMPOTENCY-KEY-REUSED``).",
    )
    def post(self, request, grant_id):
        return super().post(request, grant_id)

    def call(self, grant, d, actor, request_key):
        return services.grant_renew(
            grant=grant,
            start_date=d["start_date"],
            end_date=d["end_date"],
            actor=actor,
            request_key=request_key,
        )


class CreatorRoomGrantListApi(ListAPIView):
    serializer_class = CreatorGrantOut
    filter_backends: list = []

    @extend_schema(
        summary="GRANT-3: my live-room grants in force, newest first (revoke: creator/grants/{id}/revoke)"
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.live_room_grant_list_for_creator(creator=_creator(self.request))


class CreatorRequestListApi(ListAPIView):
    serializer_class = LiveRoomRequestOut
    filter_backends: list = []

    @extend_schema(summary="GRANT-7: pending live-room requests")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.live_room_request_pending_for_creator(creator=_creator(self.request))


class CreatorRequestDecideApi(APIView):
    decision = "authorize"

    @extend_schema(
        request=None, responses=LiveRoomRequestOut, summary="GRANT-3: authorize or reject a request"
    )
    def post(self, request, request_id):
        req = selectors.live_room_request_get_for_creator(creator=_creator(request), request_id=request_id)
        if self.decision == "authorize":
            services.live_room_request_authorize(request=req, actor=request.user)
        else:
            services.live_room_request_reject(request=req, actor=request.user)
        req.refresh_from_db()
        return Response(LiveRoomRequestOut(req).data)


# --- either party --------------------------------------------------------------------------------


class GrantEventListApi(ListAPIView):
    serializer_class = GrantEventOut
    filter_backends: list = []

    @extend_schema(summary="A grant's history, for the creator and the organization (GRANT-9)")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        is_key = isinstance(self.request.auth, ApiKey)  # the organization's, never its owner's creator
        grant = selectors.grant_get_for_user(
            user=None if is_key else self.request.user,
            membership=getattr(self.request, "active_membership", None),
            grant_id=self.kwargs["grant_id"],
        )
        return selectors.grant_event_list(grant=grant)


# --- organization --------------------------------------------------------------------------------


class OrgGrantListApi(ListAPIView):
    serializer_class = OrgGrantOut
    filter_backends: list = []
    pagination_class = KeysetPagination  # deep pages seek on the list index, no OFFSET
    keyset_keys = selectors.LIST_KEYS
    keyset_salt = "authorization.api.grants.org"

    @extend_schema(
        parameters=[STATE_PARAM, OpenApiParameter("scope", str, enum=Scope.values)],
        summary="GRANT-8: creators that granted us, nearest end date first (sub-accounts: live_room only; "
        "keyset pages: follow `next`)",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.grant_list_for_organization(
            membership=_membership(self.request),
            state=_state(self.request),
            scope=self.request.query_params.get("scope") or None,
        )


class OrgRequestListApi(ListAPIView):
    serializer_class = LiveRoomRequestOut
    filter_backends: list = []

    @extend_schema(summary="Our live-room requests")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.live_room_request_list_for_organization(membership=_membership(self.request))

    @extend_schema(
        request=RoomRequestIn,
        responses={201: LiveRoomRequestOut},
        summary="GRANT-3: request a live room's data (the page asks for confirmation first)",
    )
    def post(self, request):
        membership = _membership(request)
        data = RoomRequestIn(data=request.data)
        data.is_valid(raise_exception=True)
        room = selectors.live_room_get(live_room_id=data.validated_data["live_room"])
        req = services.live_room_request_create(membership=membership, live_room=room, actor=request.user)
        return Response(LiveRoomRequestOut(req).data, status=status.HTTP_201_CREATED)


class SalesRow(serializers.Serializer):
    date = serializers.DateField()
    gmv_fen = serializers.IntegerField()
    orders = serializers.IntegerField()
    viewers = serializers.IntegerField()


class OrgCreatorSalesApi(APIView):
    @extend_schema(
        responses=SalesRow(many=True),
        summary="A creator's daily sales (all_data, main account only; 404 without access)",
    )
    def get(self, request, creator_id):
        membership = _membership(request)
        decision = selectors.access_check(
            organization_id=membership.organization_id,
            creator_id=creator_id,
            scope=Scope.ALL_DATA,
            membership=membership,
        )
        if not decision.allowed:
            raise Http404
        rows = selectors.creator_daily_sales(creator_id=creator_id).values(
            "date", "gmv_fen", "orders", "viewers"
        )
        return Response(list(rows))


def _plain_int(value: str | None) -> int | None:
    """A non-negative ASCII integer that fits a bigint, else None (the DRF path decides)."""
    if value is None or not (0 < len(value) <= 18 and value.isascii() and value.isdigit()):
        return None
    return int(value)


def _access_fast(request):
    """The access check's hot path as a plain Django view, or None to take the DRF path.

    Serves only a well-formed GET from an authenticated caller that may ask for the
    organization; everything else (bad input, no or wrong credentials, another organization,
    other methods) returns None and goes through DRF, which renders the usual
    ``{code, message, field}`` errors. Same authentication (``api_key_organization_id`` is the
    ApiKeyAuthentication's logic, else the session), same selector, same body.
    """
    if request.method != "GET":
        return None
    q = request.GET
    creator_id = _plain_int(q.get("creator"))
    scope = q.get("scope")
    if creator_id is None or scope not in Scope.values:
        return None
    org_raw, room_raw = q.get("organization", ""), q.get("room", "")
    org_id = _plain_int(org_raw) if org_raw else None
    room_id = _plain_int(room_raw) if room_raw else None
    if (org_raw and org_id is None) or (room_raw and room_id is None):
        return None
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith(ApiKeyAuthentication.keyword + " "):
        # A key acts as its organization's main account: the organization id is all the
        # decision needs (no model instances on this path).
        try:
            key_org_id = api_key_organization_id(header)
        except exceptions.AuthenticationFailed:
            return None
        if org_id is not None and org_id != key_org_id:
            return None  # another organization: the DRF path answers 404
        decision = selectors.access_check(
            organization_id=key_org_id, creator_id=creator_id, scope=scope, live_room_id=room_id
        )
        return JsonResponse(decision.as_dict())
    if header or not request.user.is_authenticated:
        return None
    membership = getattr(request, "active_membership", None)
    if org_id is None:
        if membership is None:
            return None
        org_id = membership.organization_id
    if membership is None or membership.organization_id != org_id:
        return None  # another organization of the user's, or none: the DRF path decides
    decision = selectors.access_check(
        organization_id=org_id,
        creator_id=creator_id,
        scope=scope,
        live_room_id=room_id,
        membership=membership,
    )
    return JsonResponse(decision.as_dict())


class AccessCheckApi(APIView):
    """GRANT-11 for other services: one cached call, decided from dates at call time.

    ``dispatch`` serves a well-formed GET without DRF's request machinery (``_access_fast``);
    anything else falls through to DRF and ``get`` below, which also documents the schema.
    """

    def dispatch(self, request, *args, **kwargs):
        return _access_fast(request) or super().dispatch(request, *args, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter("organization", int, description="defaults to the caller's organization"),
            OpenApiParameter("creator", int, required=True),
            OpenApiParameter("scope", str, required=True, enum=Scope.values),
            OpenApiParameter("room", int, description="live room id (scope=live_room)"),
        ],
        responses=AccessOut,
        summary="GRANT-11: may this organization (as the caller) see the creator's data now?",
    )
    def get(self, request):
        data = AccessIn(data=request.query_params)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        membership = getattr(request, "active_membership", None)
        org_id = d.get("organization", membership.organization_id if membership else None)
        if membership is None or membership.organization_id != org_id:
            if isinstance(request.auth, ApiKey):
                raise Http404  # a key speaks for its own organization only, whoever its owner is
            membership = Membership.objects.filter(user=request.user, organization_id=org_id).first()
            if membership is None:
                raise Http404  # not your organization: do not say whether it exists
        decision = selectors.access_check(
            organization_id=org_id,
            creator_id=d["creator"],
            scope=d["scope"],
            live_room_id=d.get("room"),
            membership=membership,
        )
        return Response(decision.as_dict())
