from django.urls import path

from portal import api

app_name = "portal-api"
urlpatterns = [
    path("me", api.MeApi.as_view(), name="me"),
    path("organizations", api.OrganizationSearchApi.as_view(), name="organization-search"),
    path("notifications", api.NotificationListApi.as_view(), name="notifications"),
]
