"""FEE-2.1 tier history: settlement bills each usage day by the tier then in force; a tier
change takes effect from the next day, is audited, never changes a settled month (FEE-4.2),
and the gate sees it once the midnight job (``api_tiers_apply_due``) has applied it."""

import datetime as dt

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.urls import reverse

from billing.models import TIER_HISTORY_START, Api, ApiTierChange, Bill, BillLine, SettlementRun
from billing.services import metering as svc
from billing.services import settlement
from billing.services.gate import OUT_OF_CLOUD, gate_check
from billing.tests.factories_metering import ApiFactory, paid_api, record_usage, sh, while_a_month_is_planned
from portal import clock
from portal.errors import DomainError
from portal.models import AuditEntry
from portal.tests.factories import UserFactory

IN, OUT = "in_cloud", "out_of_cloud"
MARCH_14, MARCH_15 = dt.date(2026, 3, 14), dt.date(2026, 3, 15)
NO_FIRST_ROW = r"FEE-2\.1: API \d+ has no tier history row in force from 2000-01-01"


def settle(year=2026, month=3):
    return settlement.settlement_run_month(year=year, month=month)


def history(api):
    return sorted(api.tier_changes.values_list("effective_from", "tier"))


@pytest.mark.django_db
class TestSettlementByTierInForce:
    def test_fee_2_1_free_to_basic_on_the_15th_bills_only_the_days_from_the_15th(self, app):
        # given a free API without any price, made basic on the 15th with a price from that day
        api = ApiFactory(tier=Api.Tier.FREE)
        svc.api_update(api=api, tier=Api.Tier.BASIC, today=MARCH_14)
        svc.api_price_set(api=api, price_fen_per_1000=200, effective_from=MARCH_15)
        record_usage(
            [
                (app, api, IN, sh(2026, 3, 1), 7000),  # free days: not billed, and no price needed
                (app, api, IN, sh(2026, 3, 14, 23), 3000),
                (app, api, IN, sh(2026, 3, 15), 1000),  # 00:00 +08 on the 15th: basic
                (app, api, OUT, sh(2026, 3, 20, 12), 1500),
            ]
        )
        # when the month is settled
        run = settle()
        # then it is not refused and only the calls from the 15th are billed at the price in force
        assert run.status == SettlementRun.Status.DONE and not run.last_error
        lines = {
            loc: (calls, amount, prices)
            for loc, calls, amount, prices in BillLine.objects.values_list(
                "location", "calls", "amount_fen", "prices"
            )
        }
        assert lines == {
            IN: (1000, 200, [{"price": 200, "calls": 1000, "from": "2026-03-15"}]),
            OUT: (1500, 300, [{"price": 200, "calls": 1500, "from": "2026-03-20"}]),
        }
        assert Bill.objects.get(organization=app.organization).total_fen == 500

    def test_fee_2_1_basic_to_free_on_the_15th_bills_only_the_days_before(self, app):
        # given a basic API at 100 fen per 1,000 calls, made free on the 15th
        api = paid_api(price_fen_per_1000=100)
        svc.api_update(api=api, tier=Api.Tier.FREE, today=MARCH_14)
        record_usage(
            [
                (app, api, IN, sh(2026, 3, 2), 1000),
                (app, api, IN, sh(2026, 3, 14, 23), 2000),
                (app, api, IN, sh(2026, 3, 15), 50_000),
                (app, api, IN, sh(2026, 3, 31, 23), 50_000),
            ]
        )
        # when settled, then the paid days are billed and the free days are not
        settle()
        line = BillLine.objects.get()
        assert (line.calls, line.amount_fen) == (3000, 300)
        assert Bill.objects.get().total_fen == 300

    def test_fee_2_1_value_added_from_the_10th_and_free_again_from_the_20th(self, app):
        api = ApiFactory(tier=Api.Tier.FREE)
        svc.api_price_set(api=api, price_fen_per_1000=1000, effective_from=dt.date(2026, 3, 10))
        svc.api_update(api=api, tier=Api.Tier.VALUE_ADDED, today=dt.date(2026, 3, 9))
        svc.api_update(api=api, tier=Api.Tier.FREE, today=dt.date(2026, 3, 19))
        record_usage([(app, api, IN, sh(2026, 3, d), 1000) for d in (9, 10, 19, 20)])
        settle()
        assert list(BillLine.objects.values_list("calls", "amount_fen")) == [(2000, 2000)]

    def test_fee_4_2_a_paid_day_without_price_is_still_refused(self, app):
        # the refusal stays for days that were paid: a basic API whose price starts later
        api = ApiFactory(tier=Api.Tier.FREE)
        svc.api_update(api=api, tier=Api.Tier.BASIC, today=MARCH_14)
        svc.api_price_set(api=api, price_fen_per_1000=200, effective_from=dt.date(2026, 3, 16))
        record_usage([(app, api, IN, sh(2026, 3, 14), 10), (app, api, IN, sh(2026, 3, 15), 10)])
        run = settle()
        assert run.status == SettlementRun.Status.FAILED
        assert "FEE-4.2" in run.last_error and "2026-03-15" in run.last_error
        assert "2026-03-14" not in run.last_error
        assert not Bill.objects.exists()


