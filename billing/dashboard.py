"""Billing's dashboard cards and navigation (see portal/extensions.py)."""

from billing import dashboard_metering, dashboard_wallet


def cards(request) -> list[dict]:
    return [*dashboard_wallet.cards(request), *dashboard_metering.cards(request)]


def banners(request) -> list[dict]:
    return dashboard_wallet.banners(request)


def nav(request) -> list[dict]:
    return [*dashboard_wallet.nav(request), *dashboard_metering.nav(request)]
