"""Wallet API (Billing I): balance, ledger, top-ups, provider webhook, invoices, deposit,
closure. Thin views: validate → call a service or selector → serialize.

Visibility: members of the organization read; main accounts (and API keys, which act as
the main account) write. Another tenant's ids answer 404.
"""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import ClosureRequest, DepositEntry, Invoice, LedgerEntry, TopUpOrder
from billing.payments import checkout_url_for
from billing.selectors import wallet as sel
from billing.services import deposit as deposit_svc
from billing.services import invoice as invoice_svc
from billing.services import topup as topup_svc
from portal.errors import DomainError, NotFound
from portal.pagination import DefaultPagination


def _membership(request, *, write: bool = False):
    membership = request.active_membership
    if membership is None:
        raise NotFound()
    if write and not membership.is_main:
        raise DomainError("forbidden", "Only the main account (主账号) can do this.", status=403)
    return membership


# --- serializers ------------------------------------------------------------------------------
class WalletOut(serializers.Serializer):
    organization_id = serializers.IntegerField()
    balance_fen = serializers.IntegerField()
    in_arrears = serializers.BooleanField()
    invoiceable_fen = serializers.IntegerField()


class LedgerEntryOut(serializers.ModelSerializer):
    top_up_order = serializers.SlugRelatedField(slug_field="out_trade_no", read_only=True, allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "kind",
            "amount_fen",
            "balance_after_fen",
            "period_year",
            "period_month",
            "top_up_order",
            "reference",
            "created_at",
        ]


class LedgerFilter(serializers.Serializer):
    kind = serializers.ChoiceField(choices=LedgerEntry.Kind.choices, required=False)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)

    def validate(self, attrs):
        problem = sel.ledger_filter_error(date_from=attrs.get("date_from"), date_to=attrs.get("date_to"))
        if problem is not None:
            raise serializers.ValidationError({problem[0]: problem[1]})
        return attrs


class TopUpIn(serializers.Serializer):
    amount_fen = serializers.IntegerField(help_text="fen, 100 (¥1) .. 100000000 (¥1,000,000)")


class TopUpOut(serializers.ModelSerializer):
    # As of now: a pending order past expires_at is "expired" before the beat job writes it.
    state = serializers.ChoiceField(source="current_state", choices=TopUpOrder.State.choices, read_only=True)
    pay_url = serializers.SerializerMethodField()

    class Meta:
        model = TopUpOrder
        fields = [
            "id",
            "out_trade_no",
            "amount_fen",
            "currency",
            "provider",
            "state",
            "pay_url",
            "created_at",
            "expires_at",
            "paid_at",
        ]

    def get_pay_url(self, obj) -> str | None:
        url = checkout_url_for(order=obj)
        if url is None:
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class InvoiceIn(serializers.Serializer):
    amount_fen = serializers.IntegerField(min_value=1)
    title = serializers.CharField(max_length=200)
    taxpayer_id = serializers.CharField(max_length=18, help_text="18-character unified social credit code")
    # "invoice_type", not "kind": one enum name per choice set in the OpenAPI schema.
    invoice_type = serializers.ChoiceField(choices=Invoice.Kind.choices)
    email = serializers.EmailField(max_length=Invoice._meta.get_field("email").max_length)


class InvoiceOut(serializers.ModelSerializer):
    invoice_type = serializers.ChoiceField(source="kind", choices=Invoice.Kind.choices, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "amount_fen",
            "title",
            "taxpayer_id",
            "invoice_type",
            "email",
            "state",
            "number",
            "reject_reason",
            "requested_at",
            "reviewed_at",
        ]


class DepositEntryOut(serializers.ModelSerializer):
    class Meta:
        model = DepositEntry
        fields = ["id", "kind", "amount_fen", "note", "created_at"]