@pytest.mark.django_db
class TestTierChange:
    def test_fee_2_1_change_writes_history_from_tomorrow_and_is_audited(self):
        # given a basic API created by staff
        ops = UserFactory(is_staff=True)
        api = svc.api_create(code="order.tiered", tier=Api.Tier.BASIC, actor=ops)
        assert list(api.tier_changes.values_list("effective_from", "tier", "actor")) == [
            (TIER_HISTORY_START, "basic", ops.pk)
        ]
        # when staff make it value-added today
        svc.api_update(api=api, tier=Api.Tier.VALUE_ADDED, actor=ops)
        # then the history has the change from tomorrow, the current tier is unchanged today,
        # and the audit entry names the effective day
        tomorrow = clock.today() + dt.timedelta(days=1)
        api.refresh_from_db()
        assert api.tier == "basic"
        assert history(api) == [(TIER_HISTORY_START, "basic"), (tomorrow, "value_added")]
        assert ApiTierChange.objects.get(api=api, effective_from=tomorrow).actor == ops
        entry = AuditEntry.objects.filter(action="billing.api_update", actor=ops).get()
        assert entry.details == {"tier": ["basic", "value_added"], "from": tomorrow.isoformat()}

    def test_fee_2_1_a_second_change_on_the_same_day_replaces_that_days_row(self):
        api = ApiFactory(tier=Api.Tier.BASIC)
        svc.api_update(api=api, tier=Api.Tier.VALUE_ADDED, today=MARCH_14)
        svc.api_update(api=api, tier=Api.Tier.FREE, today=MARCH_14)
        assert history(api) == [(TIER_HISTORY_START, "basic"), (MARCH_15, "free")]
        assert Api.objects.get(pk=api.pk).tier == "basic"  # until the 15th's job applies it

    def test_fee_2_1_title_only_or_same_tier_writes_no_history(self):
        api = ApiFactory(tier=Api.Tier.BASIC)
        svc.api_update(api=api, title="新标题", today=MARCH_14)
        svc.api_update(api=api, tier=Api.Tier.BASIC, today=MARCH_14)
        assert history(api) == [(TIER_HISTORY_START, "basic")]

    @pytest.mark.parametrize("how", ["run", "bill"])
    def test_fee_4_2_a_change_in_a_settled_month_is_refused(self, how, org):
        # given March 2026 settled (a run, or only a bill)
        if how == "run":
            SettlementRun.objects.create(year=2026, month=3, status=SettlementRun.Status.DONE)
        else:
            Bill.objects.create(organization=org, year=2026, month=3)
        api = ApiFactory(tier=Api.Tier.BASIC)
        # when a change would take effect on a day of March
        with pytest.raises(DomainError) as exc:
            svc.api_update(api=api, tier=Api.Tier.FREE, today=dt.date(2026, 3, 19))
        # then it is refused, naming the rule and the field, and nothing changed
        assert exc.value.code == "FEE-4.2" and exc.value.field == "tier"
        assert "2026-03" in exc.value.message
        assert Api.objects.get(pk=api.pk).tier == "basic"
        assert history(api) == [(TIER_HISTORY_START, "basic")]
        # while a change from April goes through
        svc.api_update(api=api, tier=Api.Tier.FREE, today=dt.date(2026, 3, 31))
        assert history(api) == [(TIER_HISTORY_START, "basic"), (dt.date(2026, 4, 1), "free")]

    def test_fee_2_1_unknown_tier_is_refused(self):
        api = ApiFactory(tier=Api.Tier.BASIC)
        with pytest.raises(DomainError) as exc:
            svc.api_update(api=api, tier="gold", today=MARCH_14)
        assert (exc.value.code, exc.value.field) == ("FEE-2.1", "tier")
        assert history(api) == [(TIER_HISTORY_START, "basic")]

    def test_fee_2_1_gate_sees_the_change_on_the_next_call_after_the_job(
        self, app, django_capture_on_commit_callbacks
    ):
        api = ApiFactory(tier=Api.Tier.BASIC)
        assert gate_check(app_key=app.app_key, api=api.code, location=OUT).allow  # cached
        with django_capture_on_commit_callbacks(execute=True):
            svc.api_update(api=api, tier=Api.Tier.VALUE_ADDED)
        assert gate_check(app_key=app.app_key, api=api.code, location=OUT).allow  # still today
        tomorrow = clock.today() + dt.timedelta(days=1)
        with django_capture_on_commit_callbacks(execute=True):
            svc.api_tiers_apply_due(today=tomorrow)
        decision = gate_check(
            app_key=app.app_key,
            api=api.code,
            location=OUT,
            now=clock.start_of_day(tomorrow) + dt.timedelta(hours=9),
        )
        assert (decision.allow, decision.code) == (False, OUT_OF_CLOUD)


