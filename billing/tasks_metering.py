"""Celery tasks for Billing II."""
