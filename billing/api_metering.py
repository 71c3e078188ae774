"""Billing II API: usage ingest, the gate, apps and keys, bills, usage summary, catalog.

Gateway authentication (ingest and gate): the platform's API gateway is a trusted machine
client, not an organization, so it does not use an organization's ``Api-Key``. It sends
``Authorization: Bearer <BILLING_GATEWAY_TOKEN>`` (environment variable; compared in
constant time). Staff may also ingest from a signed-in session (CSRF-checked), but only staff
holding the ``billing.add_usagehourly`` permission (the ``billing-ops`` group, P-4): usage is
what settlement charges. A staff-posted batch is audited under its sender. The app key in the
gate's body only names the app being checked; it is not a credential.
"""

import hmac
import json

from django.conf import settings
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, generics, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Api, App, Bill, BillApp, BillLine, Location
from billing.months import parse_month
from billing.selectors import metering as sel
from billing.services import metering as svc
from billing.services.gate import UnknownTarget, gate_check
from billing.services.usage import usage_ingest
from portal import clock
from portal.api_errors import error_body
from portal.errors import DomainError


def gateway_token() -> str | None:
    """The gateway's shared token: settings.BILLING_GATEWAY_TOKEN (from the environment; a dev
    default in portal.settings, required by portal.settings_production). Empty refuses all."""
    return getattr(settings, "BILLING_GATEWAY_TOKEN", None) or None


def _bearer_ok(header: str) -> bool:
    token = gateway_token()
    if not token or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


class GatewayUser:
    """The API gateway as a request user (not a person, not an organization)."""

    is_authenticated = True
    is_staff = False
    is_active = True
    pk = id = None
    username = "gateway"


class GatewayTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith("Bearer "):
            return None
        if not _bearer_ok(header):
            raise exceptions.AuthenticationFailed("Invalid gateway token.")
        return GatewayUser(), "gateway"

    def authenticate_header(self, request):
        return "Bearer"


class GatewayTokenScheme(OpenApiAuthenticationExtension):
    target_class = "billing.api_metering.GatewayTokenAuthentication"
    name = "GatewayToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "the API gateway's BILLING_GATEWAY_TOKEN"}


# P-4 least privilege: usage is what settlement charges to wallets, so a staff session needs the
# billing permission to add usage (billing-ops), not merely is_staff (a gift reviewer is staff).
INGEST_PERMISSION = "billing.add_usagehourly"


class IsGatewayOrUsageStaff(permissions.BasePermission):
    message = "P-4: only the gateway or billing staff with the add-usage permission may ingest usage."

    def has_permission(self, request, view):
        if request.auth == "gateway":
            return True
        user = request.user
        return bool(getattr(user, "is_staff", False)) and user.has_perm(INGEST_PERMISSION)


# --- the gate (hot path: a plain Django view, no DRF machinery) --------------------------------


@csrf_exempt
def gate_view(request):
    """POST {"app_key", "api", "location"} → {"allow", "code", "message", "tier"} (FEE-3.1, FEE-6.1)."""
    if request.method != "POST":
        return JsonResponse(error_body("method_not_allowed", "POST only."), status=405)
    if not _bearer_ok(request.headers.get("Authorization", "")):
        resp = JsonResponse(error_body("not_authenticated", "Gateway token required."), status=401)
        resp["WWW-Authenticate"] = "Bearer"
        return resp
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError
    except ValueError:
        return JsonResponse(error_body("invalid", "Body must be a JSON object."), status=400)
    app_key, api, location = body.get("app_key"), body.get("api"), body.get("location")
    for name, value in (("app_key", app_key), ("api", api), ("location", location)):
        if not isinstance(value, str) or not value or len(value) > 120:
            return JsonResponse(error_body("invalid", f"{name} is required.", name), status=400)
        if "\x00" in value:
            # PostgreSQL text cannot hold NUL: looked up, it raised DataError (a 500).
            return JsonResponse(error_body("invalid", f"{name} contains a NUL character.", name), status=400)
    if location not in Location.values:
        return JsonResponse(
            error_body("invalid", "location must be in_cloud or out_of_cloud.", "location"), status=400
        )
    try:
        decision = gate_check(app_key=app_key, api=api, location=location)
    except UnknownTarget as exc:
        return JsonResponse(error_body("not_found", f"Unknown {exc.field}.", exc.field), status=404)
    return JsonResponse(
        {"allow": decision.allow, "code": decision.code, "message": decision.message, "tier": decision.tier}
    )


