"""Beat entries exist and point at real tasks; each task calls its service (safe to rerun)."""

import datetime as dt

import pytest

from gifts import tasks
from gifts.beat import SCHEDULE
from gifts.models import GiftShipment
from gifts.tests.factories import ProductFactory, approved_gift, food_category, order_for, valid_licence
from portal.celery import app, collect_beat_schedule

pytestmark = pytest.mark.django_db


def test_beat_entries_are_registered_and_name_real_tasks():
    schedule = collect_beat_schedule()
    app.loader.import_default_modules()
    for name, entry in SCHEDULE.items():
        assert schedule[name]["task"] == entry["task"]
        assert entry["task"] in app.tasks


def test_gift_2_3_licence_task_suspends_lapsed_gifts_twice_safely():
    gift = approved_gift(category=food_category())
    valid_licence(gift.shop, valid_until=dt.date(2020, 1, 1))
    assert tasks.licences_daily.apply().get()["suspended"] == 1
    assert tasks.licences_daily.apply().get()["suspended"] == 0
    gift.refresh_from_db()
    assert gift.state == "suspended"


def test_gift_4_2_overdue_task_judges_once():
    gift = approved_gift()
    order = order_for(ProductFactory(shop=gift.shop), paid_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    GiftShipment.objects.create(order=order, gift=gift)
    assert tasks.shipments_overdue.apply().get() == 1
    assert tasks.shipments_overdue.apply().get() == 0


def test_gift_3_document_task_runs():
    assert tasks.document_requests_expire.apply().get() == 0
