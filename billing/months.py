"""``YYYY-MM`` month parameters of the usage page, its filter form and the usage API: one rule
and one message for all three (a month outside ``portal.clock``'s supported range is refused,
not left to overflow a date further down: 9999-12 has no next month)."""

import datetime as dt

from django.utils.translation import gettext as _

from portal import clock
from portal.errors import DomainError


def parse_month(value: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month); a month outside clock's supported range is refused, not
    left to overflow a date further down (9999-12 has no next month)."""
    if not value:
        return default
    try:
        d = dt.datetime.strptime(value, "%Y-%m")
    except ValueError as exc:
        raise DomainError("invalid", _("月份格式须为 YYYY-MM。"), field="month") from exc
    if not clock.month_supported(d.year, d.month):
        raise DomainError("invalid", month_range_message(), field="month")
    return d.year, d.month


def month_range_message() -> str:
    (y0, m0), (y1, m1) = clock.FIRST_MONTH, clock.LAST_MONTH
    return _("月份须在 %(min)s 至 %(max)s 之间。") % {"min": f"{y0}-{m0:02d}", "max": f"{y1}-{m1:02d}"}
