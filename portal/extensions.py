"""How domain apps put things on the shared pages without portal importing them.

A domain app may have ``<app>/dashboard.py`` with two functions, each role-aware itself:
- ``cards(request) -> list[dict(title, body, url, order)]`` for the dashboard;
- ``nav(request) -> list[dict(title, url, order)]`` for the top navigation.
"""

import importlib
from types import ModuleType

DOMAIN_APPS = ("billing", "authorization", "gifts")


def _modules() -> list[ModuleType]:
    found = []
    for name in DOMAIN_APPS:
        try:
            found.append(importlib.import_module(f"{name}.dashboard"))
        except ModuleNotFoundError as exc:
            if exc.name != f"{name}.dashboard":
                raise
    return found


def collect(hook: str, request) -> list[dict]:
    items = []
    for module in _modules():
        fn = getattr(module, hook, None)
        if fn is not None:
            items.extend(fn(request))
    return sorted(items, key=lambda c: c.get("order", 100))
