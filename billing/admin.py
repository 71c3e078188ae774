"""Billing admin: registrations live in ``admin_wallet.py`` and ``admin_metering.py``."""

from billing import admin_metering, admin_wallet  # noqa: F401
