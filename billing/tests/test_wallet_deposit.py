"""FEE-6.3 deposits, the daily transfer job, closure; verify_ledger; the wallet tasks."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from billing.errors import BillingError
from billing.models import DepositAccount, DepositEntry, LedgerEntry, TopUpOrder
from billing.services.deposit import (
    closure_approve,
    closure_request_create,
    deposit_pay_in,
    deposit_transfer_all_due,
    deposit_transfer_arrears,
    old_arrears_fen,
)
from billing.services.settlement import settlement_run_month
from billing.services.topup import top_up_create
from billing.services.wallet import wallet_charge_for_month
from billing.tasks_wallet import deposit_transfer_arrears_task, expire_top_ups_task
from billing.tests.factories_metering import AppFactory, paid_api, record_usage, sh, top_up
from billing.tests.factories_wallet import ledger_sum
from portal import clock
from portal.models import AuditEntry
from portal.tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db
LATER = clock.today() + dt.timedelta(days=40)  # every charge booked today is "older than a month"


def test_fee_6_3_daily_job_covers_old_arrears_up_to_the_deposit(org):
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=5_000)
    deposit_pay_in(organization_id=org.id, amount_fen=2_000, actor=None)
    other = OrganizationFactory()
    wallet_charge_for_month(organization_id=other.id, year=2024, month=1, amount_fen=100)  # no deposit
    assert deposit_transfer_all_due(today=LATER).transferred == [org.id]
    assert ledger_sum(org.id) == -3_000
    assert DepositAccount.objects.get(organization=org).balance_fen == 0
    audit = AuditEntry.objects.get(action="billing.deposit_transfer_arrears")
    assert audit.actor is None and audit.details["by"] == "beat"
    # Runs twice the same day, and again the next day: nothing more to move.
    assert deposit_transfer_all_due(today=LATER).transferred == []
    assert deposit_transfer_all_due(today=LATER + dt.timedelta(days=1)).transferred == []
    assert DepositEntry.objects.filter(kind="arrears_transfer").count() == 1


def test_fee_6_3_recent_arrears_are_not_taken_from_the_deposit(org):
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=5_000)
    deposit_pay_in(organization_id=org.id, amount_fen=10_000, actor=None)
    assert deposit_transfer_arrears(organization_id=org.id, today=clock.today()) is None
    assert ledger_sum(org.id) == -5_000


def test_fee_6_3_old_arrears_exclude_charges_of_the_last_month(org):
    from billing.models import Wallet

    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=5_000)
    wallet = Wallet.objects.get(organization=org)
    assert old_arrears_fen(wallet=wallet, today=clock.today()) == 0
    assert old_arrears_fen(wallet=wallet, today=LATER) == 5_000


def test_fee_6_3_deposit_cannot_go_negative_and_entries_are_append_only(org):
    entry = deposit_pay_in(organization_id=org.id, amount_fen=100, actor=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        DepositAccount.objects.filter(organization=org).update(balance_fen=-1)
    with pytest.raises(Exception, match="Cannot update or delete"), transaction.atomic():
        DepositEntry.objects.filter(pk=entry.pk).delete()


def test_fee_6_3_a_deposit_transfer_is_booked_once_in_the_ledger(org):
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=5_000)
    deposit_pay_in(organization_id=org.id, amount_fen=2_000, actor=None)
    assert deposit_transfer_arrears(organization_id=org.id, today=LATER) is not None
    booked = LedgerEntry.objects.get(kind="deposit_transfer")
    # The database refuses a second ledger entry for the same deposit entry (partial unique
    # index: entries without a deposit entry, i.e. top-ups and charges, are not in it).
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            wallet_id=booked.wallet_id,
            kind="deposit_transfer",
            amount_fen=booked.amount_fen,
            balance_after_fen=booked.balance_after_fen + booked.amount_fen,
            deposit_entry_id=booked.deposit_entry_id,
        )
    assert ledger_sum(org.id) == -3_000


def test_fee_6_3_closure_refused_in_arrears_names_the_rule(org, owner):
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=1)
    with pytest.raises(BillingError) as exc:
        closure_request_create(organization_id=org.id, actor=owner.user)
    assert exc.value.code == "FEE-6.3" and "FEE-6.3" in exc.value.message


def test_fee_6_3_closure_waits_until_the_usage_it_owes_is_settled():
    app = AppFactory()
    org = app.organization
    owner = MembershipFactory(organization=org, role="main")
    staff = UserFactory(is_staff=True)
    deposit_pay_in(organization_id=org.id, amount_fen=50_000, actor=staff)
    record_usage([(app, paid_api(price_fen_per_1000=1000), "in_cloud", sh(2026, 3, 30, 10), 2000)])
    closure = closure_request_create(organization_id=org.id, actor=owner.user)  # balance 0: not in arrears
    with pytest.raises(BillingError) as exc:
        closure_approve(closure_id=closure.pk, actor=staff)
    assert exc.value.code == "FEE-6.3" and "2026-03" in exc.value.message
    assert DepositAccount.objects.get(organization=org).balance_fen == 50_000  # nothing returned
    settlement_run_month(year=2026, month=3)  # charged ¥20.00: now in arrears
    assert ledger_sum(org.id) == -2_000
    with pytest.raises(BillingError, match=r"FEE-6\.3"):
        closure_approve(closure_id=closure.pk, actor=staff)
    top_up(org, 2_000)
    assert closure_approve(closure_id=closure.pk, actor=staff).state == "approved"
    assert DepositAccount.objects.get(organization=org).balance_fen == 0


def test_closure_api_refused_in_arrears_and_second_open_request_conflicts(client, owner, teammate, outsider):
    url = "/api/v1/billing/closure-requests"
    client.force_login(owner.user)
    wallet_charge_for_month(organization_id=owner.organization_id, year=2024, month=1, amount_fen=1)
    resp = client.post(url, {}, content_type="application/json")
    assert resp.status_code == 409 and resp.json()["code"] == "FEE-6.3"
    from billing.payments.sandbox import SandboxProvider, event_body

    order = top_up_create(organization_id=owner.organization_id, amount_fen=100)
    SandboxProvider().deliver(body=event_body(order=order, status="paid"), host="testserver", now=clock.now())
    assert client.post(url, {"reason": "x"}, content_type="application/json").status_code == 201
    assert client.post(url, {}, content_type="application/json").status_code == 409
    client.force_login(teammate.user)
    assert client.post(url, {}, content_type="application/json").status_code == 403
    assert client.get(url).json()["count"] == 1
    client.force_login(outsider.user)
    assert client.get(url).json()["count"] == 0


def test_fee_6_3_deposit_api_lists_every_entry_by_pages(
    client, owner, teammate, outsider, django_assert_max_num_queries
):
    # given 60 entries on the organization's deposit (one more than a page) and one elsewhere
    staff = UserFactory(is_staff=True)
    for i in range(60):
        deposit_pay_in(organization_id=owner.organization_id, amount_fen=100 + i, actor=staff)
    deposit_pay_in(organization_id=outsider.organization_id, amount_fen=7, actor=staff)
    # when a member reads the deposit API page by page
    client.force_login(teammate.user)
    with django_assert_max_num_queries(12):
        first = client.get("/api/v1/billing/deposit").json()
    assert first["count"] == 60 and len(first["entries"]) == 50 and first["previous"] is None
    assert first["balance_fen"] == sum(range(100, 160))
    second = client.get(first["next"]).json()
    # then the pages hold every entry once, newest first, and the other tenant's none
    assert second["next"] is None and second["previous"] is not None
    amounts = [e["amount_fen"] for e in first["entries"] + second["entries"]]
    assert amounts == list(range(159, 99, -1))
    small = client.get("/api/v1/billing/deposit?page_size=10&page=6").json()
    assert [e["amount_fen"] for e in small["entries"]] == list(range(109, 99, -1))


def test_verify_ledger_passes_and_fails_on_disagreement(org):
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=10)
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    assert "OK: 1 wallets" in out.getvalue()
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE billing_wallet SET balance_fen = balance_fen + 1 WHERE organization_id = %s", [org.id]
        )
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 wallets disagree"):
        call_command("verify_ledger", stderr=err)
    assert "balance_fen=-9 but ledger sum=-10" in err.getvalue()


def test_tasks_call_their_services(org):
    old = top_up_create(organization_id=org.id, amount_fen=100, now=clock.now() - dt.timedelta(hours=1))
    assert expire_top_ups_task() == 1
    old.refresh_from_db()
    assert old.state == TopUpOrder.State.EXPIRED
    assert deposit_transfer_arrears_task() == {
        "transferred": 0,
        "failed": 0,
        "failed_organization_ids": [],
    }


def test_beat_entries_are_declared():
    from portal.celery import collect_beat_schedule

    schedule = collect_beat_schedule()
    assert schedule["billing-expire-top-ups"]["task"] == "billing.expire_top_ups"
    assert schedule["billing-deposit-transfer-arrears"]["task"] == "billing.deposit_transfer_arrears"


def test_fee_4_1_ledger_has_exactly_three_kinds():
    assert set(LedgerEntry.Kind.values) == {"top_up_credit", "settlement_charge", "deposit_transfer"}


def test_fee_6_3_one_organization_failing_does_not_stop_the_daily_job(org, monkeypatch, caplog):
    # given three organizations with old arrears and a deposit, the middle one's transfer
    # failing inside the database after its deposit entry was written
    orgs = [org, OrganizationFactory(), OrganizationFactory()]
    for o in orgs:
        wallet_charge_for_month(organization_id=o.id, year=2024, month=1, amount_fen=1_000)
        deposit_pay_in(organization_id=o.id, amount_fen=5_000, actor=None)
    broken = orgs[1]
    import billing.services.deposit as deposit_module

    real_credit = deposit_module.wallet_credit_deposit_transfer

    def credit(*, wallet, deposit_entry):
        if wallet.organization_id == broken.id:
            with connection.cursor() as cur:
                cur.execute("SELECT 1 / 0")  # aborts the transaction, as a real DB error would
        return real_credit(wallet=wallet, deposit_entry=deposit_entry)

    monkeypatch.setattr(deposit_module, "wallet_credit_deposit_transfer", credit)

    # when the daily job runs
    with caplog.at_level("ERROR", logger="billing.services.deposit"):
        result = deposit_transfer_all_due(today=LATER)

    # then the others are covered, the broken one is rolled back whole and reported
    assert result.transferred == [orgs[0].id, orgs[2].id] and result.failed == [broken.id]
    assert result.as_dict() == {"transferred": 2, "failed": 1, "failed_organization_ids": [broken.id]}
    for o in (orgs[0], orgs[2]):
        assert ledger_sum(o.id) == 0
        assert DepositAccount.objects.get(organization=o).balance_fen == 4_000
    assert ledger_sum(broken.id) == -1_000
    assert DepositAccount.objects.get(organization=broken).balance_fen == 5_000
    assert not DepositEntry.objects.filter(account__organization=broken, kind="arrears_transfer").exists()
    assert not AuditEntry.objects.filter(
        action="billing.deposit_transfer_arrears", details__organization_id=broken.id
    ).exists()
    assert f"organization {broken.id}" in caplog.text and "1 failed" in caplog.text

    # and the next run, with the fault gone, covers the one that failed
    monkeypatch.setattr(deposit_module, "wallet_credit_deposit_transfer", real_credit)
    assert deposit_transfer_all_due(today=LATER + dt.timedelta(days=1)).transferred == [broken.id]
    assert ledger_sum(broken.id) == 0


def test_fee_6_3_task_reports_failed_organizations(org, monkeypatch):
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=1_000)
    deposit_pay_in(organization_id=org.id, amount_fen=5_000, actor=None)
    import billing.services.deposit as deposit_module

    def boom(**kwargs):
        raise RuntimeError("payment rail down")

    monkeypatch.setattr(deposit_module, "old_arrears_fen", boom)
    assert deposit_transfer_arrears_task() == {
        "transferred": 0,
        "failed": 1,
        "failed_organization_ids": [org.id],
    }
