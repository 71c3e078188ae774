"""The Celery app. Beat entries are declared in code, one ``beat.py`` per domain app (a dict
named SCHEDULE with a comment on each crontab); django-celery-beat's DatabaseScheduler syncs
them into its tables at start-up, where staff can see and pause them in admin.
"""

import os

from celery import Celery

from portal.extensions import DOMAIN_APPS, app_modules

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def collect_beat_schedule() -> dict:
    schedule: dict = {}
    for module in app_modules("beat", ("portal", *DOMAIN_APPS)):
        schedule.update(module.SCHEDULE)
    return schedule


app.conf.beat_schedule = collect_beat_schedule()
