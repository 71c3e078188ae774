"""The only place in billing that takes row locks (``select_for_update``).

Lock order, always: top-up order → wallet → deposit account (and several rows of one table in
primary-key order). Every service follows it, so two transactions never wait on each other
in a cycle.
"""

from django.db.models import QuerySet

from billing.models import DepositAccount, Invoice, TopUpOrder, Wallet


def wallet_lock(*, organization_id: int) -> Wallet:
    """Create the organization's wallet if missing and lock its row until the transaction ends.

    Serialises every balance change of one organization: without it two concurrent
    appends would both read the old balance and one update would be lost.
    ``ON CONFLICT DO NOTHING`` makes the on-demand creation race-free: a concurrent creator
    waits on the unique index and then finds the committed row.
    """
    Wallet.objects.bulk_create([Wallet(organization_id=organization_id)], ignore_conflicts=True)
    return Wallet.objects.select_for_update().get(organization_id=organization_id)


def wallets_lock(*, organization_ids: list[int]) -> list[Wallet]:
    """Lock several wallets in primary-key order (deadlock-free)."""
    Wallet.objects.bulk_create(
        [Wallet(organization_id=o) for o in sorted(set(organization_ids))], ignore_conflicts=True
    )
    return list(
        Wallet.objects.select_for_update().filter(organization_id__in=organization_ids).order_by("pk")
    )


def wallets_lock_rows(*, organization_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Set-based ``wallets_lock`` for many organizations (settlement chunks): create the
    missing wallets (``ON CONFLICT DO NOTHING``, in organization order), then lock every row in
    primary-key order with one ``SELECT … ORDER BY id FOR UPDATE``. Two statements whatever the
    number of organizations. Returns {organization id: (wallet id, balance)}.
    """
    from django.db import connection

    orgs = sorted(set(organization_ids))
    if not orgs:
        return {}
    table = Wallet._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (organization_id, balance_fen, created_at, updated_at)"
            " SELECT o, 0, now(), now() FROM unnest(%s::bigint[]) AS o ORDER BY o"
            " ON CONFLICT (organization_id) DO NOTHING",
            [orgs],
        )
        cur.execute(
            f"SELECT id, organization_id, balance_fen FROM {table}"
            " WHERE organization_id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",
            [orgs],
        )
        return {org: (wallet_id, balance) for wallet_id, org, balance in cur.fetchall()}


def top_up_order_lock(*, order_id: int) -> TopUpOrder:
    return TopUpOrder.objects.select_for_update().get(pk=order_id)


def top_up_order_lock_by_trade_no(*, out_trade_no: str, provider: str) -> TopUpOrder | None:
    """Serialises the callbacks of one order (however many deliveries arrive at once)."""
    return TopUpOrder.objects.select_for_update().filter(out_trade_no=out_trade_no, provider=provider).first()


def wallet_increment(*, organization_id: int, amount_fen: int) -> tuple[int, int] | None:
    """``UPDATE … SET balance_fen = balance_fen + x … RETURNING``: takes the wallet's row lock
    (held until commit) and moves the balance in one round trip, so concurrent credits queue
    on the row and none is lost. Returns (wallet id, new balance), None if there is no wallet.
    """
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {Wallet._meta.db_table} SET balance_fen = balance_fen + %s, updated_at = now()"
            " WHERE organization_id = %s RETURNING id, balance_fen",
            [amount_fen, organization_id],
        )
        row = cur.fetchone()
    return (row[0], row[1]) if row else None


def deposit_account_lock(*, organization_id: int) -> DepositAccount:
    DepositAccount.objects.bulk_create(
        [DepositAccount(organization_id=organization_id)], ignore_conflicts=True
    )
    return DepositAccount.objects.select_for_update().get(organization_id=organization_id)


def invoice_lock(*, invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice_id)


def lock_queryset(qs: QuerySet) -> QuerySet:
    """Lock the rows of ``qs`` in primary-key order."""
    return qs.select_for_update().order_by("pk")


def closure_request_lock(*, closure_id: int):
    from billing.models import ClosureRequest

    return ClosureRequest.objects.select_for_update().get(pk=closure_id)


def idempotency_key_lock(*, organization_id: int, scope: str, key: str):
    """Concurrent requests with one Idempotency-Key queue here and replay the first answer."""
    from billing.models import IdempotencyKey

    return IdempotencyKey.objects.select_for_update().get(
        organization_id=organization_id, scope=scope, key=key
    )
