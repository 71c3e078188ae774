"""Admin lists over tables of millions of rows (``portal.admin_scale``): bounded counts, the
planner's estimate past them, filters and searches that an index serves, no N+1 on nullable
foreign keys. Their speed at volume is measured in ``bench/bench_admin.py``, not here."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.admin_scale import EstimatedCountPaginator
from portal.models import AuditEntry, Notification
from portal.services import audit_record
from portal.tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="billing-ops"))
    client.force_login(user)
    return user


@pytest.fixture
def superuser(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def _audit(n):
    for i in range(n):
        audit_record(actor=UserFactory(), action=f"test.action{i % 2}", obj=OrganizationFactory())


def test_a_short_list_is_counted_exactly():
    _audit(3)
    paginator = EstimatedCountPaginator(AuditEntry.objects.order_by("-pk"), 100)
    assert (paginator.count, paginator.count_is_estimate) == (3, False)


def test_past_the_limit_the_count_is_the_planners_estimate_and_the_page_says_so(client, staff, monkeypatch):
    # Given more audit entries than the paginator counts exactly
    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 4)
    _audit(6)
    # When staff open the audit log
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(reverse("admin:portal_auditentry_changelist"))
    # Then it counted at most five rows and took the rest of the total from EXPLAIN
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"]]
    assert counts and all("LIMIT 5" in sql for sql in counts), counts
    assert any(q["sql"].startswith("EXPLAIN") for q in ctx.captured_queries)
    assert resp.context["cl"].result_count >= 5
    assert 'data-testid="count-estimate"' in resp.content.decode()
    # And a filtered list short enough is counted exactly, with no marker
    one = client.get(reverse("admin:portal_auditentry_changelist"), {"action": "test.action1"})
    assert one.context["cl"].result_count == 3
    assert 'data-testid="count-estimate"' not in one.content.decode()


def test_audit_log_lists_actors_in_one_query_and_filters_without_distinct(
    client, staff, django_assert_max_num_queries
):
    # Given ten entries by ten different staff members
    _audit(10)
    # When the audit log renders, then the actors come with the entries (nullable foreign key:
    # Django's default select_related() skipped it, one query per row) and the action filter
    # lists the recent actions (DISTINCT of the newest rows, LIMIT), not of the whole log
    with CaptureQueriesContext(connection) as ctx, django_assert_max_num_queries(12):
        html = client.get(reverse("admin:portal_auditentry_changelist")).content.decode()
    assert "?action=test.action0" in html and "?action=test.action1" in html
    assert not [q for q in ctx.captured_queries if "DISTINCT" in q["sql"] and "LIMIT" not in q["sql"]]


def test_audit_entry_found_by_exact_object_id_or_actor_username(client, staff):
    org = OrganizationFactory()
    actor = UserFactory(username="auditor-7")
    audit_record(actor=actor, action="test.found", obj=org)
    audit_record(actor=UserFactory(), action="test.other", obj=OrganizationFactory())
    for term in (str(org.pk), "auditor-7"):
        resp = client.get(reverse("admin:portal_auditentry_changelist"), {"q": term})
        assert [e.action for e in resp.context["cl"].result_list] == ["test.found"], term


def test_notification_list_reads_users_and_organizations_in_one_query(
    client, superuser, django_assert_max_num_queries
):
    for i in range(5):
        Notification.objects.create(user=UserFactory(), kind="k", title=f"t{i}")
        Notification.objects.create(organization=OrganizationFactory(), kind="k", title=f"o{i}")
    with django_assert_max_num_queries(10):
        resp = client.get(reverse("admin:portal_notification_changelist"))
    assert len(resp.context["cl"].result_list) == 10


def test_api_key_form_searches_organizations_instead_of_listing_them(client, superuser):
    orgs = OrganizationFactory.create_batch(5)
    html = client.get(reverse("admin:portal_apikey_add")).content.decode()
    assert "admin-autocomplete" in html
    assert not any(f'value="{o.pk}"' in html for o in orgs)


@pytest.mark.parametrize(
    ("changelist", "params", "index"),
    [
        ("gifts_violation", {}, "gifts_violation_time"),  # ordered by occurrence, newest first
        ("gifts_giftdispute", {}, "gifts_dispute_deadline"),  # the queue: nearest deadline first
        ("billing_bill", {}, "billing_bill_period_org"),  # newest month first, by organization
        ("billing_invoice", {}, "billing_invoice_queue"),  # the review queue
        ("portal_auditentry", {"q": "42"}, "portal_audit_object_id"),
    ],
)
def test_admin_list_query_is_served_by_its_index(client, superuser, changelist, params, index):
    """On an empty test table any plan is fast; with sequential scans and sorts priced out, the
    list's query must still have its index to use (bench/bench_admin.py measures the volume)."""
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse(f"admin:{changelist}_changelist"), params).status_code == 200
    table = changelist
    listed = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].startswith(f'SELECT "{table}"."id"') and "ORDER BY" in q["sql"]
    ]
    assert listed, [q["sql"] for q in ctx.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {listed[0]}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan


def test_order_and_tracking_numbers_are_looked_up_by_their_own_index():
    """Admin search compares them exactly (``LargeTableAdmin``); the order's unique key leads with
    the shop, so a number alone needs an index of its own."""
    from gifts.models import GiftShipment, Order

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        assert "gifts_order_no" in Order.objects.filter(order_no="DY1").explain()
        assert "gifts_shipment_tracking" in GiftShipment.objects.filter(tracking_no="SF1").explain()