@pytest.mark.django_db
class TestConstraints:
    def test_one_tier_row_per_api_per_day(self):
        api = ApiFactory()
        with pytest.raises(IntegrityError), transaction.atomic():
            ApiTierChange.objects.create(api=api, tier="free", effective_from=TIER_HISTORY_START)

    def test_tier_values_are_checked(self):
        api = ApiFactory()
        with pytest.raises(IntegrityError), transaction.atomic():
            ApiTierChange.objects.create(api=api, tier="gold", effective_from=MARCH_15)

    # FEE-2.1: every API has a tier history row in force from TIER_HISTORY_START. The triggers
    # are deferred to commit; ``check_constraints`` runs them here as a commit would.

    def test_fee_2_1_an_api_without_a_first_tier_row_is_refused(self):
        with pytest.raises(IntegrityError, match=NO_FIRST_ROW), transaction.atomic():
            api = Api.objects.create(code="raw.nohistory", tier=Api.Tier.BASIC)
            connection.check_constraints()
        # a first row that starts later does not cover the days before it
        with pytest.raises(IntegrityError, match=NO_FIRST_ROW), transaction.atomic():
            api = Api.objects.create(code="raw.late", tier=Api.Tier.BASIC)
            ApiTierChange.objects.create(api=api, tier=Api.Tier.BASIC, effective_from=MARCH_15)
            connection.check_constraints()
        assert not Api.objects.filter(code__startswith="raw.").exists()

    def test_fee_2_1_deleting_or_moving_an_apis_first_tier_row_is_refused(self):
        api = svc.api_create(code="order.list", tier=Api.Tier.BASIC)
        svc.api_update(api=api, tier=Api.Tier.FREE, today=MARCH_14)
        with pytest.raises(IntegrityError, match=NO_FIRST_ROW), transaction.atomic():
            ApiTierChange.objects.filter(api=api).delete()
            connection.check_constraints()
        with pytest.raises(IntegrityError, match=NO_FIRST_ROW), transaction.atomic():
            ApiTierChange.objects.filter(api=api, effective_from=TIER_HISTORY_START).delete()
            connection.check_constraints()
        with pytest.raises(IntegrityError, match=NO_FIRST_ROW), transaction.atomic():
            ApiTierChange.objects.filter(api=api, effective_from=TIER_HISTORY_START).update(
                effective_from=dt.date(2026, 1, 1)
            )
            connection.check_constraints()
        assert history(api) == [(TIER_HISTORY_START, "basic"), (MARCH_15, "free")]

    def test_fee_2_1_later_rows_and_an_api_with_its_history_may_go(self):
        # a scheduled change is cancelled (its row deleted); the first row stays
        api = svc.api_create(code="order.list", tier=Api.Tier.BASIC)
        svc.api_update(api=api, tier=Api.Tier.FREE, today=MARCH_14)
        svc.api_update(api=api, tier=Api.Tier.BASIC, today=MARCH_14)
        connection.check_constraints()
        assert history(api) == [(TIER_HISTORY_START, "basic")]
        # an API never billed can be deleted with its history (shell): nothing is left to check
        Api.objects.filter(pk=api.pk).delete()
        connection.check_constraints()
        assert not ApiTierChange.objects.filter(api_id=api.pk).exists()

    def test_fee_2_1_the_migration_gives_every_api_lacking_it_a_first_row_of_its_tier(self):
        # given APIs written around the service (the triggers only run at commit)
        import importlib

        from django.apps import apps

        backfill = importlib.import_module("billing.migrations.0018_api_tier_history_backfill_missing")
        bare = Api.objects.create(code="raw.bare", tier=Api.Tier.VALUE_ADDED)
        late = Api.objects.create(code="raw.late", tier=Api.Tier.FREE)
        ApiTierChange.objects.create(api=late, tier=Api.Tier.BASIC, effective_from=MARCH_15)
        fine = svc.api_create(code="order.list", tier=Api.Tier.BASIC)
        svc.api_update(api=fine, tier=Api.Tier.FREE, today=MARCH_14)
        # when the data migration runs
        backfill.backfill(apps, None)
        # then each got a first row of its current tier (what settlement read for those days),
        # the others are untouched, and the database is satisfied
        assert history(bare) == [(TIER_HISTORY_START, "value_added")]
        assert history(late) == [(TIER_HISTORY_START, "free"), (MARCH_15, "basic")]
        assert history(fine) == [(TIER_HISTORY_START, "basic"), (MARCH_15, "free")]
        connection.check_constraints()
        backfill.backfill(apps, None)  # and again: nothing more
        assert ApiTierChange.objects.count() == 5


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_fee_2_1_a_raw_insert_of_an_api_without_tier_history_fails_at_commit():
    # when an API is inserted around the service, with no tier history row
    with pytest.raises(IntegrityError, match=NO_FIRST_ROW), transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "INSERT INTO billing_api (code, title, tier, created_at) VALUES ('raw.x', '', 'basic', now())"
        )
    # then the commit failed and nothing was written
    assert not Api.objects.filter(code="raw.x").exists()
    # and the same API with its first row, in one transaction, commits
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "INSERT INTO billing_api (code, title, tier, created_at) VALUES ('raw.x', '', 'basic', now())"
        )
        cur.execute(
            "INSERT INTO billing_apitierchange (api_id, tier, effective_from, created_at)"
            " SELECT id, tier, %s, now() FROM billing_api WHERE code = 'raw.x'",
            [TIER_HISTORY_START],
        )
    assert svc.api_tier_in_force(api=Api.objects.get(code="raw.x"), day=MARCH_14) == "basic"
    # and deleting that row on its own, committed, fails
    with pytest.raises(IntegrityError, match=NO_FIRST_ROW), transaction.atomic():
        ApiTierChange.objects.filter(api__code="raw.x").delete()
    assert ApiTierChange.objects.filter(api__code="raw.x").count() == 1
    # and the factory and the service write both in one transaction outside a test transaction
    assert history(ApiFactory(tier=Api.Tier.FREE)) == [(TIER_HISTORY_START, "free")]
    assert history(svc.api_create(code="order.y", tier=Api.Tier.BASIC)) == [(TIER_HISTORY_START, "basic")]


