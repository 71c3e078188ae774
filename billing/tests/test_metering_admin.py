"""Admin: catalog with price history, permissions, discounts, settlement runs with progress."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from billing.models import Api, ApiPrice, Bill, Discount, OutOfCloudPermission, SettlementRun
from billing.services.gate import OUT_OF_CLOUD, gate_check
from billing.tests.factories_metering import (
    ApiFactory,
    AppFactory,
    DiscountFactory,
    paid_api,
    record_usage,
    sh,
)
from portal.models import AuditEntry
from portal.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(client):
    user = UserFactory(is_staff=True)
    # The group and its permissions come from migrations; a transactional test's flush may have
    # emptied them when the database is reused, so make sure they are there.
    group, _ = Group.objects.get_or_create(name="billing-ops")
    if not group.permissions.filter(
        content_type__app_label="billing", codename="view_settlementrun"
    ).exists():
        group.permissions.add(*Permission.objects.filter(content_type__app_label="billing"))
    user.groups.add(group)
    client.force_login(user)
    return user


@pytest.fixture
def eager_celery():
    from portal.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_billing_ops_sees_every_metering_admin(client, ops):
    for model in ("api", "app", "outofcloudpermission", "discount", "settlementrun", "bill", "usagebatch"):
        assert client.get(reverse(f"admin:billing_{model}_changelist")).status_code == 200, model


def test_fee_2_1_api_with_price_history_inline_goes_through_services(client, ops):
    data = {
        "code": "order.search",
        "title": "订单搜索",
        "tier": "basic",
        "prices-TOTAL_FORMS": "1",
        "prices-INITIAL_FORMS": "0",
        "prices-0-effective_from": "2026-01-01",
        "prices-0-price_fen_per_1000": "150",
    }
    resp = client.post(reverse("admin:billing_api_add"), data)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    api = Api.objects.get(code="order.search")
    assert list(api.prices.values_list("price_fen_per_1000", "effective_from")) == [
        (150, dt.date(2026, 1, 1))
    ]
    assert AuditEntry.objects.filter(action="billing.api_create", actor=ops).exists()
    assert AuditEntry.objects.filter(action="billing.api_price_set", actor=ops).exists()


def test_fee_3_1_granting_in_admin_is_seen_by_the_gate(client, ops, django_capture_on_commit_callbacks):
    app = AppFactory()
    va = ApiFactory(tier=Api.Tier.VALUE_ADDED)
    assert gate_check(app_key=app.app_key, api=va.code, location="out_of_cloud").code == OUT_OF_CLOUD
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(
            reverse("admin:billing_outofcloudpermission_add"), {"app": app.pk, "api": va.pk, "note": "ISV"}
        )
    assert resp.status_code == 302
    assert gate_check(app_key=app.app_key, api=va.code, location="out_of_cloud").allow
    perm = OutOfCloudPermission.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:billing_outofcloudpermission_delete", args=[perm.pk]), {"post": "yes"})
    assert not gate_check(app_key=app.app_key, api=va.code, location="out_of_cloud").allow
    assert AuditEntry.objects.filter(action="billing.oocperm_revoke").exists()


def test_fee_5_1_overlapping_discount_is_refused_in_admin(client, ops):
    app = AppFactory()
    DiscountFactory(app=app, valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2026, 6, 30))
    resp = client.post(
        reverse("admin:billing_discount_add"),
        {"app": app.pk, "rate": "0.3", "valid_from": "2026-06-01", "valid_to": "2026-12-31", "reason": ""},
    )
    assert resp.status_code == 200 and "FEE-5.1" in resp.content.decode()
    ok = client.post(
        reverse("admin:billing_discount_add"),
        {
            "app": app.pk,
            "rate": "0.3",
            "valid_from": "2026-07-01",
            "valid_to": "2026-12-31",
            "reason": "优质服务商",
        },
    )
    assert ok.status_code == 302 and Discount.objects.count() == 2
    assert AuditEntry.objects.filter(action="billing.discount_set", actor=ops).exists()


def test_fee_4_2_admin_refuses_a_discount_that_changes_a_settled_month(client, ops):
    from billing.services.settlement import settlement_run_month

    app = AppFactory()
    kept = DiscountFactory(app=app, rate="0.2", valid_from=dt.date(2026, 3, 1), valid_to=dt.date(2026, 3, 31))
    record_usage([(app, paid_api(), "in_cloud", sh(2026, 3, 4), 12)])
    settlement_run_month(year=2026, month=3)
    # a new discount over March: the form names the rule, nothing is saved
    resp = client.post(
        reverse("admin:billing_discount_add"),
        {"app": app.pk, "rate": "0.5", "valid_from": "2026-02-01", "valid_to": "2026-02-28", "reason": ""},
    )
    assert resp.status_code == 302  # February was never settled (no run): allowed
    resp = client.post(
        reverse("admin:billing_discount_add"),
        {"app": app.pk, "rate": "0.5", "valid_from": "2026-01-01", "valid_to": "2026-01-31", "reason": ""},
    )
    assert resp.status_code == 302
    resp = client.post(
        reverse("admin:billing_discount_change", args=[kept.pk]),
        {"app": app.pk, "rate": "0.6", "valid_from": "2026-03-01", "valid_to": "2026-03-31", "reason": ""},
    )
    assert resp.status_code == 200 and "FEE-4.2: 2026-03" in resp.content.decode()
    # deleting it: no delete link, the delete page and the bulk action answer 403
    assert reverse("admin:billing_discount_delete", args=[kept.pk]) not in resp.content.decode()
    assert (
        client.post(reverse("admin:billing_discount_delete", args=[kept.pk]), {"post": "yes"}).status_code
        == 403
    )
    bulk = client.post(
        reverse("admin:billing_discount_changelist"),
        {"action": "delete_selected", "_selected_action": [kept.pk], "post": "yes"},
    )
    assert bulk.status_code == 403
    kept.refresh_from_db()
    assert kept.rate == Decimal("0.2") and Discount.objects.count() == 3


def test_fee_4_2_staff_run_a_month_and_see_progress_and_bills(client, ops, eager_celery):
    api = paid_api(price_fen_per_1000=1000)
    apps = [AppFactory() for _ in range(3)]
    record_usage([(a, api, "in_cloud", sh(2026, 3, 4), 12) for a in apps])
    resp = client.post(
        reverse("admin:billing_settlement_run_month"), {"year": 2026, "month": 3, "action": "run"}
    )
    assert resp.status_code == 302
    run = SettlementRun.objects.get(year=2026, month=3)
    assert run.status == SettlementRun.Status.DONE and run.orgs_done == run.orgs_total == 3
    assert Bill.objects.filter(run=run).count() == 3
    listing = client.get(reverse("admin:billing_settlementrun_changelist")).content.decode()
    assert '<progress value="3" max="3">' in listing and "3 / 3" in listing
    client.post(
        reverse("admin:billing_settlement_run_month"), {"year": 2026, "month": 3, "action": "recheck"}
    )
    run.refresh_from_db()
    assert run.recheck["ok"] is True and run.recheck["bills"] == 3
    assert AuditEntry.objects.filter(action="billing.settlement_run", actor=ops).exists()


def test_fee_4_2_admin_refuses_last_month_before_the_5th(client, ops, enqueued, monkeypatch):
    from portal import clock

    monkeypatch.setattr(clock, "now", lambda: sh(2026, 4, 2, 9))  # 2 April in Shanghai
    resp = client.post(
        reverse("admin:billing_settlement_run_month"),
        {"year": 2026, "month": 3, "action": "run"},
        follow=True,
    )
    assert "FEE-4.2" in resp.content.decode() and "2026-04-05" in resp.content.decode()
    assert not SettlementRun.objects.exists() and enqueued == []


def test_fee_4_2_admin_refuses_months_before_2023_03(client, ops, eager_celery):
    resp = client.post(
        reverse("admin:billing_settlement_run_month"),
        {"year": 2023, "month": 2, "action": "run"},
        follow=True,
    )
    assert "FEE-4.2" in resp.content.decode()
    assert not SettlementRun.objects.exists()


@pytest.fixture
def viewer(client):
    """Staff who may view settlement runs and bills, and nothing more."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="billing", codename__in=["view_settlementrun", "view_bill"]
        )
    )
    client.force_login(user)
    return user


