"""API routes of the billing app, mounted at /api/v1/billing/."""

from django.urls import path  # noqa: F401

app_name = "billing-api"
urlpatterns: list = []