@pytest.mark.django_db
class TestAdmin:
    @pytest.fixture
    def ops(self, client):
        from django.contrib.auth.models import Group, Permission

        user = UserFactory(is_staff=True)
        group, _ = Group.objects.get_or_create(name="billing-ops")
        group.permissions.add(*Permission.objects.filter(content_type__app_label="billing"))
        user.groups.add(group)
        client.force_login(user)
        return user

    def post(self, client, api, tier):
        return client.post(
            reverse("admin:billing_api_change", args=[api.pk]),
            {
                "title": api.title,
                "tier": tier,
                "prices-TOTAL_FORMS": "0",
                "prices-INITIAL_FORMS": "0",
                "tier_changes-TOTAL_FORMS": str(api.tier_changes.count()),
                "tier_changes-INITIAL_FORMS": str(api.tier_changes.count()),
                **{
                    f"tier_changes-{i}-id": pk
                    for i, pk in enumerate(api.tier_changes.values_list("pk", flat=True))
                },
                **{f"tier_changes-{i}-api": api.pk for i in range(api.tier_changes.count())},
            },
        )

    def test_fee_2_1_tier_edit_goes_through_the_service_and_history_is_shown(self, client, ops):
        api = ApiFactory(tier=Api.Tier.BASIC, code="admin.tiered")
        resp = self.post(client, api, "free")
        assert resp.status_code == 302, resp.content.decode()[:2000]
        tomorrow = clock.today() + dt.timedelta(days=1)
        assert history(api) == [(TIER_HISTORY_START, "basic"), (tomorrow, "free")]
        assert ApiTierChange.objects.get(api=api, effective_from=tomorrow).actor == ops
        assert Api.objects.get(pk=api.pk).tier == "basic"  # the gate's tier changes at midnight
        assert AuditEntry.objects.filter(action="billing.api_update", actor=ops).exists()
        page = client.get(reverse("admin:billing_api_change", args=[api.pk])).content.decode()
        assert "tier_changes" in page  # the read-only history inline

    def test_fee_2_1_the_form_shows_the_scheduled_tier_and_saving_keeps_it(self, client, ops):
        # given a basic API with a change to free pending from tomorrow
        api = ApiFactory(tier=Api.Tier.BASIC, code="admin.pending")
        svc.api_update(api=api, tier=Api.Tier.FREE)
        tomorrow = clock.today() + dt.timedelta(days=1)
        # when staff open the form, then it shows the tier from tomorrow and says so
        resp = client.get(reverse("admin:billing_api_change", args=[api.pk]))
        assert resp.context["adminform"].form.initial["tier"] == "free"
        assert "类型变更自明天" in resp.content.decode()
        # when they save it unchanged, then the pending change stays and Api.tier is untouched
        assert self.post(client, api, "free").status_code == 302
        assert history(api) == [(TIER_HISTORY_START, "basic"), (tomorrow, "free")]
        assert Api.objects.get(pk=api.pk).tier == "basic"
        # when they choose the current tier, then the pending change is cancelled
        assert self.post(client, api, "basic").status_code == 302
        assert history(api) == [(TIER_HISTORY_START, "basic")]

    def test_fee_4_2_tier_edit_in_a_settled_month_is_a_form_error(self, client, ops):
        tomorrow = clock.today() + dt.timedelta(days=1)  # the day the change would take effect
        SettlementRun.objects.create(
            year=tomorrow.year, month=tomorrow.month, status=SettlementRun.Status.DONE
        )
        api = ApiFactory(tier=Api.Tier.BASIC)
        resp = self.post(client, api, "free")
        assert resp.status_code == 200
        assert "FEE-4.2" in resp.content.decode()
        assert Api.objects.get(pk=api.pk).tier == "basic"
        assert history(api) == [(TIER_HISTORY_START, "basic")]

    def test_fee_4_2_a_refusal_after_the_forms_check_is_an_error_message_not_a_500(
        self, client, ops, monkeypatch
    ):
        """A month planned between the form's check and the save: the service refuses."""
        api = ApiFactory(tier=Api.Tier.BASIC)

        def refuse(**kwargs):
            raise DomainError("FEE-4.2", "settled meanwhile")

        monkeypatch.setattr(svc, "api_update", refuse)
        resp = self.post(client, api, "free")
        assert resp.status_code == 302
        page = client.get(resp.url).content.decode()
        assert "FEE-4.2: settled meanwhile" in page
        assert Api.objects.get(pk=api.pk).tier == "basic"


