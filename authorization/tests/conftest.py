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


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)
