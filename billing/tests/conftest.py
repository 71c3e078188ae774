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
