"""Celery tasks for Billing I."""
