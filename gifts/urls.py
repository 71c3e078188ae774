"""HTML pages of the gifts app."""

from django.urls import path  # noqa: F401

app_name = "gifts"
urlpatterns: list = []
