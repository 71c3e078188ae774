import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from authorization.models import Grant, LiveRoom, LiveRoomRequest, Scope, WebhookDelivery
from portal.tests.factories import CreatorFactory, OrganizationFactory, UserFactory

TODAY = dt.date(2026, 3, 10)


class LiveRoomFactory(DjangoModelFactory):
    class Meta:
        model = LiveRoom

    creator = factory.SubFactory(CreatorFactory)
    title = factory.Sequence(lambda n: f"直播间{n}")
    started_at = factory.LazyFunction(timezone.now)


class GrantFactory(DjangoModelFactory):
    """An all_data grant written directly (for read-side tests); services are tested apart."""

    class Meta:
        model = Grant

    creator = factory.SubFactory(CreatorFactory)
    organization = factory.SubFactory(OrganizationFactory)
    scope = Scope.ALL_DATA
    start_date = TODAY - dt.timedelta(days=10)
    end_date = TODAY + dt.timedelta(days=20)


class LiveRoomRequestFactory(DjangoModelFactory):
    class Meta:
        model = LiveRoomRequest

    live_room = factory.SubFactory(LiveRoomFactory)
    creator = factory.LazyAttribute(lambda o: o.live_room.creator)
    organization = factory.SubFactory(OrganizationFactory)
    requested_by = factory.SubFactory(UserFactory)
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.created_at + dt.timedelta(days=7))


class WebhookDeliveryFactory(DjangoModelFactory):
    """A delivery already answered (delivered); pass status="pending", finished_at=None for
    one still in flight."""

    class Meta:
        model = WebhookDelivery

    organization = factory.SubFactory(OrganizationFactory)
    event = "grant.access_revoked"
    payload = factory.LazyFunction(lambda: {"event": "grant.access_revoked", "grants": []})
    url = "https://hooks.example.com/grants"
    status = WebhookDelivery.Status.DELIVERED
    attempts = 1
    response_status = 200
    created_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda o: o.created_at)
