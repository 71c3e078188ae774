"""HTML pages of the authorization app."""

from django.urls import path  # noqa: F401

app_name = "authorization"
urlpatterns: list = []
