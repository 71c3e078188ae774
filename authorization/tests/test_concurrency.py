"""Two concurrent authorizes of one pair produce one live grant (real threads, PostgreSQL)."""

import threading

import pytest
from django.db import connection

from authorization import services
from authorization.errors import GrantRuleError
from authorization.models import Grant, GrantEvent
from authorization.tests.conftest import days
from authorization.tests.factories import TODAY
from portal.models import Organization
from portal.tests.factories import CreatorFactory, OrganizationFactory


@pytest.mark.django_db(transaction=True)
def test_grant_2_concurrent_authorizes_of_one_pair_make_one_live_grant():
    creator = CreatorFactory()
    shop = OrganizationFactory(kind=Organization.Kind.SHOP)
    barrier = threading.Barrier(2)
    outcomes = []

    def worker(offset):
        try:
            barrier.wait(timeout=10)
            services.grant_authorize_all_data(
                creator=creator,
                organizations=[shop],
                start_date=TODAY + days(offset),
                end_date=TODAY + days(30 + offset),
                actor=creator.user,
                today=TODAY,
            )
            outcomes.append("ok")
        except GrantRuleError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["GRANT-2", "ok"]  # the loser gets the rule, not an IntegrityError
    assert Grant.objects.filter(creator=creator, organization=shop, revoked_at__isnull=True).count() == 1
    assert GrantEvent.objects.filter(operation="authorize").count() == 1


@pytest.mark.django_db(transaction=True)
def test_grant_4_concurrent_revoke_and_early_renew_serialize():
    creator = CreatorFactory()
    shop = OrganizationFactory(kind=Organization.Kind.SHOP)
    (grant,) = services.grant_authorize_all_data(
        creator=creator,
        organizations=[shop],
        start_date=TODAY,
        end_date=TODAY + days(10),
        actor=creator.user,
        today=TODAY,
    )
    barrier = threading.Barrier(2)
    outcomes = {}

    def run(name, fn):
        try:
            barrier.wait(timeout=10)
            fn()
            outcomes[name] = "ok"
        except GrantRuleError as exc:
            outcomes[name] = exc.code
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=run,
            args=("revoke", lambda: services.grant_revoke(grant=grant, actor=creator.user, today=TODAY)),
        ),
        threading.Thread(
            target=run,
            args=(
                "renew",
                lambda: services.grant_early_renew(
                    grant=grant, end_date=TODAY + days(40), actor=creator.user, today=TODAY
                ),
            ),
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    grant.refresh_from_db()
    assert outcomes["revoke"] == "ok" and grant.revoked_at is not None
    # Either order is fine; each saw the other's committed row (the events tell the same story).
    ops = list(grant.events.order_by("id").values_list("operation", flat=True))
    assert ops in (["authorize", "revoke"], ["authorize", "early_renew", "revoke"])
    assert outcomes["renew"] == ("ok" if "early_renew" in ops else "GRANT-5")