@pytest.mark.django_db  # the other session only holds an advisory lock: no data to commit
def test_fee_4_2_a_tier_change_waits_for_a_month_being_planned():
    """Planning reads tiers under the shared price lock; a tier change takes it exclusively."""
    api = paid_api(price_fen_per_1000=1000)
    with while_a_month_is_planned(), pytest.raises(OperationalError, match="lock timeout"):
        svc.api_update(api=api, tier=Api.Tier.FREE, today=MARCH_14)
    assert Api.objects.get(pk=api.pk).tier == "basic"
    svc.api_update(api=api, tier=Api.Tier.FREE, today=MARCH_14)
    assert history(api) == [(TIER_HISTORY_START, "basic"), (MARCH_15, "free")]


@pytest.mark.django_db
class TestScheduledTierChange:
    """A change made on the 14th is billed and gated from the 15th; the midnight job applies it."""

    def test_fee_2_1_a_change_on_the_14th_leaves_the_14th_under_the_old_tier(
        self, app, django_capture_on_commit_callbacks
    ):
        # given a basic API at 100 fen per 1,000 calls, cached by the gate
        api = paid_api(price_fen_per_1000=100)
        evening = sh(2026, 3, 14, 18)
        assert gate_check(app_key=app.app_key, api=api.code, location=OUT, now=evening).allow
        # when staff make it free at 18:00 on the 14th, after calls that morning and that evening
        with django_capture_on_commit_callbacks(execute=True):
            svc.api_update(api=api, tier=Api.Tier.FREE, today=MARCH_14)
        record_usage(
            [
                (app, api, IN, sh(2026, 3, 14, 9), 1000),
                (app, api, IN, sh(2026, 3, 14, 23), 2000),
                (app, api, IN, sh(2026, 3, 15), 50_000),
            ]
        )
        # then Api.tier and the gate are unchanged that day
        assert Api.objects.get(pk=api.pk).tier == "basic"
        assert history(api) == [(TIER_HISTORY_START, "basic"), (MARCH_15, "free")]
        assert gate_check(app_key=app.app_key, api=api.code, location=OUT, now=evening).tier == "basic"
        # and the whole 14th is billed under the old tier, the 15th under the new one
        settle()
        line = BillLine.objects.get()
        assert (line.calls, line.amount_fen) == (3000, 300)

    def test_fee_2_1_the_job_on_the_15th_flips_the_tier_once(self, app, django_capture_on_commit_callbacks):
        # given a basic API made value-added on the 14th (from the 15th), cached by the gate
        api = ApiFactory(tier=Api.Tier.BASIC)
        other = ApiFactory(tier=Api.Tier.FREE)
        svc.api_update(api=api, tier=Api.Tier.VALUE_ADDED, today=MARCH_14)
        assert gate_check(app_key=app.app_key, api=api.code, location=OUT, now=sh(2026, 3, 14, 18)).allow
        # when the job runs on the 14th: nothing is due yet
        assert svc.api_tiers_apply_due(today=MARCH_14) == []
        assert Api.objects.get(pk=api.pk).tier == "basic"
        # when the job runs on the 15th
        with django_capture_on_commit_callbacks(execute=True):
            assert svc.api_tiers_apply_due(today=MARCH_15) == [api.code]
        # then Api.tier is the tier in force, the gate sees it on the next call, and it is audited
        assert Api.objects.get(pk=api.pk).tier == "value_added"
        assert Api.objects.get(pk=other.pk).tier == "free"
        decision = gate_check(app_key=app.app_key, api=api.code, location=OUT, now=sh(2026, 3, 15, 9))
        assert (decision.allow, decision.code) == (False, OUT_OF_CLOUD)
        entry = AuditEntry.objects.get(action="billing.api_tier_apply")
        assert entry.actor is None and entry.object_id == str(api.pk)
        assert entry.details == {"tier": ["basic", "value_added"], "from": "2026-03-15"}
        # and running it again changes nothing
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            assert svc.api_tiers_apply_due(today=MARCH_15) == []
        assert callbacks == []
        assert Api.objects.get(pk=api.pk).tier == "value_added"
        assert AuditEntry.objects.filter(action="billing.api_tier_apply").count() == 1

    def test_fee_2_1_the_gate_applies_a_scheduled_change_at_midnight_even_before_the_job(
        self, app, django_capture_on_commit_callbacks
    ):
        # given a basic API cached by the gate, made value-added today (from tomorrow)
        api = ApiFactory(tier=Api.Tier.BASIC)
        today = clock.today()
        midnight = clock.start_of_day(today + dt.timedelta(days=1))
        assert gate_check(app_key=app.app_key, api=api.code, location=OUT).allow
        with django_capture_on_commit_callbacks(execute=True):
            svc.api_update(api=api, tier=Api.Tier.VALUE_ADDED, today=today)
        # then the gate keeps the old tier until midnight
        before = gate_check(
            app_key=app.app_key, api=api.code, location=OUT, now=midnight - dt.timedelta(seconds=1)
        )
        assert (before.allow, before.tier) == (True, "basic")
        # and applies the new one from midnight, while the midnight job has not run yet
        after = gate_check(app_key=app.app_key, api=api.code, location=OUT, now=midnight)
        assert (after.allow, after.code, after.tier) == (False, OUT_OF_CLOUD, "value_added")
        assert Api.objects.get(pk=api.pk).tier == "basic"
        # and the job, when it runs, changes nothing the gate sees
        with django_capture_on_commit_callbacks(execute=True):
            svc.api_tiers_apply_due(today=today + dt.timedelta(days=1))
        later = gate_check(
            app_key=app.app_key, api=api.code, location=OUT, now=midnight + dt.timedelta(hours=1)
        )
        assert (later.allow, later.tier) == (False, "value_added")

    def test_fee_2_1_the_job_finds_due_apis_in_one_query(self, django_assert_num_queries):
        for _ in range(3):
            ApiFactory(tier=Api.Tier.BASIC)
        with django_assert_num_queries(4):  # savepoint, advisory lock, the one query, release
            svc.api_tiers_apply_due(today=MARCH_15)

    def test_fee_2_1_re_requesting_the_current_tier_cancels_a_pending_change(self):
        # given a basic API with a change to free pending from the 15th
        api = ApiFactory(tier=Api.Tier.BASIC)
        svc.api_update(api=api, tier=Api.Tier.FREE, today=MARCH_14)
        assert history(api) == [(TIER_HISTORY_START, "basic"), (MARCH_15, "free")]
        # when basic is asked for again the same day
        svc.api_update(api=api, tier=Api.Tier.BASIC, today=MARCH_14)
        # then nothing is pending: basic stays in force on the 15th and the job has nothing to do
        assert history(api) == [(TIER_HISTORY_START, "basic")]
        assert svc.api_tiers_apply_due(today=MARCH_15) == []
        assert Api.objects.get(pk=api.pk).tier == "basic"

    def test_fee_4_2_the_settled_check_applies_to_the_effective_day(self):
        # March settled: a change made on 31 March takes effect on 1 April and goes through
        SettlementRun.objects.create(year=2026, month=3, status=SettlementRun.Status.DONE)
        api = ApiFactory(tier=Api.Tier.BASIC)
        svc.api_update(api=api, tier=Api.Tier.FREE, today=dt.date(2026, 3, 31))
        assert history(api) == [(TIER_HISTORY_START, "basic"), (dt.date(2026, 4, 1), "free")]
        # a change made on 30 March would take effect on the 31st: refused
        with pytest.raises(DomainError) as exc:
            svc.api_update(api=api, tier=Api.Tier.VALUE_ADDED, today=dt.date(2026, 3, 30))
        assert exc.value.code == "FEE-4.2" and "2026-03-31" in exc.value.message


@pytest.mark.django_db
def test_fee_2_1_beat_applies_due_tiers_daily_at_midnight_shanghai():
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from billing.tasks_metering import api_tiers_apply_due_task
    from portal.celery import app as celery_app

    entry = celery_app.conf.beat_schedule["billing-api-tiers-apply-due"]
    assert entry["task"] == api_tiers_apply_due_task.name == "billing.api_tiers_apply_due"
    for name, fields in celery_app.conf.beat_schedule.items():
        DatabaseScheduler.Entry.from_entry(name, app=celery_app, **fields)
    task = PeriodicTask.objects.get(name="billing-api-tiers-apply-due")
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "0",
        "0",
        "*",
        "*",
        "*",
    )
    assert str(cron.timezone) == "Asia/Shanghai"


@pytest.mark.django_db
def test_fee_2_1_the_task_calls_the_service():
    from billing.tasks_metering import api_tiers_apply_due_task

    api = ApiFactory(tier=Api.Tier.BASIC)
    svc.api_update(api=api, tier=Api.Tier.FREE, today=MARCH_14)
    assert api_tiers_apply_due_task("2026-03-15") == [api.code]
    assert Api.objects.get(pk=api.pk).tier == "free"
