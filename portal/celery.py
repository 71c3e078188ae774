"""The Celery app. Beat entries are declared in code, one ``beat.py`` per domain app (a dict
named SCHEDULE with a comment on each crontab); django-celery-beat's DatabaseScheduler syncs
them into its tables at start-up, where staff can see and pause them in admin.
"""

import importlib
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

DOMAIN_APPS = ("portal", "billing", "authorization", "gifts")


def collect_beat_schedule() -> dict:
    schedule: dict = {}
    for name in DOMAIN_APPS:
        try:
            module = importlib.import_module(f"{name}.beat")
        except ModuleNotFoundError as exc:
            if exc.name != f"{name}.beat":
                raise
            continue
        schedule.update(module.SCHEDULE)
    return schedule


app.conf.beat_schedule = collect_beat_schedule()
