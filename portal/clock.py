"""Business time. All calendar logic is Asia/Shanghai (settings.TIME_ZONE): "today", "the
5th", "a natural month" are dates there. Services take ``now=``/``today=`` so tests need no
clock patching; these helpers give the defaults.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def now() -> dt.datetime:
    return timezone.now()


def local(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(tz())


def today(now_: dt.datetime | None = None) -> dt.date:
    return local(now_ or timezone.now()).date()


def start_of_day(day: dt.date) -> dt.datetime:
    """The instant a business day begins (00:00 Asia/Shanghai)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz())


def month_range(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    """Half-open [first instant of the month, first instant of the next) in Asia/Shanghai."""
    first = dt.date(year, month, 1)
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return start_of_day(first), start_of_day(nxt)


def previous_month(day: dt.date) -> tuple[int, int]:
    first = day.replace(day=1) - dt.timedelta(days=1)
    return first.year, first.month
