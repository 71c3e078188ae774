"""Hypothesis stateful test of one wallet: random top-ups (with webhook retries, and refused
zero, negative or out-of-range amounts), settlement charges, invoice requests and rejections.
Invariants after every step: balance = sum of entries = the model's expectation; invoiced ≤
paid charges (FEE-4.3); no top-up order or credit is ≤ 0 (FEE-4.1)."""

import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from billing.errors import BillingError
from billing.models import TOP_UP_MAX_FEN, TOP_UP_MIN_FEN, Invoice, LedgerEntry, TopUpOrder, Wallet
from billing.payments import sandbox
from billing.selectors.wallet import invoiceable_fen, paid_charges_fen
from billing.services.invoice import invoice_reject, invoice_request
from billing.services.topup import payment_webhook_handle, top_up_create
from billing.services.wallet import wallet_charge_for_month
from billing.tests.factories_wallet import ledger_sum
from portal.tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db
USCC = "91350100M000100Y43"


def deliver(body: bytes):
    ts = str(int(time.time()))
    headers = {"X-Sandbox-Timestamp": ts, "X-Sandbox-Signature": sandbox.sign(timestamp=ts, body=body)}
    return payment_webhook_handle(provider_name="sandbox", headers=headers, body=body)


class WalletMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.org = OrganizationFactory()
        self.expected = 0
        self.credits = 0
        self.charges = 0
        self.months = iter((y, m) for y in range(2024, 2040) for m in range(1, 13))
        self.bodies: list[bytes] = []
        self.orders = []

    @rule(amount=st.integers(min_value=100, max_value=1_000_000))
    def top_up(self, amount):
        order = top_up_create(organization_id=self.org.id, amount_fen=amount)
        body = sandbox.event_body(order=order, status="paid")
        assert deliver(body).credited
        self.bodies.append(body)
        self.orders.append(order)
        self.expected += amount
        self.credits += amount

    @rule(
        amount=st.one_of(st.integers(max_value=TOP_UP_MIN_FEN - 1), st.integers(min_value=TOP_UP_MAX_FEN + 1))
    )
    def refused_top_up(self, amount):
        # FEE-4.1: a zero, negative or out-of-range top-up never becomes an order or a credit.
        orders = TopUpOrder.objects.filter(organization=self.org).count()
        with pytest.raises(BillingError) as exc:
            top_up_create(organization_id=self.org.id, amount_fen=amount)
        assert exc.value.code == "FEE-4.1-TOP-UP-AMOUNT"
        assert TopUpOrder.objects.filter(organization=self.org).count() == orders

    @precondition(lambda self: self.bodies)
    @rule(data=st.data(), same_event=st.booleans())
    def webhook_retry(self, data, same_event):
        i = data.draw(st.integers(min_value=0, max_value=len(self.bodies) - 1))
        body = self.bodies[i] if same_event else sandbox.event_body(order=self.orders[i], status="paid")
        result = deliver(body)
        assert not result.credited
        assert result.outcome == ("replay" if same_event else "already_paid")

    @rule(amount=st.integers(min_value=0, max_value=2_000_000))
    def charge(self, amount):
        year, month = next(self.months)
        wallet_charge_for_month(organization_id=self.org.id, year=year, month=month, amount_fen=amount)
        # A settlement retry returns the same entry and moves nothing.
        wallet_charge_for_month(organization_id=self.org.id, year=year, month=month, amount_fen=amount)
        self.expected -= amount
        self.charges += amount

    @rule(amount=st.integers(min_value=1, max_value=3_000_000))
    def request_invoice(self, amount):
        available = invoiceable_fen(organization_id=self.org.id)
        try:
            invoice_request(
                organization_id=self.org.id,
                amount_fen=amount,
                title="星河",
                taxpayer_id=USCC,
                kind="general",
                email="a@b.cn",
            )
        except BillingError as exc:
            assert exc.code == "FEE-4.3" and amount > available
        else:
            assert amount <= available

    @precondition(lambda self: Invoice.objects.filter(organization=self.org, state="requested").exists())
    @rule()
    def reject_invoice(self):
        invoice = Invoice.objects.filter(organization=self.org, state="requested").first()
        before = invoiceable_fen(organization_id=self.org.id)
        invoice_reject(invoice_id=invoice.pk, actor=None, reason="test")
        assert invoiceable_fen(organization_id=self.org.id) == before + invoice.amount_fen

    @invariant()
    def balance_is_the_sum_of_entries(self):
        if not hasattr(self, "org"):
            return
        wallet = Wallet.objects.filter(organization=self.org).first()
        balance = wallet.balance_fen if wallet else 0
        assert balance == ledger_sum(self.org.id) == self.expected

    @invariant()
    def invoiced_never_exceeds_paid_charges(self):
        if not hasattr(self, "org"):
            return
        invoiced = sum(
            Invoice.objects.filter(organization=self.org)
            .exclude(state="rejected")
            .values_list("amount_fen", flat=True)
        )
        paid = paid_charges_fen(organization_id=self.org.id)
        assert paid == min(self.charges, self.credits)
        assert invoiced <= paid

    @invariant()
    def no_non_positive_top_up(self):
        assert not LedgerEntry.objects.filter(kind="top_up_credit", amount_fen__lte=0).exists()
        assert not TopUpOrder.objects.filter(amount_fen__lte=0).exists()


def test_wallet_state_machine_keeps_the_money_rules():
    run_state_machine_as_test(
        WalletMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
