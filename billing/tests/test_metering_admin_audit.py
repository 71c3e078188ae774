"""Admin audit gaps: an app's rename is audited; the price history is append-only (existing
rows read-only, new rows added) and never changes a settled month (FEE-4.2)."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from billing.models import ApiPrice, App, Bill, SettlementRun
from billing.services import metering as svc
from billing.tests.factories_metering import ApiPriceFactory, AppFactory, paid_api
from portal.errors import DomainError
from portal.models import AuditEntry
from portal.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(client):
    """A staff member of billing-ops (every billing permission), signed in."""
    user = UserFactory(is_staff=True)
    group, _ = Group.objects.get_or_create(name="billing-ops")
    if not group.permissions.filter(content_type__app_label="billing", codename="change_app").exists():
        group.permissions.add(*Permission.objects.filter(content_type__app_label="billing"))
    user.groups.add(group)
    client.force_login(user)
    return user


@pytest.fixture
def plain_staff(client):
    """Staff without billing permissions, signed in."""
    user = UserFactory(is_staff=True)
    client.force_login(user)
    return user


def prices_of(api):
    return sorted(api.prices.values_list("effective_from", "price_fen_per_1000"))


def settle(year, month, how):
    """Mark a month settled: a finished settlement run, or only a bill."""
    if how == "run":
        SettlementRun.objects.create(year=year, month=month, status=SettlementRun.Status.DONE)
    else:
        Bill.objects.create(organization=AppFactory().organization, year=year, month=month)


def price_post(api, *, existing=(), new=None):
    """The change form's POST: existing rows as the browser sends them, plus one new row."""
    data = {"title": api.title, "tier": api.tier}
    rows = [
        {
            "id": p.pk,
            "api": api.pk,
            "effective_from": p.effective_from,
            "price_fen_per_1000": p.price_fen_per_1000,
        }
        for p in existing
    ]
    if new:
        rows.append({"api": api.pk, "effective_from": new[0], "price_fen_per_1000": new[1]})
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"prices-{i}-{key}"] = str(value)
    data.update({"prices-TOTAL_FORMS": str(len(rows)), "prices-INITIAL_FORMS": str(len(existing))})
    return data


class TestAppRename:
    def test_renaming_an_app_in_admin_is_audited(self, client, ops):
        # given: an app
        app = AppFactory(name="旧名字")

        # when: staff rename it
        resp = client.post(reverse("admin:billing_app_change", args=[app.pk]), {"name": "新名字"})

        # then: renamed, and the audit trail says who renamed what from what to what
        assert resp.status_code == 302, resp.content.decode()[:2000]
        assert App.objects.get(pk=app.pk).name == "新名字"
        entry = AuditEntry.objects.get(action="billing.app_rename")
        assert (entry.actor, entry.object_type, entry.object_id) == (ops, "billing.app", str(app.pk))
        assert entry.details == {"name": ["旧名字", "新名字"]}

    def test_saving_without_a_change_writes_no_rename_entry(self, client, ops):
        app = AppFactory(name="同名")
        resp = client.post(reverse("admin:billing_app_change", args=[app.pk]), {"name": "同名"})
        assert resp.status_code == 302
        assert not AuditEntry.objects.filter(action="billing.app_rename").exists()

    def test_staff_without_billing_permissions_cannot_rename(self, client, plain_staff):
        app = AppFactory(name="旧名字")
        resp = client.post(reverse("admin:billing_app_change", args=[app.pk]), {"name": "新名字"})
        assert resp.status_code == 403
        assert App.objects.get(pk=app.pk).name == "旧名字"
        assert not AuditEntry.objects.filter(action="billing.app_rename").exists()


class TestPriceHistoryIsAppendOnly:
    def test_fee_2_1_existing_price_rows_are_read_only_and_a_new_row_is_addable(self, client, ops):
        api = paid_api(price_fen_per_1000=100, since=dt.date(2026, 1, 1))
        html = client.get(reverse("admin:billing_api_change", args=[api.pk])).content.decode()
        assert 'name="prices-0-effective_from"' not in html  # the existing row: text only
        assert 'name="prices-1-effective_from"' in html  # the extra row: an input

    def test_fee_2_1_changing_an_existing_rows_date_changes_nothing(self, client, ops):
        # given: a price from 2026-01-01
        api = paid_api(price_fen_per_1000=100, since=dt.date(2026, 1, 1))
        old = api.prices.get()

        # when: a POST changes that row's date and price (an old form, or a tampered one)
        old.effective_from, old.price_fen_per_1000 = dt.date(2026, 5, 1), 999
        resp = client.post(
            reverse("admin:billing_api_change", args=[api.pk]), price_post(api, existing=[old])
        )

        # then: no new row, the old one unchanged, no price audit
        assert resp.status_code == 302, resp.content.decode()[:2000]
        assert prices_of(api) == [(dt.date(2026, 1, 1), 100)]
        assert not AuditEntry.objects.filter(action="billing.api_price_set").exists()

    def test_fee_2_1_a_new_price_is_appended_and_audited(self, client, ops):
        api = paid_api(price_fen_per_1000=100, since=dt.date(2026, 1, 1))
        resp = client.post(
            reverse("admin:billing_api_change", args=[api.pk]),
            price_post(api, existing=list(api.prices.all()), new=("2026-05-01", 120)),
        )
        assert resp.status_code == 302, resp.content.decode()[:2000]
        assert prices_of(api) == [(dt.date(2026, 1, 1), 100), (dt.date(2026, 5, 1), 120)]
        assert AuditEntry.objects.filter(action="billing.api_price_set", actor=ops).count() == 1


