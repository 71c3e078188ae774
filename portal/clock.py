"""Business time. All calendar logic is Asia/Shanghai (settings.TIME_ZONE): "today", "the
5th", "a natural month" are dates there. Services take ``now=``/``today=`` so tests need no
clock patching; these helpers give the defaults.
"""

import contextlib
import contextvars
import datetime as dt
import threading
from collections.abc import Iterator
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


# The months a request may ask about: far wider than any usage (none before 2023-03), and
# narrow enough that month_range never overflows ``datetime.date`` (the month after 9999-12).
FIRST_MONTH = (2000, 1)
LAST_MONTH = (2999, 12)


def month_supported(year: int, month: int) -> bool:
    return FIRST_MONTH <= (year, month) <= LAST_MONTH and 1 <= month <= 12


def month_range(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    """Half-open [first instant of the month, first instant of the next) in Asia/Shanghai."""
    first = dt.date(year, month, 1)
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return start_of_day(first), start_of_day(nxt)


def previous_month(day: dt.date) -> tuple[int, int]:
    first = day.replace(day=1) - dt.timedelta(days=1)
    return first.year, first.month


_travel_offset: contextvars.ContextVar[dt.timedelta | None] = contextvars.ContextVar(
    "clock_travel_offset", default=None
)
_travel_lock = threading.Lock()


@contextlib.contextmanager
def travel(instant: dt.datetime) -> Iterator[None]:
    """Run a block as if it had started at ``instant`` (in the past): only for seed data that
    must look like history, e.g. seed_demo's wallet ledger, whose writers stamp rows with
    ``timezone.now()`` (``auto_now_add`` included) inside raw SQL and take no ``now=``.

    The real services run unchanged, so every invariant holds (locks, checks, the ledger's
    append-only trigger, balance_after_fen); only the time they read moves. The clock keeps
    ticking from ``instant``, so rows written in the block keep their order. Only the calling
    thread (context) sees the shifted time; other threads read the real one. Not for
    request, task or test code: those pass ``now=``/``today=``.
    """
    if timezone.is_naive(instant):
        raise ValueError("clock.travel needs an aware datetime.")
    if not _travel_lock.acquire(blocking=False):
        raise RuntimeError("clock.travel is already in use (it does not nest).")
    real_now = timezone.now
    try:
        offset = instant - real_now()
        if offset > dt.timedelta(0):
            raise ValueError("clock.travel only goes into the past.")

        def shifted_now() -> dt.datetime:
            shift = _travel_offset.get()
            return real_now() if shift is None else real_now() + shift

        token = _travel_offset.set(offset)
        # django.utils.timezone.now is looked up at call time by Django (auto_now_add) and by
        # every ``timezone.now()`` caller, so replacing the module attribute reaches them all.
        timezone.now = shifted_now
        try:
            yield
        finally:
            timezone.now = real_now
            _travel_offset.reset(token)
    finally:
        _travel_lock.release()
