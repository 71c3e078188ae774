# STOP: read /work/main/TEAM_NOTES.md first (shared-tree rules, what the foundation gives you,
# test DB/Redis isolation, commit rules, the 08:05 UTC deadline). Delete this note when you edit this file.
"""API routes of the gifts app, mounted at /api/v1/gifts/."""

from django.urls import path  # noqa: F401

app_name = "gifts-api"
urlpatterns: list = []