class TestSettledMonthsNeverChange:
    @pytest.mark.parametrize("how", ["run", "bill"])
    @pytest.mark.parametrize("effective_from", ["2026-03-15", "2026-02-01"])
    def test_fee_4_2_a_price_that_would_reprice_a_settled_month_is_refused(
        self, client, ops, how, effective_from
    ):
        # given: March 2026 settled; the API's only price is from 2023
        api = paid_api(price_fen_per_1000=100, since=dt.date(2023, 1, 1))
        settle(2026, 3, how)

        # when: staff add a price in March, or in February (in force through March too)
        resp = client.post(
            reverse("admin:billing_api_change", args=[api.pk]),
            price_post(api, existing=list(api.prices.all()), new=(effective_from, 150)),
        )

        # then: the form refuses it naming FEE-4.2; the history is unchanged
        assert resp.status_code == 200
        assert "FEE-4.2" in resp.content.decode() and "2026-03" in resp.content.decode()
        assert prices_of(api) == [(dt.date(2023, 1, 1), 100)]

    def test_fee_4_2_a_price_after_the_settled_months_is_accepted(self, client, ops):
        api = paid_api(price_fen_per_1000=100, since=dt.date(2023, 1, 1))
        settle(2026, 3, "run")
        resp = client.post(
            reverse("admin:billing_api_change", args=[api.pk]),
            price_post(api, existing=list(api.prices.all()), new=("2026-04-01", 150)),
        )
        assert resp.status_code == 302, resp.content.decode()[:2000]
        assert prices_of(api) == [(dt.date(2023, 1, 1), 100), (dt.date(2026, 4, 1), 150)]

    def test_fee_4_2_a_back_dated_price_ending_before_the_settled_month_is_accepted(self, client, ops):
        # a price from 2026-01-10 that a price from 2026-02-01 replaces changes only January
        api = paid_api(price_fen_per_1000=100, since=dt.date(2023, 1, 1))
        ApiPriceFactory(api=api, price_fen_per_1000=110, effective_from=dt.date(2026, 2, 1))
        settle(2026, 3, "run")
        resp = client.post(
            reverse("admin:billing_api_change", args=[api.pk]),
            price_post(api, existing=list(api.prices.all()), new=("2026-01-10", 105)),
        )
        assert resp.status_code == 302, resp.content.decode()[:2000]
        assert (dt.date(2026, 1, 10), 105) in prices_of(api)

    def test_fee_4_2_a_new_api_cannot_be_priced_into_a_settled_month(self, client, ops):
        settle(2026, 3, "run")
        resp = client.post(
            reverse("admin:billing_api_add"),
            {
                "code": "order.late",
                "title": "",
                "tier": "basic",
                "prices-TOTAL_FORMS": "1",
                "prices-INITIAL_FORMS": "0",
                "prices-0-effective_from": "2026-03-01",
                "prices-0-price_fen_per_1000": "150",
            },
        )
        assert resp.status_code == 200 and "FEE-4.2" in resp.content.decode()
        assert not ApiPrice.objects.filter(api__code="order.late").exists()

    def test_fee_4_2_the_service_refuses_too(self):
        # the backstop for shell, tasks and demo data that do not go through the admin form
        api = paid_api(price_fen_per_1000=100, since=dt.date(2023, 1, 1))
        settle(2026, 3, "run")
        with pytest.raises(DomainError) as refused:
            svc.api_price_set(api=api, price_fen_per_1000=1, effective_from=dt.date(2026, 3, 1))
        assert (refused.value.code, refused.value.field) == ("FEE-4.2", "effective_from")
        assert prices_of(api) == [(dt.date(2023, 1, 1), 100)]