@pytest.fixture
def enqueued(monkeypatch):
    from billing import tasks_metering

    sent = []
    monkeypatch.setattr(tasks_metering.settle_month_task, "delay", lambda *a: sent.append(("run", *a)))
    monkeypatch.setattr(tasks_metering.recheck_month_task, "delay", lambda *a: sent.append(("recheck", *a)))
    return sent


@pytest.mark.parametrize("action", ["run", "recheck"])
def test_p4_view_only_staff_get_403_on_run_month_and_start_nothing(client, viewer, enqueued, action):
    resp = client.post(
        reverse("admin:billing_settlement_run_month"), {"year": 2026, "month": 3, "action": action}
    )
    assert resp.status_code == 403
    assert not SettlementRun.objects.exists() and enqueued == []
    assert client.get(reverse("admin:billing_settlement_run_month")).status_code == 403


@pytest.mark.parametrize("action", ["continue_runs", "recheck_runs"])
def test_p4_view_only_staff_cannot_continue_or_recheck_a_run(client, viewer, enqueued, action):
    run = SettlementRun.objects.create(year=2026, month=3, status=SettlementRun.Status.FAILED)
    listing = client.get(reverse("admin:billing_settlementrun_changelist"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert action not in html and reverse("admin:billing_settlement_run_month") not in html
    client.post(
        reverse("admin:billing_settlementrun_changelist"), {"action": action, "_selected_action": [run.pk]}
    )
    assert enqueued == [] and not AuditEntry.objects.filter(action="billing.settlement_run").exists()


def test_non_staff_cannot_open_the_run_month_page(client):
    client.force_login(UserFactory())
    assert client.get(reverse("admin:billing_settlement_run_month")).status_code == 302


def test_price_history_is_ordered_newest_first(client, ops):
    api = paid_api(price_fen_per_1000=100, since=dt.date(2025, 1, 1))
    ApiPrice.objects.create(api=api, price_fen_per_1000=200, effective_from=dt.date(2026, 1, 1))
    html = client.get(reverse("admin:billing_api_change", args=[api.pk])).content.decode()
    assert html.index("2026-01-01") < html.index("2025-01-01")


def test_fee_2_1_api_list_shows_todays_price_and_a_scheduled_tier_change(
    client, ops, django_assert_max_num_queries
):
    from billing.services import metering as svc
    from portal import clock

    today = clock.today()
    changing = paid_api(price_fen_per_1000=120)
    ApiPrice.objects.create(api=changing, price_fen_per_1000=999, effective_from=today + dt.timedelta(days=3))
    svc.api_update(api=changing, tier=Api.Tier.VALUE_ADDED, today=today)
    steady = paid_api(price_fen_per_1000=80)
    ApiFactory.create_batch(5)
    with django_assert_max_num_queries(12):  # one list query, not one per row
        page = client.get(reverse("admin:billing_api_changelist")).content.decode()
    rows = {
        api.code: page[page.index(api.code) : page.index("</tr>", page.index(api.code))]
        for api in (changing, steady)
    }
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    # the price in force today, in yuan (not "120", the fen)
    assert "¥1.20" in rows[changing.code] and "¥9.99" not in rows[changing.code]
    assert '<td class="field-current_price">120</td>' not in rows[changing.code]
    assert f"{Api.Tier.VALUE_ADDED.label}, 自 {tomorrow} 起" in rows[changing.code]
    assert "¥0.80" in rows[steady.code] and "自" not in rows[steady.code]
    assert "当前单价(元/千次)" in page


def test_fee_2_1_api_list_shows_the_tier_in_force_before_the_midnight_job_applies_it(client, ops):
    from billing.models import ApiTierChange
    from portal import clock

    # given a basic API whose change to value-added is due today, the midnight job not run yet
    api = paid_api(price_fen_per_1000=120)
    ApiTierChange.objects.create(api=api, tier=Api.Tier.VALUE_ADDED, effective_from=clock.today())
    assert Api.objects.get(pk=api.pk).tier == Api.Tier.BASIC
    # then the list shows the tier in force today, and no scheduled change
    page = client.get(reverse("admin:billing_api_changelist")).content.decode()
    row = page[page.index(api.code) : page.index("</tr>", page.index(api.code))]
    assert str(Api.Tier.VALUE_ADDED.label) in row and str(Api.Tier.BASIC.label) not in row
    assert "自" not in row


def test_fee_4_2_a_runs_bills_link_lists_that_month_and_periods_come_from_the_runs(client, ops):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.tests.factories import OrganizationFactory

    # Given two settled months with a bill each
    runs = [
        SettlementRun.objects.create(year=2026, month=m, status=SettlementRun.Status.DONE) for m in (2, 3)
    ]
    bills = [Bill.objects.create(organization=OrganizationFactory(), year=2026, month=m) for m in (2, 3)]
    # When staff follow March's "bills" link from the run list
    runs_page = client.get(reverse("admin:billing_settlementrun_changelist")).content.decode()
    link = reverse("admin:billing_bill_changelist") + "?period=2026-03"
    assert link in runs_page
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(link)
    # Then only March's bills are listed, and the period filter offers the settled months
    # without a DISTINCT over every bill
    assert [b.pk for b in resp.context["cl"].result_list] == [bills[1].pk]
    html = resp.content.decode()
    assert "?period=2026-02" in html and "?period=2026-03" in html
    assert not [q for q in ctx.captured_queries if "DISTINCT" in q["sql"]]
    assert runs[0].pk
