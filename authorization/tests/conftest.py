import datetime as dt

import pytest

from authorization.tests.factories import TODAY
from portal.models import Organization
from portal.tests.factories import CreatorFactory, OrganizationFactory, main_member, sub_member


@pytest.fixture
def today():
    return TODAY


@pytest.fixture
def creator():
    return CreatorFactory()


@pytest.fixture
def shop():
    return OrganizationFactory(kind=Organization.Kind.SHOP)


@pytest.fixture
def agency():
    return OrganizationFactory(kind=Organization.Kind.AGENCY)


@pytest.fixture
def shop_main(shop):
    return main_member(shop)


@pytest.fixture
def shop_sub(shop, shop_main):
    return sub_member(shop)


@pytest.fixture
def webhook_calls(monkeypatch):
    """Capture webhook_deliver.delay(...) instead of sending to the broker."""
    from authorization import tasks

    calls = []
    monkeypatch.setattr(tasks.webhook_deliver, "delay", lambda *a, **k: calls.append((a, k)))
    return calls


@pytest.fixture
def staff_groups():
    """Transactional tests that ran before this one flushed the migrations' staff groups;
    put them back the way the migrations create them (seed_demo puts staff in them)."""
    import importlib

    from django.apps import apps

    saved = {c.label: c.models_module for c in apps.get_app_configs()}  # the helpers reset it
    try:
        importlib.import_module("portal.migrations.0002_staff_groups").create_groups(apps, None)
        importlib.import_module("authorization.migrations.0002_grant_ops_permissions").forwards(apps, None)
    finally:
        for config in apps.get_app_configs():
            config.models_module = saved[config.label]


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)
