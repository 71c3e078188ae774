"""API routes of the gifts app, mounted at /api/v1/gifts/."""

from django.urls import path  # noqa: F401

app_name = "gifts-api"
urlpatterns: list = []
