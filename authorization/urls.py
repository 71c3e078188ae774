"""HTML pages of the authorization app, mounted at /authorization/."""

from django.urls import path

from authorization import views, views_webhooks

app_name = "authorization"
urlpatterns = [
    path("", views.index, name="index"),
    path("creator/", views.creator_grants, name="creator-grants"),
    path("creator/organizations/", views.organization_search_partial, name="org-search"),
    path("creator/grants/<int:grant_id>/revoke/", views.grant_revoke, name="grant-revoke"),
    path("creator/grants/<int:grant_id>/early-renew/", views.grant_early_renew, name="grant-early-renew"),
    path("creator/grants/<int:grant_id>/renew/", views.grant_renew, name="grant-renew"),
    path(
        "creator/room-grants/<int:grant_id>/revoke/", views.live_room_grant_revoke, name="room-grant-revoke"
    ),
    path(
        "creator/requests/<int:request_id>/authorize/",
        views.request_decide,
        {"decision": "authorize"},
        name="request-authorize",
    ),
    path(
        "creator/requests/<int:request_id>/reject/",
        views.request_decide,
        {"decision": "reject"},
        name="request-reject",
    ),
    path("grants/<int:grant_id>/", views.grant_detail, name="grant-detail"),
    path("org/", views.org_grants, name="org-grants"),
    path("org/creators/<int:creator_id>/", views.creator_data, name="creator-data"),
    path("org/creators/<int:creator_id>/export.csv", views.creator_data_export, name="creator-data-export"),
    path("org/live-rooms/", views.live_rooms, name="live-rooms"),
    path("org/live-rooms/<int:live_room_id>/", views.live_room_detail, name="live-room"),
    path("org/webhook/", views_webhooks.webhook_settings, name="webhook-settings"),
    path("org/webhook/rotate-secret/", views_webhooks.webhook_secret_rotate, name="webhook-rotate"),
    path("org/webhook/test/", views_webhooks.webhook_test, name="webhook-test"),
]
