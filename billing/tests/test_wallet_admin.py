"""Back office: read-only money tables, invoice review queue, deposit and closure actions,
each staff action audited (who, when, what)."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from billing.models import ClosureRequest, DepositAccount, DepositEntry, Invoice, LedgerEntry
from billing.payments.sandbox import SandboxProvider, event_body
from billing.selectors.wallet import invoiceable_fen
from billing.services.deposit import closure_request_create, deposit_pay_in
from billing.services.invoice import invoice_request
from billing.services.topup import top_up_create
from billing.services.wallet import wallet_charge_for_month
from billing.tests.factories_wallet import ledger_sum
from portal import clock
from portal.models import AuditEntry
from portal.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
USCC = "91350100M000100Y43"


@pytest.fixture
def ops(client):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="billing-ops"))
    client.force_login(user)
    return user


def paid(org_id, fen):
    order = top_up_create(organization_id=org_id, amount_fen=fen)
    SandboxProvider().deliver(body=event_body(order=order, status="paid"), host="testserver", now=clock.now())
    return order


def action(client, model, name, pks, **extra):
    return client.post(
        reverse(f"admin:billing_{model}_changelist"), {"action": name, "_selected_action": pks, **extra}
    )


def test_billing_ops_sees_money_tables_read_only(client, ops, org):
    paid(org.id, 1000)
    entry = LedgerEntry.objects.get()
    for model in (
        "wallet",
        "ledgerentry",
        "topuporder",
        "paymentevent",
        "invoice",
        "depositaccount",
        "depositentry",
        "closurerequest",
    ):
        assert client.get(reverse(f"admin:billing_{model}_changelist")).status_code == 200, model
    assert client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    assert client.get(reverse("admin:billing_ledgerentry_delete", args=[entry.pk])).status_code == 403
    resp = client.post(reverse("admin:billing_ledgerentry_change", args=[entry.pk]), {"amount_fen": "-1"})
    assert resp.status_code in (403, 200)
    assert LedgerEntry.objects.get().amount_fen == 1000


def test_money_tables_name_wallets_entries_and_invoices_in_yuan_not_raw_fen(client, ops, org):
    # Given a ¥1,234.56 top-up, a deposit and an invoice request
    paid(org.id, 123_456)
    entry = LedgerEntry.objects.get()
    deposit_pay_in(organization_id=org.id, amount_fen=50_000, actor=ops)
    wallet_charge_for_month(organization_id=org.id, year=2024, month=5, amount_fen=10_000)
    invoice_request(
        organization_id=org.id,
        amount_fen=1_000,
        title="星河",
        taxpayer_id=USCC,
        kind="general",
        email="a@b.cn",
    )
    # When billing-ops read the ledger, a ledger entry, the deposits and the invoices
    pages = [
        client.get(reverse("admin:billing_ledgerentry_changelist")).content.decode(),
        client.get(reverse("admin:billing_ledgerentry_change", args=[entry.pk])).content.decode(),
        client.get(reverse("admin:billing_depositentry_changelist")).content.decode(),
        client.get(reverse("admin:billing_invoice_change", args=[Invoice.objects.get().pk])).content.decode(),
    ]
    # Then money reads as ¥ with two decimals, never "<n> fen" or a raw state code
    text = " ".join(pages)
    assert f"{org.name} (¥1,134.56)" in pages[0]
    assert "充值入账 ¥1,234.56" in pages[1]
    assert "星河 ¥10.00 (待审核)" in pages[3]
    assert " fen" not in text and "(requested)" not in text


def test_non_staff_cannot_open_the_admin(client, owner):
    client.force_login(owner.user)
    assert client.get(reverse("admin:billing_invoice_changelist")).status_code == 302


def test_fee_4_3_review_queue_lists_pending_requests_and_issue_is_audited(client, ops, org):
    invoice = _requested_invoice(org, kind="special_vat")
    html = client.get(reverse("admin:billing_invoice_changelist")).content.decode()
    assert "星河软件" in html
    action(client, "invoice", "issue", [invoice.pk])
    invoice.refresh_from_db()
    assert invoice.state == "issued" and invoice.number.startswith("INV") and invoice.reviewed_by == ops
    assert invoice.pdf.read().startswith(b"%PDF")
    audit = AuditEntry.objects.get(action="billing.invoice_issue")
    assert (
        audit.actor == ops
        and audit.object_id == str(invoice.pk)
        and audit.details["number"] == invoice.number
    )
    # Issuing twice is refused, not duplicated.
    action(client, "invoice", "issue", [invoice.pk])
    assert AuditEntry.objects.filter(action="billing.invoice_issue").count() == 1


def test_fee_4_3_an_invoice_page_in_admin_saves_nothing_over_a_review(client, ops, org):
    # Given a requested invoice whose admin page a reviewer has open
    invoice = _requested_invoice(org, kind="general")
    url = reverse("admin:billing_invoice_change", args=[invoice.pk])
    html = client.get(url).content.decode()
    # Then the page is for reading: no Save, which would write back every field as it was read
    # and so undo a review (issue with number and PDF) committed by a colleague in between
    assert "星河软件" in html and 'name="_save"' not in html
    # And a save sent anyway is refused and writes nothing
    action(client, "invoice", "issue", [invoice.pk])
    resp = client.post(url, {"_save": "1"})
    assert resp.status_code == 403
    invoice.refresh_from_db()
    assert invoice.state == "issued" and invoice.number and invoice.pdf
    # While the review actions stay on the list
    assert "开具所选发票" in client.get(reverse("admin:billing_invoice_changelist")).content.decode()


def test_fee_4_3_reject_asks_for_a_reason_and_frees_the_amount(client, ops, org):
    paid(org.id, 10_000)
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=10_000)
    invoice = invoice_request(
        organization_id=org.id,
        amount_fen=10_000,
        title="星河",
        taxpayer_id=USCC,
        kind="general",
        email="a@b.cn",
    )
    assert invoiceable_fen(organization_id=org.id) == 0
    page = action(client, "invoice", "reject", [invoice.pk])
    assert page.status_code == 200 and "reason" in page.content.decode()
    action(client, "invoice", "reject", [invoice.pk], apply="1", reason="抬头与税号不符")
    invoice.refresh_from_db()
    assert invoice.state == "rejected" and invoice.reject_reason == "抬头与税号不符"
    assert AuditEntry.objects.get(action="billing.invoice_reject").actor == ops
    assert invoiceable_fen(organization_id=org.id) == 10_000


def test_fee_6_3_staff_transfer_from_deposit_is_audited_and_idempotent(client, ops, org):
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=3_000)
    deposit_pay_in(organization_id=org.id, amount_fen=10_000, actor=ops)
    account = org.deposit_account
    # Charged just now: not yet older than one month, nothing moves.
    action(client, "depositaccount", "transfer_arrears", [account.pk])
    assert not DepositEntry.objects.filter(kind="arrears_transfer").exists()
    from billing.services.deposit import deposit_transfer_arrears

    later = clock.today() + dt.timedelta(days=40)
    first = deposit_transfer_arrears(organization_id=org.id, actor=ops, today=later)
    again = deposit_transfer_arrears(organization_id=org.id, actor=ops, today=later)
    assert first.pk == again.pk and first.amount_fen == -3_000
    account.refresh_from_db()
    assert account.balance_fen == 7_000 and ledger_sum(org.id) == 0
    entry = LedgerEntry.objects.get(kind="deposit_transfer")
    assert entry.amount_fen == 3_000 and entry.deposit_entry == first
    audit = AuditEntry.objects.get(action="billing.deposit_transfer_arrears")
    assert audit.actor == ops and audit.details["amount_fen"] == 3_000 and audit.details["by"] == "staff"


def test_fee_6_3_a_second_transfer_click_the_same_day_says_nothing_moved(client, ops, org, monkeypatch):
    # Given arrears older than one month and a deposit to cover them
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=3_000)
    deposit_pay_in(organization_id=org.id, amount_fen=10_000, actor=ops)
    account = org.deposit_account
    later = clock.today() + dt.timedelta(days=40)
    monkeypatch.setattr(clock, "today", lambda now_=None: later)
    # When staff run the transfer action, then run it again the same day
    first = client.get(action(client, "depositaccount", "transfer_arrears", [account.pk]).url)
    second = client.get(action(client, "depositaccount", "transfer_arrears", [account.pk]).url)
    # Then the first says it moved money, and the second that nothing more was moved
    first_messages = [str(m) for m in first.context["messages"]]
    second_messages = [str(m) for m in second.context["messages"]]
    assert first_messages == ["已为 1 个组织抵扣欠费。"]
    assert second_messages == ["已为 0 个组织抵扣欠费。", "1 个组织今日已抵扣过, 未再抵扣。"]
    assert DepositEntry.objects.filter(kind="arrears_transfer").count() == 1
    assert AuditEntry.objects.filter(action="billing.deposit_transfer_arrears").count() == 1


def test_pay_in_action_asks_for_an_amount_and_is_audited(client, ops, org):
    deposit_pay_in(organization_id=org.id, amount_fen=100, actor=ops)
    account = org.deposit_account
    form = action(client, "depositaccount", "pay_in", [account.pk])  # the amount page
    token = form.context["form"].initial["token"]
    submit = {"apply": "1", "amount_yuan": "50.00", "note": "bank slip 7", "token": token}
    action(client, "depositaccount", "pay_in", [account.pk], **submit)
    account.refresh_from_db()
    assert account.balance_fen == 5_100
    assert AuditEntry.objects.filter(action="billing.deposit_pay_in", actor=ops).count() == 2


def test_fee_6_3_submitting_the_pay_in_page_twice_pays_in_once(client, ops, org):
    deposit_pay_in(organization_id=org.id, amount_fen=100, actor=ops)
    account = org.deposit_account
    token = action(client, "depositaccount", "pay_in", [account.pk]).context["form"].initial["token"]
    for _ in range(2):  # a double click / a resubmitted page
        action(client, "depositaccount", "pay_in", [account.pk], apply="1", amount_yuan="50.00", token=token)
    account.refresh_from_db()
    assert account.balance_fen == 5_100
    assert DepositEntry.objects.filter(account=account).count() == 2


def test_fee_6_3_closure_approval_returns_the_deposit_and_refuses_in_arrears(client, ops, org, owner):
    deposit_pay_in(organization_id=org.id, amount_fen=10_000, actor=ops)
    closure = closure_request_create(organization_id=org.id, actor=owner.user)
    wallet_charge_for_month(
        organization_id=org.id, year=2024, month=1, amount_fen=1
    )  # arrears after the request
    action(client, "closurerequest", "approve", [closure.pk])
    closure.refresh_from_db()
    assert closure.state == "pending"
    paid(org.id, 100)
    action(client, "closurerequest", "approve", [closure.pk])
    closure.refresh_from_db()
    assert closure.state == "approved"
    assert DepositEntry.objects.get(kind="returned").amount_fen == -10_000
    assert AuditEntry.objects.get(action="billing.closure_approve").details["deposit_returned_fen"] == 10_000


def test_closure_reject_with_reason(client, ops, org, owner):
    closure = closure_request_create(organization_id=org.id, actor=owner.user)
    action(client, "closurerequest", "reject", [closure.pk], apply="1", reason="资料不全")
    closure.refresh_from_db()
    assert closure.state == ClosureRequest.State.REJECTED and closure.review_note == "资料不全"
    assert AuditEntry.objects.filter(action="billing.closure_reject", actor=ops).exists()


def test_invoice_issued_twice_is_impossible_in_the_database(org):
    from django.db import IntegrityError, transaction

    Invoice.objects.create(
        organization=org,
        amount_fen=1,
        title="a",
        taxpayer_id=USCC,
        kind="general",
        email="a@b.cn",
        state="issued",
        number="N1",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(
            organization=org,
            amount_fen=1,
            title="a",
            taxpayer_id=USCC,
            kind="general",
            email="a@b.cn",
            state="issued",
            number="N1",
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(
            organization=org,
            amount_fen=1,
            title="a",
            taxpayer_id=USCC,
            kind="general",
            email="a@b.cn",
            state="issued",
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(
            organization=org,
            amount_fen=1,
            title="a",
            taxpayer_id=USCC,
            kind="general",
            email="a@b.cn",
            state="rejected",
        )


def test_fee_6_3_staff_add_opens_the_deposit_account_with_the_first_pay_in(client, ops, org):
    # given an organization that never had a deposit account
    assert not DepositAccount.objects.filter(organization=org).exists()
    add_url = reverse("admin:billing_depositaccount_add")
    page = client.get(add_url)
    assert page.status_code == 200
    token = page.context["form"]["token"].value()
    assert token
    form = {"organization": org.pk, "amount_yuan": "1000.00", "note": "bank slip 42", "token": token}

    # when staff submit the add form (twice: a double click or a browser resubmission)
    first = client.post(add_url, form)
    again = client.post(add_url, form)

    # then the account exists with one pay-in, by this staff member, audited once
    account = DepositAccount.objects.get(organization=org)
    assert first.status_code == 302 and first.url == reverse(
        "admin:billing_depositaccount_change", args=[account.pk]
    )
    assert again.status_code == 302
    assert account.balance_fen == 100_000
    entry = DepositEntry.objects.get(account=account)
    assert entry.kind == "paid_in" and entry.amount_fen == 100_000
    assert entry.actor == ops and entry.note == "bank slip 42"
    audit = AuditEntry.objects.get(action="billing.deposit_pay_in")
    assert audit.actor == ops and audit.object_id == str(entry.pk) and audit.at
    assert audit.details == {
        "organization_id": org.pk,
        "amount_fen": 100_000,
        "balance_after_fen": 100_000,
        "note": "bank slip 42",
    }
    # and the account's page opens for staff
    assert client.get(first.url).status_code == 200


def test_fee_4_1_deposit_add_cannot_move_money_out(client, ops, org):
    deposit_pay_in(organization_id=org.id, amount_fen=5_000, actor=ops)
    add_url = reverse("admin:billing_depositaccount_add")
    for bad in ("-50.00", "0", "0.001"):
        resp = client.post(
            add_url, {"organization": org.pk, "amount_yuan": bad, "note": "", "token": f"t{bad}"}
        )
        assert resp.status_code == 200 and resp.context["form"].errors
    # nor can a posted balance overwrite the account (the view never saves a model form)
    client.post(add_url, {"organization": org.pk, "balance_fen": "-1", "token": "x"})
    assert DepositAccount.objects.get(organization=org).balance_fen == 5_000
    assert DepositEntry.objects.count() == 1


def test_deposit_add_needs_the_permission(client, org):
    staff = UserFactory(is_staff=True)  # staff, but not in billing-ops
    client.force_login(staff)
    add_url = reverse("admin:billing_depositaccount_add")
    assert client.get(add_url).status_code == 403
    form = {"organization": org.pk, "amount_yuan": "10", "note": "", "token": "t"}
    assert client.post(add_url, form).status_code == 403
    client.force_login(UserFactory())  # not staff: sent to the admin login
    assert client.post(add_url, form).status_code == 302
    assert not DepositAccount.objects.filter(organization=org).exists()


def _requested_invoice(org, *, kind: str):
    """A ¥50 invoice request against a paid ¥100 charge."""
    paid(org.id, 10_000)
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=10_000)
    return invoice_request(
        organization_id=org.id,
        amount_fen=5_000,
        title="星河软件",
        taxpayer_id=USCC,
        kind=kind,
        email="a@b.cn",
    )


def _issued_invoice(org, staff):
    from billing.services.invoice import invoice_issue

    return invoice_issue(invoice_id=_requested_invoice(org, kind="general").pk, actor=staff)


def test_fee_4_3_staff_open_the_issued_invoice_pdf_from_its_admin_page(client, ops, org):
    invoice = _issued_invoice(org, ops)
    page = client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    pdf_url = reverse("admin:billing_invoice_pdf", args=[invoice.pk])
    html = page.content.decode()
    assert page.status_code == 200 and f'href="{pdf_url}"' in html
    assert invoice.pdf.url not in html  # private storage is not served: that link was a 404
    resp = client.get(pdf_url)
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    assert f"{invoice.number}.pdf" in resp["Content-Disposition"]
    assert b"".join(resp.streaming_content).startswith(b"%PDF")


def test_admin_invoice_pdf_is_for_staff_with_the_permission_only(client, ops, org, owner):
    invoice = _issued_invoice(org, ops)
    pdf_url = reverse("admin:billing_invoice_pdf", args=[invoice.pk])
    client.force_login(owner.user)  # the developer: not staff, sent to the admin login
    resp = client.get(pdf_url)
    assert resp.status_code == 302 and reverse("admin:login") in resp.url
    # ... while their own download keeps working
    assert client.get(reverse("billing:invoice-pdf", args=[invoice.pk])).status_code == 200
    client.force_login(UserFactory(is_staff=True))  # staff without billing permissions
    assert client.get(pdf_url).status_code == 403


def test_admin_invoice_pdf_of_a_pending_invoice_is_404(client, ops, org):
    paid(org.id, 10_000)
    wallet_charge_for_month(organization_id=org.id, year=2024, month=1, amount_fen=10_000)
    invoice = invoice_request(
        organization_id=org.id, amount_fen=1, title="t", taxpayer_id=USCC, kind="general", email="a@b.cn"
    )
    assert client.get(reverse("admin:billing_invoice_pdf", args=[invoice.pk])).status_code == 404
    assert client.get(reverse("admin:billing_invoice_pdf", args=[999_999])).status_code == 404


def test_admin_invoice_pdf_lost_by_storage_is_404_not_500(client, ops, org):
    invoice = _issued_invoice(org, ops)
    invoice.pdf.storage.delete(invoice.pdf.name)
    assert client.get(reverse("admin:billing_invoice_pdf", args=[invoice.pk])).status_code == 404


# --- lists over large tables (portal.admin_scale) ---------------------------------------------------


def _counts(ctx, table):
    return [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"] and f'"{table}"' in q["sql"]]


def test_ledger_list_counts_a_bounded_slice_and_finds_an_entry_by_its_order_number(client, ops, org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.tests.factories import OrganizationFactory

    # Given top-ups of two organizations
    mine = paid(org.id, 1000)
    paid(OrganizationFactory().id, 2000)
    # When billing-ops open the ledger, then no count reads the whole ledger (it is capped)
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(reverse("admin:billing_ledgerentry_changelist"))
    assert resp.context["cl"].result_count == 2
    counts = _counts(ctx, "billing_ledgerentry")
    assert counts and all("LIMIT" in sql for sql in counts), counts
    # And the entry of one top-up is found by the order's number, through the order's unique key
    found = client.get(reverse("admin:billing_ledgerentry_changelist"), {"q": mine.out_trade_no})
    assert [e.top_up_order_id for e in found.context["cl"].result_list] == [mine.pk]
    by_name = client.get(reverse("admin:billing_ledgerentry_changelist"), {"q": org.name[2:]})
    assert [e.top_up_order_id for e in by_name.context["cl"].result_list] == [mine.pk]


def test_payment_event_list_reads_the_orders_in_its_one_query(client, ops, django_assert_max_num_queries):
    from portal.tests.factories import OrganizationFactory

    # Given eight callbacks, each for another organization's order
    orders = [paid(OrganizationFactory().id, 1000 + i) for i in range(8)]
    # When the list renders, then the orders come with the events (it was one query per row)
    with django_assert_max_num_queries(12):
        html = client.get(reverse("admin:billing_paymentevent_changelist")).content.decode()
    assert all(o.out_trade_no in html for o in orders)
    found = client.get(reverse("admin:billing_paymentevent_changelist"), {"q": orders[3].out_trade_no})
    assert [e.order_id for e in found.context["cl"].result_list] == [orders[3].pk]


def test_fee_6_3_deposit_add_page_searches_organizations_instead_of_listing_them(client, ops, org):
    from portal.tests.factories import OrganizationFactory

    others = OrganizationFactory.create_batch(5)
    html = client.get(reverse("admin:billing_depositaccount_add")).content.decode()
    # An organization is chosen by searching (admin autocomplete), never from a <select> holding
    # every organization (a page of a million options)
    assert "admin-autocomplete" in html
    assert not any(f'value="{o.pk}"' in html for o in [org, *others])
