"""Idempotent demo data: parties first, then each domain app's ``<app>/demo.py:seed()``."""

import importlib

from django.core.management.base import BaseCommand

from portal import demo
from portal.extensions import DOMAIN_APPS


class Command(BaseCommand):
    help = "Create (or top up, idempotently) the demo organizations, users and domain data."

    def handle(self, *args, **options):
        logins = demo.seed()
        for name in DOMAIN_APPS:
            try:
                module = importlib.import_module(f"{name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{name}.demo":
                    raise
                continue
            module.seed()
            self.stdout.write(f"  seeded {name}")
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):"))
        for username, desc in logins:
            self.stdout.write(f"  {username:<14} {desc}")