class ClosureIn(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


class ClosureOut(serializers.ModelSerializer):
    class Meta:
        model = ClosureRequest
        fields = ["id", "state", "reason", "requested_at", "reviewed_at", "review_note"]


# --- views ------------------------------------------------------------------------------------
class WalletApi(APIView):
    @extend_schema(responses=WalletOut, summary="Balance, arrears (FEE-6) and invoiceable amount (FEE-4.3)")
    def get(self, request):
        org_id = _membership(request).organization_id
        return Response(
            WalletOut(
                {
                    "organization_id": org_id,
                    "balance_fen": sel.wallet_balance_fen(organization_id=org_id),
                    "in_arrears": sel.wallet_in_arrears(organization_id=org_id),
                    "invoiceable_fen": sel.invoiceable_fen(organization_id=org_id),
                }
            ).data
        )


class LedgerListApi(generics.ListAPIView):
    serializer_class = LedgerEntryOut
    filter_backends: list = []

    @extend_schema(parameters=[LedgerFilter], summary="The wallet's ledger, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        f = LedgerFilter(data=self.request.query_params)
        f.is_valid(raise_exception=True)
        return sel.ledger_list_for_organization(
            organization_id=_membership(self.request).organization_id, **f.validated_data
        )


class TopUpListCreateApi(generics.ListAPIView):
    serializer_class = TopUpOut
    filter_backends: list = []

    def get_queryset(self):
        return sel.top_up_order_list_for_organization(
            organization_id=_membership(self.request).organization_id
        )

    @extend_schema(
        request=TopUpIn,
        responses={201: TopUpOut, 409: OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        summary="Start a top-up; follow pay_url to pay (Idempotency-Key replays the first answer)",
    )
    def post(self, request):
        membership = _membership(request, write=True)
        data = TopUpIn(data=request.data)
        data.is_valid(raise_exception=True)
        amount = data.validated_data["amount_fen"]

        def create():
            order = topup_svc.top_up_create(
                organization_id=membership.organization_id, amount_fen=amount, actor=request.user
            )
            return 201, TopUpOut(order, context={"request": request}).data

        return _idempotent_response(
            request,
            organization_id=membership.organization_id,
            scope="top-ups",
            data={"amount_fen": amount},
            call=create,
        )


def _idempotent_response(request, *, organization_id: int, scope: str, data: dict, call) -> Response:
    """``call()`` (→ status, body) once per ``Idempotency-Key``: the same key and body replay the
    first answer (``Idempotent-Replayed: true``), the same key with another body is refused (409,
    ``topup_svc.idempotent_call``). Without the header every request runs."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        status, body = call()
        return Response(body, status=status)
    status, body, replayed = topup_svc.idempotent_call(
        organization_id=organization_id,
        scope=scope,
        key=key,
        fingerprint=topup_svc.request_fingerprint(data),
        call=call,
    )
    return Response(body, status=status, headers={"Idempotent-Replayed": "true"} if replayed else None)


class TopUpDetailApi(APIView):
    @extend_schema(responses=TopUpOut, summary="One top-up order (poll until state is final)")
    def get(self, request, out_trade_no):
        order = sel.top_up_order_get(
            organization_id=_membership(request).organization_id, out_trade_no=out_trade_no
        )
        if order is None:
            raise NotFound()
        return Response(TopUpOut(order, context={"request": request}).data)


class PaymentWebhookApi(APIView):
    """Provider callbacks. No session or key: the provider's signature authenticates it."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # a provider delivers bursts; its signature authenticates it

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={
            200: inline_serializer(
                "WebhookOut", {"outcome": serializers.CharField(), "credited": serializers.BooleanField()}
            ),
            400: OpenApiTypes.OBJECT,
            401: OpenApiTypes.OBJECT,
            409: OpenApiTypes.OBJECT,
        },
        summary="Payment provider callback (sandbox: HMAC-SHA256 over timestamp.body)",
    )
    def post(self, request, provider):
        result = topup_svc.payment_webhook_handle(
            provider_name=provider, headers=request.headers, body=request.body
        )
        return Response(result.as_body(), status=result.status)


class InvoiceListCreateApi(generics.ListAPIView):
    serializer_class = InvoiceOut
    filter_backends: list = []

    def get_queryset(self):
        return sel.invoice_list_for_organization(organization_id=_membership(self.request).organization_id)

    @extend_schema(
        request=InvoiceIn,
        responses={201: InvoiceOut, 409: OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        summary="Request an invoice (FEE-4.3; Idempotency-Key replays the first answer)",
    )
    def post(self, request):
        membership = _membership(request, write=True)
        data = InvoiceIn(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data

        def create():
            invoice = invoice_svc.invoice_request(
                organization_id=membership.organization_id,
                actor=request.user,
                amount_fen=d["amount_fen"],
                title=d["title"],
                taxpayer_id=d["taxpayer_id"],
                kind=d["invoice_type"],
                email=d["email"],
            )
            return 201, InvoiceOut(invoice).data

        # FEE-4.3: a client retrying a request whose answer it lost gets the same invoice back,
        # not a second request for the same money.
        return _idempotent_response(
            request, organization_id=membership.organization_id, scope="invoices", data=dict(d), call=create
        )


class InvoiceDetailApi(APIView):
    @extend_schema(responses=InvoiceOut, summary="One invoice")
    def get(self, request, invoice_id):
        invoice = sel.invoice_get(organization_id=_membership(request).organization_id, invoice_id=invoice_id)
        if invoice is None:
            raise NotFound()
        return Response(InvoiceOut(invoice).data)


class InvoicePdfApi(APIView):
    @extend_schema(
        responses={(200, "application/pdf"): OpenApiTypes.BINARY}, summary="The issued invoice's PDF"
    )
    def get(self, request, invoice_id):
        invoice = sel.invoice_get(organization_id=_membership(request).organization_id, invoice_id=invoice_id)
        if invoice is None or invoice.state != Invoice.State.ISSUED or not invoice.pdf:
            raise NotFound()
        try:
            pdf = invoice.pdf.open("rb")
        except FileNotFoundError as exc:  # the row says issued but storage lost the file
            raise NotFound() from exc
        return FileResponse(pdf, content_type="application/pdf", filename=f"{invoice.number}.pdf")


class DepositApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("page", int, description="Page number, from 1 (newest entries first)."),
            OpenApiParameter(
                "page_size",
                int,
                description=f"Entries per page (default 50, at most {DefaultPagination.max_page_size}).",
            ),
        ],
        responses=inline_serializer(
            "DepositOut",
            {
                "balance_fen": serializers.IntegerField(),
                "count": serializers.IntegerField(help_text="entries in all pages"),
                "next": serializers.URLField(allow_null=True, help_text="the next (older) page"),
                "previous": serializers.URLField(allow_null=True),
                "entries": DepositEntryOut(many=True),
            },
        ),
        summary="The deposit account (FEE-6.3) and its entries, newest first, by pages",
    )
    def get(self, request):
        org_id = _membership(request).organization_id
        account = sel.deposit_account_get(organization_id=org_id)
        paginator = DefaultPagination()
        entries = paginator.paginate_queryset(
            sel.deposit_entry_list(organization_id=org_id), request, view=self
        )
        return Response(
            {
                "balance_fen": account.balance_fen if account else 0,
                "count": paginator.page.paginator.count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "entries": DepositEntryOut(entries, many=True).data,
            }
        )


class ClosureListCreateApi(generics.ListAPIView):
    serializer_class = ClosureOut
    filter_backends: list = []

    def get_queryset(self):
        return sel.closure_request_list(organization_id=_membership(self.request).organization_id)

    @extend_schema(
        request=ClosureIn,
        responses={201: ClosureOut, 409: OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        summary="Ask to close the account (FEE-6.3; Idempotency-Key replays the first answer)",
    )
    def post(self, request):
        membership = _membership(request, write=True)
        data = ClosureIn(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data.get("reason", "")

        def create():
            closure = deposit_svc.closure_request_create(
                organization_id=membership.organization_id, actor=request.user, reason=reason
            )
            return 201, ClosureOut(closure).data

        # A client retrying a request whose answer it lost gets that request back, not the
        # refusal a second one meets (one open closure per organization).
        return _idempotent_response(
            request,
            organization_id=membership.organization_id,
            scope="closure-requests",
            data={"reason": reason},
            call=create,
        )
