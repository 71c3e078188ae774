"""Billing's domain errors: the ``code`` names the DOMAIN rule (see ../shared/DOMAIN.md)."""

from portal.errors import Conflict, DomainError

# Rule codes used by the wallet side.
FEE_4_1 = "FEE-4.1"  # prepaid: nothing moves money out of a wallet
FEE_4_2 = "FEE-4.2"  # one settlement charge per organization and month
FEE_4_3 = "FEE-4.3"  # invoices only for fees actually paid, never twice
FEE_6_1_ARREARS = "FEE-6.1-ARREARS"
FEE_6_3 = "FEE-6.3"  # no closure while in arrears
TOP_UP_AMOUNT = "FEE-4.1-TOP-UP-AMOUNT"
TAXPAYER_ID = "FEE-4.3-TAXPAYER-ID"
WEBHOOK_SIGNATURE = "PAYMENT-SIGNATURE"
WEBHOOK_STALE = "PAYMENT-STALE"
WEBHOOK_REPLAY = "PAYMENT-REPLAY"
WEBHOOK_MISMATCH = "PAYMENT-MISMATCH"
IDEMPOTENCY_MISMATCH = "IDEMPOTENCY-KEY-REUSED"


class BillingError(DomainError):
    """A billing rule refused the operation (400 unless said otherwise)."""


class BillingConflict(Conflict):
    """The request conflicts with what already happened (409)."""
