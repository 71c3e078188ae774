"""GRANT-11 hot path: a warm access check over the API (Api-Key) asks neither PostgreSQL nor
Redis, and still sees a revocation (of the grant or of the key) on the very next call."""

import pytest
from rest_framework.test import APIClient

from authorization import services
from authorization.tests.conftest import days
from portal import clock
from portal.services import api_key_create, api_key_revoke
from portal.tests.factories import CreatorFactory

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit invalidations run for real

API = "/api/v1/authorization/access"


@pytest.fixture
def keyed(shop_main):
    key, raw = api_key_create(membership=shop_main, name="svc", actor=shop_main.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return key, api


def test_grant_11_warm_access_check_asks_neither_database_nor_redis(
    shop, keyed, redis_commands_sent, django_assert_num_queries
):
    today = clock.today()
    creator = CreatorFactory()
    services.grant_authorize_all_data(
        creator=creator, organizations=[shop], start_date=today, end_date=today + days(3), actor=creator.user
    )
    _, api = keyed
    params = {"organization": shop.pk, "creator": creator.pk, "scope": "all_data"}
    for _ in range(2):  # the first call fills the cache; its own writes invalidate what it read
        api.get(API, params)
    redis_commands_sent.clear()

    with django_assert_num_queries(0):
        assert api.get(API, params).json()["allowed"] is True

    assert redis_commands_sent == []


def test_grant_4_revocation_is_seen_on_the_next_warm_call(shop, keyed):
    today = clock.today()
    creator = CreatorFactory()
    (grant,) = services.grant_authorize_all_data(
        creator=creator, organizations=[shop], start_date=today, end_date=today + days(3), actor=creator.user
    )
    _, api = keyed
    params = {"organization": shop.pk, "creator": creator.pk, "scope": "all_data"}
    for _ in range(3):
        assert api.get(API, params).json()["allowed"] is True

    services.grant_revoke(grant=grant, actor=creator.user)

    assert api.get(API, params).json() == {
        "allowed": False,
        "state": "revoked",
        "valid_until": (today + days(3)).isoformat(),
        "code": "GRANT-4",
    }


def test_a_revoked_api_key_is_refused_on_the_next_warm_call(shop, shop_main, keyed):
    key, api = keyed
    params = {"organization": shop.pk, "creator": CreatorFactory().pk, "scope": "all_data"}
    for _ in range(3):
        assert api.get(API, params).status_code == 200

    api_key_revoke(membership=shop_main, key_id=key.pk, actor=shop_main.user)

    assert api.get(API, params).status_code == 401
