"""API of the organization's GRANT-11 webhook, for its main account (a sub-account: 403,
GRANT-9; not a member of a shop or agency: 404): read and set the URL, rotate the signing
secret (returned once), send a test event, list recent deliveries."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from authorization import selectors, services_webhooks
from authorization.api import _membership
from authorization.models import OrganizationWebhook, WebhookDelivery
from portal.errors import NotFound


class GrantWebhookOut(serializers.ModelSerializer):
    class Meta:
        model = OrganizationWebhook
        fields = ["url", "is_active", "secret_rotated_at", "created_at", "updated_at"]


class GrantWebhookSecretOut(GrantWebhookOut):
    secret = serializers.CharField(help_text="Shown once: store it now, it is never returned again.")

    class Meta(GrantWebhookOut.Meta):
        fields = [*GrantWebhookOut.Meta.fields, "secret"]


class GrantWebhookIn(serializers.Serializer):
    url = serializers.CharField(
        max_length=500, allow_blank=True, help_text="https in production; no internal addresses"
    )
    is_active = serializers.BooleanField(default=True)


class GrantWebhookDeliveryOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "status",
            "response_status",
            "attempts",
            "error",
            "url",
            "created_at",
            "finished_at",
        ]


class WebhookApi(APIView):
    @extend_schema(
        responses={200: GrantWebhookOut, 404: None},
        summary="GRANT-11: our webhook (main account; 404 when none is set)",
    )
    def get(self, request):
        hook = services_webhooks.webhook_get(membership=_membership(request))
        if hook is None:
            raise NotFound("No webhook is set.")
        return Response(GrantWebhookOut(hook).data)

    @extend_schema(
        request=GrantWebhookIn,
        responses={200: GrantWebhookOut, 201: GrantWebhookSecretOut},
        summary="GRANT-11: set our webhook URL; the first time, answers 201 with the secret (shown once)",
    )
    def put(self, request):
        membership = _membership(request)
        data = GrantWebhookIn(data=request.data)
        data.is_valid(raise_exception=True)
        hook, secret = services_webhooks.webhook_configure(
            membership=membership,
            url=data.validated_data["url"],
            is_active=data.validated_data["is_active"],
            actor=request.user,
        )
        if secret is not None:
            return Response({**GrantWebhookOut(hook).data, "secret": secret}, status=status.HTTP_201_CREATED)
        return Response(GrantWebhookOut(hook).data)


class WebhookRotateApi(APIView):
    @extend_schema(
        request=None,
        responses=GrantWebhookSecretOut,
        summary="GRANT-11: rotate the signing secret (the new one is returned once and signs every "
        "delivery from now on)",
    )
    def post(self, request):
        hook, secret = services_webhooks.webhook_secret_rotate(
            membership=_membership(request), actor=request.user
        )
        return Response({**GrantWebhookOut(hook).data, "secret": secret})


class WebhookTestApi(APIView):
    @extend_schema(
        request=None,
        responses={202: GrantWebhookDeliveryOut},
        summary="GRANT-11: send a signed test event (webhook.test); see its delivery for the result",
    )
    def post(self, request):
        delivery = services_webhooks.webhook_send_test(membership=_membership(request), actor=request.user)
        return Response(GrantWebhookDeliveryOut(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryListApi(APIView):
    @extend_schema(
        responses=GrantWebhookDeliveryOut(many=True),
        summary="GRANT-11: our 20 most recent webhook deliveries and their status",
    )
    def get(self, request):
        membership = _membership(request)
        services_webhooks.webhook_get(membership=membership)  # main account only (403/404)
        rows = selectors.webhook_delivery_list(membership=membership)
        return Response(GrantWebhookDeliveryOut(rows, many=True).data)