# --- usage ingest --------------------------------------------------------------------------------


class IngestOut(serializers.Serializer):
    batch_id = serializers.CharField()
    duplicate = serializers.BooleanField()
    rows_total = serializers.IntegerField()
    rows_accepted = serializers.IntegerField()
    rows_rejected = serializers.IntegerField()
    errors = serializers.ListField(
        child=inline_serializer(
            "IngestError", {"line": serializers.IntegerField(), "reason": serializers.CharField()}
        )
    )
    seconds = serializers.FloatField()


class UsageIngestApi(APIView):
    """Hourly rollups, CSV (header ``app_key,api,location,hour,calls``) or NDJSON, one batch."""

    authentication_classes = [GatewayTokenAuthentication, authentication.SessionAuthentication]
    permission_classes = [IsGatewayOrUsageStaff]
    parser_classes: list = []

    @extend_schema(
        summary="Ingest hourly usage rollups (idempotent per batch_id; rows replace, never add)",
        description="The same batch_id with the same body counts once (200, duplicate); the same"
        " batch_id with another body is refused (409 BATCH-ID-REUSED, field batch_id).",
        parameters=[
            OpenApiParameter(
                "batch_id", str, required=True, description="unique per batch (or X-Batch-Id header)"
            ),
            OpenApiParameter("type", str, enum=["csv", "ndjson"], description="default from Content-Type"),
        ],
        request={"text/csv": str, "application/x-ndjson": str},
        responses={
            201: IngestOut,
            200: IngestOut,
            403: OpenApiResponse(description="P-4: a staff session without the add-usage permission"),
            409: OpenApiResponse(description="BATCH-ID-REUSED: this batch_id came with another body"),
        },
    )
    def post(self, request):
        batch_id = request.query_params.get("batch_id") or request.headers.get("X-Batch-Id", "")
        kind = request.query_params.get("type")
        if not kind:
            ctype = (request.content_type or "").lower()
            kind = "ndjson" if ("ndjson" in ctype or "json" in ctype) else "csv"
        django_request = request._request

        def body():
            while True:
                chunk = django_request.read(1 << 20)
                if not chunk:
                    return
                yield chunk

        actor = None if request.auth == "gateway" else request.user
        result = usage_ingest(data=body(), batch_id=batch_id, fmt=kind, source="api", actor=actor)
        out = IngestOut(result.__dict__).data
        return Response(out, status=status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED)


# --- apps and keys -------------------------------------------------------------------------------


class AppOut(serializers.ModelSerializer):
    class Meta:
        model = App
        fields = ["id", "name", "app_key", "created_at", "secret_rotated_at"]


class AppSecretOut(serializers.Serializer):
    app = AppOut()
    secret = serializers.CharField(help_text="shown once; only a hash is stored")


class AppIn(serializers.Serializer):
    name = serializers.CharField(max_length=120)


class AppListApi(generics.ListCreateAPIView):
    serializer_class = AppOut
    filter_backends: list = []

    def get_queryset(self):
        return sel.app_list_for_membership(membership=self.request.active_membership)

    @extend_schema(request=AppIn, responses={201: AppSecretOut}, summary="Create an app (main account)")
    def post(self, request):
        data = AppIn(data=request.data)
        data.is_valid(raise_exception=True)
        app, raw = svc.app_create(
            membership=request.active_membership, name=data.validated_data["name"], actor=request.user
        )
        return Response(AppSecretOut({"app": app, "secret": raw}).data, status=status.HTTP_201_CREATED)


class AppRotateSecretApi(APIView):
    @extend_schema(request=None, responses=AppSecretOut, summary="Rotate an app's secret (main account)")
    def post(self, request, app_id: int):
        app, raw = svc.app_rotate_secret(
            membership=request.active_membership, app_id=app_id, actor=request.user
        )
        return Response(AppSecretOut({"app": app, "secret": raw}).data)


# --- bills -----------------------------------------------------------------------------------------


class BillOut(serializers.ModelSerializer):
    class Meta:
        model = Bill
        fields = ["id", "year", "month", "subtotal_fen", "discount_fen", "total_fen", "settled_at"]


