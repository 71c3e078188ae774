"""API routes of the authorization app, mounted at /api/v1/authorization/."""

from django.urls import path  # noqa: F401

app_name = "authorization-api"
urlpatterns: list = []
