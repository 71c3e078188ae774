"""Gifts API (/api/v1/gifts/): thin views that validate, call a service or selector, serialize.

Who may call what
- Shop endpoints (gifts, listing check, violations, dispute reads) act for the caller's active
  membership: a shop member signed in, or ``Authorization: Api-Key`` of that shop (the key acts
  as the shop's main account). Another shop's ids answer 404.
- The order system's endpoints (``POST disputes``, ``POST orders``, ``POST shipments/{id}/shipped``)
  are called with an Api-Key **of the shop the order belongs to** (the platform's order service
  holds each shop's integration key); the key's organization must own the gift/product, else
  404. Staff with the model's add permission may also call them from a browser session (support
  tooling). A shop member's browser session may not: the consumer's side of a dispute is not
  the merchant's to open.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from gifts import selectors, services
from gifts.errors import NotFound
from gifts.forms import POSITIVE_INT_MAX
from gifts.listing_check import listing_check
from gifts.models import (
    Gift,
    GiftCategory,
    GiftDispute,
    GiftShipment,
    Product,
    Violation,
    ViolationAnnulment,
)
from gifts.value import gift_value_resolve
from portal.errors import AlreadyDone
from portal.models import ApiKey
from portal.pagination import DefaultPagination, paginated

# --- serializers ---------------------------------------------------------------------------------


class CategoryOut(serializers.ModelSerializer):
    class Meta:
        model = GiftCategory
        fields = ["id", "name", "is_prohibited", "licence_required", "licence_type"]


class ValueOut(serializers.Serializer):
    amount_fen = serializers.IntegerField(allow_null=True)
    basis = serializers.CharField()
    rule = serializers.CharField()


class GiftOut(serializers.ModelSerializer):
    category = CategoryOut()
    value = serializers.SerializerMethodField()

    class Meta:
        model = Gift
        fields = [
            "id",
            "name",
            "brand",
            "category",
            "kind",
            "spec",
            "quantity_per_order",
            "ship_from",
            "declared_value_fen",
            "value_basis",
            "value",
            "near_expiry",
            "expiry_date",
            "is_lottery",
            "state",
            "state_reason",
            "domestic_shipping_approved",
            "submitted_at",
            "created_at",
        ]

    @extend_schema_field(ValueOut)
    def get_value(self, gift) -> dict:
        return gift_value_resolve(gift).as_dict()


# The columns' own limits, checked here so that a value out of range answers 400 naming its
# field (the database would refuse it with a DataError that names none).
BIGINT_MAX = 9_223_372_036_854_775_807


class GiftIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    brand = serializers.CharField(max_length=100)
    category_id = serializers.IntegerField()
    kind = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    spec = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    quantity_per_order = serializers.IntegerField(
        min_value=1, max_value=POSITIVE_INT_MAX, required=False, allow_null=True, default=None
    )
    ship_from = serializers.ChoiceField(
        choices=Gift.ShipFrom.choices, required=False, allow_blank=True, default=""
    )
    declared_value_fen = serializers.IntegerField(
        min_value=0, max_value=BIGINT_MAX, required=False, allow_null=True, default=None
    )
    near_expiry = serializers.BooleanField(required=False, default=False)
    expiry_date = serializers.DateField(required=False, allow_null=True, default=None)
    is_lottery = serializers.BooleanField(required=False, default=False)
    submit = serializers.BooleanField(required=False, default=False, help_text="submit for review at once")


class FindingOut(serializers.Serializer):
    rule = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()
    gift_id = serializers.IntegerField(allow_null=True)
    field = serializers.CharField(allow_null=True)


class ListingCheckIn(serializers.Serializer):
    product_id = serializers.IntegerField(
        required=False, help_text="check a saved product (other fields ignored)"
    )
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    subtitle = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    main_image_shows_gift_alone = serializers.BooleanField(required=False, default=False)
    gift_more_prominent = serializers.BooleanField(required=False, default=False)
    gift_ids = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)


class ListingCheckOut(serializers.Serializer):
    passed = serializers.BooleanField()
    findings = FindingOut(many=True)


class AnnulmentOut(serializers.ModelSerializer):
    class Meta:
        model = ViolationAnnulment
        fields = ["cause", "reason", "shipment_id", "annulled_at"]


class ViolationOut(serializers.ModelSerializer):
    rule_version = serializers.CharField(source="rule_version.version")
    annulled = serializers.BooleanField(source="is_annulled", help_text="annulled: counts for nothing")
    counted_weight = serializers.IntegerField(help_text="the weight it counts with (0 once annulled)")
    annulment = serializers.SerializerMethodField()

    class Meta:
        model = Violation
        fields = [
            "id",
            "rule_id",
            "rule_version",
            "violation_type",
            "gift_id",
            "product_id",
            "evidence",
            "penalty_note",
            "gift_value_fen",
            "weight",
            "occurred_at",
            "recorded_at",
            "annulled",
            "counted_weight",
            "annulment",
        ]

    @extend_schema_field(AnnulmentOut(allow_null=True))
    def get_annulment(self, violation) -> dict | None:
        return AnnulmentOut(violation.annulment).data if violation.is_annulled else None


DISPUTE_KINDS_HELP = "dispute kind: " + ", ".join(f"{v} ({label})" for v, label in GiftDispute.Kind.choices)


class DisputeOut(serializers.ModelSerializer):
    # Plain strings (documented values) rather than an enum: other apps' "kind" enums would
    # collide with this one in the schema's component names.
    kind = serializers.CharField(help_text=DISPUTE_KINDS_HELP)
    state = serializers.CharField(help_text=", ".join(GiftDispute.State.values))
    order_no = serializers.CharField(source="order.order_no")
    paid_amount_fen = serializers.IntegerField(source="order.paid_amount_fen")
    signed_for_at = serializers.DateTimeField(source="order.signed_for_at")
    product_id = serializers.IntegerField(source="order.product_id")

    class Meta:
        model = GiftDispute
        fields = [
            "id",
            "order_no",
            "paid_amount_fen",
            "signed_for_at",
            "product_id",
            "gift_id",
            "kind",
            "state",
            "consumer_claim",
            "opened_at",
            "response_deadline_at",
            "merchant_response",
            "responded_at",
            "decision",
            "decision_note",
            "decided_at",
            "compensation_fen",
            "refund_deduction_fen",
            "return_shipping_payer",
            "units_promised",
            "units_returned_intact",
            "calculation",
        ]


class DisputeIn(serializers.Serializer):
    def validate_kind(self, value):
        if value not in GiftDispute.Kind.values:
            raise serializers.ValidationError(f"not a dispute kind; {DISPUTE_KINDS_HELP}")
        return value

    order_no = serializers.CharField(max_length=64)
    paid_amount_fen = serializers.IntegerField(min_value=0, help_text="the order's actual paid amount, fen")
    paid_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    product_id = serializers.IntegerField()
    gift_id = serializers.IntegerField()
    signed_for_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    kind = serializers.CharField(help_text=DISPUTE_KINDS_HELP)
    consumer_claim = serializers.CharField(required=False, allow_blank=True, default="")
    # Range checked by the service, so that an out-of-range count names GIFT-5.4.
    units_returned_intact = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="a return (return_gift_lost, return_merchant_fault): how many of the gift units due on "
        "the order came back intact, 0..that quantity (GIFT-5.4); only the others' value is deducted. "
        "Omitted: none intact",
    )


class OrderLineIn(serializers.Serializer):
    gift_id = serializers.IntegerField()
    quantity = serializers.IntegerField(min_value=1, default=1)


class OrderIn(serializers.Serializer):
    order_no = serializers.CharField(max_length=64)
    product_id = serializers.IntegerField()
    paid_amount_fen = serializers.IntegerField(min_value=0)
    paid_at = serializers.DateTimeField()
    signed_for_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    gifts = OrderLineIn(many=True, required=False, help_text="default: the product's attached gifts")


class ShipmentOut(serializers.ModelSerializer):
    order_no = serializers.CharField(source="order.order_no")
    due_by_at = serializers.DateTimeField()

    class Meta:
        model = GiftShipment
        fields = ["id", "order_no", "gift_id", "quantity", "due_by_at", "shipped_at", "tracking_no"]


class OrderOut(serializers.Serializer):
    order_no = serializers.CharField()
    ship_by_at = serializers.DateTimeField()
    shipments = ShipmentOut(many=True)


class ShippedIn(serializers.Serializer):
    shipped_at = serializers.DateTimeField()
    tracking_no = serializers.CharField(max_length=64)
    late_cause = serializers.ChoiceField(choices=GiftShipment.LateCause.choices, required=False, default="")


class AgreedShipByIn(serializers.Serializer):
    agreed_ship_by_at = serializers.DateTimeField()
    note = serializers.CharField(max_length=300, help_text="what the merchant and the consumer agreed")


class ShippedOut(serializers.Serializer):
    shipment = ShipmentOut()
    violation_id = serializers.IntegerField(allow_null=True)
    violation_skipped_reason = serializers.CharField(allow_blank=True)
    annulled_violation_id = serializers.IntegerField(
        allow_null=True,
        help_text="GIFT-4.2: the 'not shipped' violation this record annulled (shipped by the due time)",
    )


# --- helpers --------------------------------------------------------------------------------------


def _membership(request):
    return getattr(request, "active_membership", None)


def _paginate(request, view, qs, serializer_cls):
    paginator = DefaultPagination()
    page = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response(serializer_cls(page, many=True).data)


def _category(category_id: int) -> GiftCategory:
    category = GiftCategory.objects.filter(pk=category_id).first()
    if category is None:
        raise NotFound("category", field="category_id")
    return category


def _order_system_shop(request, *, perm: str):
    """The calling organization for order-system endpoints; None means platform staff."""
    if isinstance(request.auth, ApiKey):
        return request.auth.organization
    if request.user.is_staff and request.user.has_perm(perm):
        return None
    raise PermissionDenied("Call with the shop's Api-Key (order system) or as gift staff.")


# --- views ----------------------------------------------------------------------------------------


class CategoryListApi(APIView):
    @extend_schema(
        responses=CategoryOut(many=True), summary="Gift categories (GIFT-2.2 prohibited, GIFT-2.3 licence)"
    )
    def get(self, request):
        return Response(CategoryOut(selectors.category_list(), many=True).data)


class GiftListCreateApi(APIView):
    @extend_schema(
        operation_id="v1_gifts_gifts_list",
        responses=paginated(GiftOut),
        summary="The shop's registered gifts",
    )
    def get(self, request):
        qs = selectors.gift_list_for_shop(
            membership=_membership(request), state=request.query_params.get("state")
        )
        return _paginate(request, self, qs, GiftOut)

    @extend_schema(
        request=GiftIn,
        responses={201: GiftOut},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        summary="Register a gift (GIFT-2.1; a retry with the same Idempotency-Key returns that gift)",
    )
    def post(self, request):
        data = GiftIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        submit = values.pop("submit")
        values["category"] = _category(values.pop("category_id"))
        gift = services.gift_register(
            membership=_membership(request),
            actor=request.user,
            data=values,
            submit=submit,
            request_key=request.headers.get("Idempotency-Key"),
        )
        return Response(GiftOut(gift).data, status=status.HTTP_201_CREATED)


class GiftDetailApi(APIView):
    @extend_schema(responses=GiftOut, summary="One of the shop's gifts")
    def get(self, request, gift_id):
        return Response(
            GiftOut(selectors.gift_get_for_shop(membership=_membership(request), gift_id=gift_id)).data
        )

    @extend_schema(
        request=GiftIn,
        responses=GiftOut,
        summary="Edit a draft or a gift sent back for revisions (GIFT-2.4, GIFT-2.7), and submit it",
        description=(
            "Replaces the gift's registration with the body, as the edit page does; with "
            "``submit`` the gift is then submitted for review. Both or neither: a refused "
            "submission leaves the gift as it was."
        ),
    )
    def put(self, request, gift_id):
        membership = _membership(request)
        gift = selectors.gift_get_for_shop(membership=membership, gift_id=gift_id)
        data = GiftIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        submit = values.pop("submit")
        values["category"] = _category(values.pop("category_id"))
        gift = services.gift_update(
            membership=membership, actor=request.user, gift=gift, data=values, submit=submit
        )
        return Response(GiftOut(gift).data)


class GiftSubmitApi(APIView):
    @extend_schema(
        request=None,
        responses=GiftOut,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        summary="Submit a draft for review (GIFT-2.1; GIFT-2.2 auto-reject)",
        description=(
            "A gift no longer a draft is refused (409 GIFT-STATE), unless the call repeats the "
            "first submit's Idempotency-Key: then the gift is returned as it is now "
            "(``Idempotent-Replayed: true``), nothing submitted again."
        ),
    )
    def post(self, request, gift_id):
        membership = _membership(request)
        gift = selectors.gift_get_for_shop(membership=membership, gift_id=gift_id)
        try:
            gift = services.gift_submit(
                membership=membership,
                actor=request.user,
                gift=gift,
                request_key=request.headers.get("Idempotency-Key"),
            )
        except AlreadyDone as done:
            return Response(GiftOut(done.result).data, headers={"Idempotent-Replayed": "true"})
        return Response(GiftOut(gift).data)


class ListingCheckApi(APIView):
    @extend_schema(
        request=ListingCheckIn,
        responses=ListingCheckOut,
        summary="Pre-check a listing and its gifts: every finding with its rule (GIFT-2.1..2.7, 4.3)",
    )
    def post(self, request):
        membership = _membership(request)
        data = ListingCheckIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v.get("product_id"):
            product = selectors.product_get_for_shop(membership=membership, product_id=v["product_id"])
            gifts = list(product.gifts.select_related("category"))
            fields = {
                "title": product.title,
                "subtitle": product.subtitle,
                "main_image_shows_gift_alone": product.main_image_shows_gift_alone,
                "gift_more_prominent": product.gift_more_prominent,
            }
        else:
            ids = list(dict.fromkeys(v["gift_ids"]))
            gifts = list(selectors.gift_list_for_shop(membership=membership).filter(pk__in=ids))
            if len(gifts) != len(ids):
                raise NotFound("gift", field="gift_ids")
            fields = {
                k: v[k] for k in ("title", "subtitle", "main_image_shows_gift_alone", "gift_more_prominent")
            }
        findings = listing_check(gifts=gifts, **fields)
        return Response({"passed": not findings, "findings": [f.as_dict() for f in findings]})


class ViolationListApi(APIView):
    @extend_schema(
        operation_id="v1_gifts_violations_list",
        responses=paginated(ViolationOut),
        summary="The shop's gift violations",
    )
    def get(self, request):
        return _paginate(
            request, self, selectors.violation_list_for_shop(membership=_membership(request)), ViolationOut
        )


class DisputeListCreateApi(APIView):
    @extend_schema(
        operation_id="v1_gifts_disputes_list",
        responses=paginated(DisputeOut),
        summary="The shop's gift disputes",
    )
    def get(self, request):
        return _paginate(
            request, self, selectors.dispute_list_for_shop(membership=_membership(request)), DisputeOut
        )

    @extend_schema(
        request=DisputeIn,
        responses={201: DisputeOut, 200: DisputeOut},
        summary="Order system: open a gift dispute (GIFT-5); a retry returns the same dispute with 200",
    )
    def post(self, request):
        shop = _order_system_shop(request, perm="gifts.add_giftdispute")
        data = DisputeIn(data=request.data)
        data.is_valid(raise_exception=True)
        dispute, created = services.dispute_open(shop=shop, actor=request.user, **data.validated_data)
        return Response(
            DisputeOut(dispute).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class DisputeDetailApi(APIView):
    @extend_schema(responses=DisputeOut, summary="One of the shop's gift disputes")
    def get(self, request, dispute_id):
        return Response(
            DisputeOut(
                selectors.dispute_get_for_shop(membership=_membership(request), dispute_id=dispute_id)
            ).data
        )


class OrderUpsertApi(APIView):
    @extend_schema(
        request=OrderIn,
        responses=OrderOut,
        summary="Order system: an order and the gifts due on it (GIFT-4.2)",
    )
    def post(self, request):
        shop = _order_system_shop(request, perm="gifts.add_order")
        data = OrderIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        products = Product.objects.all() if shop is None else Product.objects.filter(shop=shop)
        product = products.filter(pk=v["product_id"]).first()
        if product is None:
            raise NotFound("product", field="product_id")
        lines = None
        if v.get("gifts"):
            gifts = {
                g.pk: g
                for g in Gift.objects.filter(shop=product.shop, pk__in=[x["gift_id"] for x in v["gifts"]])
            }
            if len(gifts) != len({x["gift_id"] for x in v["gifts"]}):
                raise NotFound("gift", field="gifts")
            lines = [(gifts[x["gift_id"]], x["quantity"]) for x in v["gifts"]]
        order = services.order_upsert(
            shop=product.shop,
            order_no=v["order_no"],
            product=product,
            paid_amount_fen=v["paid_amount_fen"],
            paid_at=v["paid_at"],
            signed_for_at=v.get("signed_for_at"),
            gift_lines=lines,
        )
        shipments = order.gift_shipments.select_related("order").order_by("pk")
        return Response(
            OrderOut(
                {"order_no": order.order_no, "ship_by_at": order.ship_by_at, "shipments": shipments}
            ).data
        )


def _shipment_for(request, shipment_id: int) -> GiftShipment:
    shop = _order_system_shop(request, perm="gifts.change_giftshipment")
    qs = GiftShipment.objects.select_related("order")
    if shop is not None:
        qs = qs.filter(order__shop=shop)
    shipment = qs.filter(pk=shipment_id).first()
    if shipment is None:
        raise NotFound()
    return shipment


class ShipmentAgreedShipByApi(APIView):
    @extend_schema(
        request=AgreedShipByIn,
        responses=ShipmentOut,
        summary="Order system: a shipping time agreed with the consumer before the due time (GIFT-4.2)",
    )
    def post(self, request, shipment_id):
        shipment = _shipment_for(request, shipment_id)
        data = AgreedShipByIn(data=request.data)
        data.is_valid(raise_exception=True)
        shipment = services.gift_shipment_agree_ship_by(
            shipment=shipment, actor=request.user, **data.validated_data
        )
        return Response(ShipmentOut(shipment).data)


class ShipmentShippedApi(APIView):
    @extend_schema(
        request=ShippedIn,
        responses=ShippedOut,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        summary="Order system: a gift shipped (GIFT-4.2 judged)",
        description=(
            "A second record of a shipped gift is refused (409 GIFT-4.2), unless it repeats the "
            "first call's Idempotency-Key with the same body: then the shipment is returned as "
            "recorded (``Idempotent-Replayed: true``), nothing recorded again. The key with "
            "another body is refused (409 ``IDEMPOTENCY-KEY-REUSED``)."
        ),
    )
    def post(self, request, shipment_id):
        shipment = _shipment_for(request, shipment_id)
        data = ShippedIn(data=request.data)
        data.is_valid(raise_exception=True)
        headers = None
        try:
            shipment, outcome = services.gift_shipment_mark_shipped(
                shipment=shipment,
                actor=request.user,
                request_key=request.headers.get("Idempotency-Key"),
                **data.validated_data,
            )
        except AlreadyDone as done:
            shipment, headers = done.result, {"Idempotent-Replayed": "true"}
            late, skipped = selectors.shipment_late_judgement(shipment=shipment)
            outcome = services.ViolationOutcome(late, skipped) if late or skipped else None
        return Response(
            ShippedOut(
                {
                    "shipment": shipment,
                    "violation_id": outcome.violation.pk if outcome and outcome.violation else None,
                    "violation_skipped_reason": outcome.skipped_reason if outcome else "",
                    "annulled_violation_id": ViolationAnnulment.objects.filter(shipment=shipment)
                    .values_list("violation_id", flat=True)
                    .first(),
                }
            ).data,
            headers=headers,
        )
