"""Billing beat entries (see portal/celery.py): wallet side and metering side."""

from billing.beat_metering import SCHEDULE as METERING
from billing.beat_wallet import SCHEDULE as WALLET

SCHEDULE = {**WALLET, **METERING}
