"""clock.travel: the calling thread reads a shifted time (auto_now_add included) inside the
block and the real one after it; other threads never see the shift."""

import datetime as dt
import threading

import pytest
from django.utils import timezone

from portal import clock
from portal.tests.factories import OrganizationFactory

PAST = dt.datetime(2025, 6, 5, 2, 0, tzinfo=clock.tz())


@pytest.mark.django_db
def test_travel_shifts_now_and_auto_now_add_then_restores_the_real_clock():
    with clock.travel(PAST):
        org = OrganizationFactory()
        inside = timezone.now()
        today = clock.today()
    after = timezone.now()

    assert PAST <= org.created_at < PAST + dt.timedelta(minutes=1)
    assert PAST <= inside < PAST + dt.timedelta(minutes=1)
    assert today == dt.date(2025, 6, 5)
    assert after > dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    org.refresh_from_db()
    assert PAST <= org.created_at < PAST + dt.timedelta(minutes=1)


def test_the_clock_keeps_ticking_inside_travel():
    with clock.travel(PAST):
        first = timezone.now()
        second = timezone.now()
    assert PAST <= first <= second


def test_other_threads_read_the_real_time_during_travel():
    seen: list[dt.datetime] = []
    with clock.travel(PAST):
        worker = threading.Thread(target=lambda: seen.append(timezone.now()))
        worker.start()
        worker.join()
    assert seen[0] > dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_travel_refuses_the_future_a_naive_time_and_nesting():
    with pytest.raises(ValueError), clock.travel(timezone.now() + dt.timedelta(days=1)):
        pass
    with pytest.raises(ValueError), clock.travel(dt.datetime(2025, 6, 5)):
        pass
    with clock.travel(PAST), pytest.raises(RuntimeError), clock.travel(PAST):
        pass
    # each refusal left the real clock in place
    assert timezone.now() > dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
