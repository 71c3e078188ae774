"""Billing writes. Import from the submodules: ``billing.services.wallet``, ``billing.services.metering``."""
