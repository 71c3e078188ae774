"""Celery tasks of billing (thin calls into services): ``tasks_wallet``, ``tasks_metering``."""

from billing.tasks_metering import *  # noqa: F403
from billing.tasks_wallet import *  # noqa: F403
