"""The only place in portal that takes row locks.

Outbox emails (``OutboundEmail``) are locked one row at a time, never together with another
row, so they take part in no lock order. A sender locks the row it is about to send and holds
the lock until the outcome is committed; SKIP LOCKED leaves a row another sender holds to
that sender: the after-commit send and the sweeper, or two sweepers, never send one row twice.
Once the holder commits, the row is sent, failed or not due yet, and out of every filter here.
"""

import datetime as dt

from portal.models import OutboundEmail


def lock_outbound_email_first_attempt(email_id: int) -> OutboundEmail | None:
    """The row for the after-commit send: pending and never tried. None when another sender
    holds it, or it has been tried (by the sweeper, after the grace) or sent already."""
    return (
        OutboundEmail.objects.select_for_update(skip_locked=True)
        .filter(pk=email_id, state=OutboundEmail.State.PENDING, attempts=0)
        .first()
    )


def lock_outbound_email_due(*, now: dt.datetime) -> OutboundEmail | None:
    """The pending row due longest (``next_attempt_at`` at or before ``now``) that no other
    sender holds, or None."""
    return (
        OutboundEmail.objects.select_for_update(skip_locked=True)
        .filter(state=OutboundEmail.State.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .first()
    )


def lock_outbound_email(email_id: int) -> OutboundEmail:
    """Any row, waiting for a sender that holds it (staff resending a failed email)."""
    return OutboundEmail.objects.select_for_update().get(pk=email_id)
