"""Fixtures shared by billing's tests (wallet and metering sides: only add, never remove)."""

import pytest

from portal.tests.factories import OrganizationFactory, main_member, sub_member


@pytest.fixture
def org():
    return OrganizationFactory(kind="service_provider")


@pytest.fixture
def owner(org):
    """The organization's main account (主账号)."""
    return main_member(org)


@pytest.fixture
def teammate(org, owner):
    """A sub-account of the same organization (read-only on the wallet)."""
    return sub_member(org)


@pytest.fixture
def outsider():
    """The main account of another organization (another tenant: 404)."""
    return main_member(kind="service_provider")


# --- metering side (Billing II) ----------------------------------------------------------------


@pytest.fixture
def gateway_token(settings):
    """The gate's and ingest's shared token (``BILLING_GATEWAY_TOKEN``)."""
    settings.BILLING_GATEWAY_TOKEN = "gw-test-token"
    return "gw-test-token"


@pytest.fixture
def app(org):
    from billing.tests.factories_metering import AppFactory

    return AppFactory(organization=org)


@pytest.fixture
def usage_table_cleanup(django_db_blocker):
    """transaction=True tests: the unmanaged, partitioned usage table is not flushed by Django."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cur:
        cur.execute("TRUNCATE billing_usage_hourly")


@pytest.fixture(autouse=True)
def _gate_process_memo():
    """The gate memoises app key → organization per process; tests reuse database ids."""
    from billing.services import gate

    gate._app_org.clear()
    yield
    gate._app_org.clear()
