"""API routes of the authorization app, mounted at /api/v1/authorization/."""

from django.urls import path

from authorization import api, api_webhooks

app_name = "authorization-api"
urlpatterns = [
    path("access", api.AccessCheckApi.as_view(), name="access"),
    path("creator/grants", api.CreatorGrantListApi.as_view(), name="creator-grants"),
    path("creator/grants/<int:grant_id>/revoke", api.GrantRevokeApi.as_view(), name="grant-revoke"),
    path(
        "creator/grants/<int:grant_id>/early-renew",
        api.GrantEarlyRenewApi.as_view(),
        name="grant-early-renew",
    ),
    path("creator/grants/<int:grant_id>/renew", api.GrantRenewApi.as_view(), name="grant-renew"),
    path("creator/live-room-grants", api.CreatorRoomGrantListApi.as_view(), name="creator-room-grants"),
    path("creator/live-room-requests", api.CreatorRequestListApi.as_view(), name="creator-requests"),
    path(
        "creator/live-room-requests/<int:request_id>/authorize",
        api.CreatorRequestDecideApi.as_view(decision="authorize"),
        name="request-authorize",
    ),
    path(
        "creator/live-room-requests/<int:request_id>/reject",
        api.CreatorRequestDecideApi.as_view(decision="reject"),
        name="request-reject",
    ),
    path("grants/<int:grant_id>/events", api.GrantEventListApi.as_view(), name="grant-events"),
    path("org/grants", api.OrgGrantListApi.as_view(), name="org-grants"),
    path("org/live-room-requests", api.OrgRequestListApi.as_view(), name="org-requests"),
    path("org/creators/<int:creator_id>/sales", api.OrgCreatorSalesApi.as_view(), name="creator-sales"),
    path("org/webhook", api_webhooks.WebhookApi.as_view(), name="webhook"),
    path("org/webhook/rotate-secret", api_webhooks.WebhookRotateApi.as_view(), name="webhook-rotate"),
    path("org/webhook/test", api_webhooks.WebhookTestApi.as_view(), name="webhook-test"),
    path("org/webhook/deliveries", api_webhooks.WebhookDeliveryListApi.as_view(), name="webhook-deliveries"),
]
