"""How domain apps put things on the shared pages without portal importing them.

A domain app may have ``<app>/dashboard.py`` with these functions, each role-aware itself:
- ``cards(request) -> list[dict(title, body, url, order)]`` for the dashboard;
- ``banners(request) -> list[dict(html, order)]`` (optional): alerts atop the dashboard, rendered
  by the app from its own template (billing's arrears banner);
- ``nav(request) -> list[dict(title, url, order)]`` for the top navigation.
and ``<app>/demo.py`` (``seed()``, for seed_demo) and ``<app>/beat.py`` (``SCHEDULE``, for Celery).
No Django import here: portal.celery uses this before the apps are loaded.
"""

import importlib
from types import ModuleType

DOMAIN_APPS = ("billing", "authorization", "gifts")


def app_modules(submodule: str, apps: tuple[str, ...] = DOMAIN_APPS) -> list[ModuleType]:
    """``<app>.<submodule>`` of each app that has one; an import error inside one still raises."""
    found = []
    for name in apps:
        try:
            found.append(importlib.import_module(f"{name}.{submodule}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"{name}.{submodule}":
                raise
    return found


def collect(hook: str, request) -> list[dict]:
    items = []
    for module in app_modules("dashboard"):
        fn = getattr(module, hook, None)
        if fn is not None:
            items.extend(fn(request))
    return sorted(items, key=lambda c: c.get("order", 100))