class BillLineOut(serializers.ModelSerializer):
    api = serializers.CharField(source="api.code")
    # The tiers in force on the billed days (FEE-2.1), not the API's tier today; ``tier`` stays
    # one code (the last of them) for clients that read it as before.
    tier = serializers.CharField()
    tiers = serializers.ListField(child=serializers.CharField())
    prices = serializers.JSONField()

    class Meta:
        model = BillLine
        fields = ["api", "tier", "tiers", "location", "calls", "amount_fen", "prices"]


class BillAppOut(serializers.ModelSerializer):
    app_key = serializers.CharField(source="app.app_key")
    name = serializers.CharField(source="app.name")
    lines = serializers.SerializerMethodField()

    class Meta:
        model = BillApp
        fields = ["app_key", "name", "subtotal_fen", "discount_rate", "discount_fen", "total_fen", "lines"]

    def get_lines(self, obj) -> list[dict]:
        return BillLineOut(self.context["lines"].get(obj.app_id, []), many=True).data


class BillDetailOut(BillOut):
    apps = serializers.SerializerMethodField()

    class Meta(BillOut.Meta):
        fields = [*BillOut.Meta.fields, "apps"]

    def get_apps(self, obj) -> list[dict]:
        groups = sel.bill_detail_groups(bill=obj)
        lines = {g["app"].id: g["lines"] for g in groups}
        return BillAppOut([g["row"] for g in groups], many=True, context={"lines": lines}).data


class BillListApi(generics.ListAPIView):
    serializer_class = BillOut
    filter_backends: list = []

    def get_queryset(self):
        return sel.bill_list_for_membership(membership=self.request.active_membership)


class BillDetailApi(APIView):
    @extend_schema(responses=BillDetailOut, summary="A bill per app, API and location (FEE-4.2)")
    def get(self, request, bill_id: int):
        bill = sel.bill_get_for_membership(membership=request.active_membership, bill_id=bill_id)
        return Response(BillDetailOut(bill).data)


# --- usage summary, catalog, discount policy ---------------------------------------------------


class UsageDailyOut(serializers.Serializer):
    month = serializers.CharField()
    days = serializers.ListField(child=serializers.DateField())
    by_tier = serializers.DictField(child=serializers.ListField(child=serializers.IntegerField()))
    by_app = serializers.DictField(child=serializers.ListField(child=serializers.IntegerField()))
    total_calls = serializers.IntegerField()


class UsageDailyApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("month", str, description="YYYY-MM (Asia/Shanghai)"),
            OpenApiParameter("app", int),
            OpenApiParameter("api", int),
        ],
        responses=UsageDailyOut,
        summary="Calls per day of a month, by tier and by app",
    )
    def get(self, request):
        today = clock.today()
        year, month = parse_month(request.query_params.get("month"), (today.year, today.month))
        app_id = _int_or_none(request.query_params.get("app"), "app")
        api_id = _int_or_none(request.query_params.get("api"), "api")
        data = sel.usage_daily_for_membership(
            membership=request.active_membership, year=year, month=month, app_id=app_id, api_id=api_id
        )
        out = {
            "month": f"{year}-{month:02d}",
            "days": data["days"],
            "by_tier": data["by_tier"],
            "by_app": {str(k): v for k, v in data["by_app"].items()},
            "total_calls": data["total_calls"],
        }
        return Response(UsageDailyOut(out).data)


def _int_or_none(value, field):
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise DomainError("invalid", _("%(field)s 须为数字 ID。") % {"field": field}, field=field) from exc


class CatalogOut(serializers.ModelSerializer):
    price_today = serializers.IntegerField(allow_null=True, help_text="fen per 1,000 calls")

    class Meta:
        model = Api
        fields = ["code", "title", "tier", "price_today"]


class CatalogApi(generics.ListAPIView):
    serializer_class = CatalogOut
    filter_backends: list = []

    def get_queryset(self):
        return sel.catalog_list()


class DiscountPolicyOut(serializers.Serializer):
    rate = serializers.DecimalField(max_digits=5, decimal_places=4)
    valid_from = serializers.DateField()
    valid_to = serializers.DateField()
    apps = serializers.IntegerField()


class DiscountPolicyApi(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @extend_schema(responses=DiscountPolicyOut(many=True), summary="FEE-5.1 discount rates in force today")
    def get(self, request):
        return Response(DiscountPolicyOut(sel.discount_policy_current(), many=True).data)
