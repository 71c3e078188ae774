"""Billing reads. Import from the submodules: ``billing.selectors.wallet``, ``billing.selectors.metering``."""
