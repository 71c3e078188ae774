"""HTML pages of the billing app."""

from django.urls import path  # noqa: F401

app_name = "billing"
urlpatterns: list = []
