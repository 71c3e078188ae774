"""Idempotent demo data: parties first, then each domain app's ``<app>/demo.py:seed()``."""

from django.core.management.base import BaseCommand

from portal import demo
from portal.extensions import app_modules


class Command(BaseCommand):
    help = "Create (or top up, idempotently) the demo organizations, users and domain data."

    def handle(self, *args, **options):
        logins = demo.seed()
        for module in app_modules("demo"):
            module.seed()
            self.stdout.write(f"  seeded {module.__name__.split('.')[0]}")
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):"))
        for username, desc in logins:
            self.stdout.write(f"  {username:<14} {desc}")
