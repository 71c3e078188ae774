import pytest
from django.core.management import call_command

from authorization.models import CreatorDailySales, Grant, LiveRoom, LiveRoomRequest
from authorization.selectors import state_of

pytestmark = pytest.mark.django_db


def test_seed_demo_gives_grants_in_each_state_and_is_idempotent(staff_groups):
    call_command("seed_demo")
    counts = (
        Grant.objects.count(),
        LiveRoom.objects.count(),
        CreatorDailySales.objects.count(),
        LiveRoomRequest.objects.count(),
    )
    call_command("seed_demo")
    assert counts == (
        Grant.objects.count(),
        LiveRoom.objects.count(),
        CreatorDailySales.objects.count(),
        LiveRoomRequest.objects.count(),
    )
    assert {state_of(g) for g in Grant.objects.all()} == {"authorized", "expired", "revoked", "scheduled"}
    assert CreatorDailySales.objects.filter(creator__user__username="creator").count() == 60
    assert LiveRoomRequest.objects.get().status == "pending"
    for g in Grant.objects.all():
        assert g.events.filter(operation="authorize").exists()
