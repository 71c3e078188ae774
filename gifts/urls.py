# STOP: read /work/main/TEAM_NOTES.md first (shared-tree rules, what the foundation gives you,
# test DB/Redis isolation, commit rules, the 08:05 UTC deadline). Delete this note when you edit this file.
"""HTML pages of the gifts app."""

from django.urls import path  # noqa: F401

app_name = "gifts"
urlpatterns: list = []
