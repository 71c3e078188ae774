"""Top-up credits per second (Billing I): the real webhook credit path vs a bare UPDATE loop.

Usage (own database; created and migrated if missing):
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_b1 CACHE_URL=redis://127.0.0.1:6379/1 \
        .venv/bin/python bench/bench_topups.py --wallets 1000 --clients 8 --ops 2000

What is timed, with ``--clients`` worker processes sharing ``--ops`` operations:
- credit service: ``wallet_credit_paid_event`` for a pending order — one statement (prepared on
  the server once per connection) that locks the order, stores the event (unique id), marks
  the order paid, moves the wallet balance (row lock) and appends the ledger credit; the
  arrears cache key is deleted (Redis) only when the wallet was in arrears (none are here).
- full webhook: ``payment_webhook_handle`` — the same plus JSON parsing and the HMAC check.
  Orders are created before the clock starts. One client per process, as gunicorn's sync
  workers serve: every credit is written alone.
- full webhook, group commit: the same ``--clients`` as threads of ``--processes`` processes, as
  gunicorn's gthread workers serve (``--workers 2 --threads 4``): concurrent callbacks of one
  process are written by one statement (``billing.services.credit_group``); the mean batch is
  printed.
- bare loop: ``UPDATE bench_bare_balance SET balance = balance + x WHERE id = ...`` in
  autocommit on the same server, same driver, same clients, same wallet distribution.
Each on one wallet (every client contends for one row) and across ``--wallets`` wallets. The bare
loop runs in processes before and after the credit runs (their mean), and in threads of
``--processes`` processes; every ratio is to the faster of the two.
"""

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def _setup():
    import django

    django.setup()


def _credit_worker(order_ids, start_evt, done_q):
    _setup()
    from billing.models import TopUpOrder
    from billing.payments import sandbox
    from billing.services.topup import payment_webhook_handle

    orders = list(TopUpOrder.objects.filter(pk__in=order_ids))
    bodies = [sandbox.event_body(order=o, status="paid") for o in orders]
    start_evt.wait()
    t0 = time.perf_counter()
    ok = 0
    for body in bodies:
        ts = str(int(time.time()))
        headers = {"X-Sandbox-Timestamp": ts, "X-Sandbox-Signature": sandbox.sign(timestamp=ts, body=body)}
        ok += payment_webhook_handle(provider_name="sandbox", headers=headers, body=body).credited
    done_q.put((ok, time.perf_counter() - t0))


def _service_worker(order_ids, start_evt, done_q):
    """The credit service itself (what the webhook calls once the signature is verified)."""
    _setup()
    import uuid

    from django.utils import timezone

    from billing.models import TopUpOrder
    from billing.services.wallet import wallet_credit_paid_event

    orders = list(TopUpOrder.objects.filter(pk__in=order_ids).values_list("out_trade_no", "amount_fen"))
    start_evt.wait()
    t0 = time.perf_counter()
    ok = 0
    for out_trade_no, amount_fen in orders:
        _outcome, _org, credited = wallet_credit_paid_event(
            provider="sandbox",
            event_id=f"evt_{uuid.uuid4().hex}",
            out_trade_no=out_trade_no,
            amount_fen=amount_fen,
            currency="CNY",
            provider_trade_no="SBX",
            payload={},
            now=timezone.now(),
        )
        ok += credited
    done_q.put((ok, time.perf_counter() - t0))


def _bare_worker(wallet_ids, start_evt, done_q):
    _setup()
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection  # psycopg 3, autocommit as Django leaves it
    raw.autocommit = True
    start_evt.wait()
    t0 = time.perf_counter()
    with raw.cursor() as cur:
        for wid in wallet_ids:
            cur.execute("UPDATE bench_bare_balance SET balance = balance + %s WHERE id = %s", (100, wid))
    done_q.put((len(wallet_ids), time.perf_counter() - t0))


def _threads_worker(worker, shares, start_evt, done_q):
    """One process whose threads each run ``worker`` on one share (own connection each), as a
    gunicorn gthread worker serves concurrent requests; reports one (ops, seconds) per thread."""
    import queue
    import threading

    from django.db import connection

    from billing.services import credit_group

    local_q = queue.Queue()

    def run(share):
        try:
            worker(share, start_evt, local_q)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    group = credit_group.current()
    batches = (group.batches, group.items)
    for i, _ in enumerate(shares):
        ok, seconds = local_q.get()
        done_q.put((ok, seconds, batches if i == 0 else (0, 0)))  # the process's counts, once


def _run(worker, shares, *, processes=0) -> float:
    """Start one process per share (``processes``: that many processes, each running its part of
    the shares in threads), release them together, return ops/second (wall clock) and the number
    of operations."""
    from django.db import connections

    connections.close_all()  # never fork an open connection
    ctx = mp.get_context("fork")
    start_evt, done_q = ctx.Event(), ctx.Queue()
    if processes:
        procs = [
            ctx.Process(target=_threads_worker, args=(worker, shares[i::processes], start_evt, done_q))
            for i in range(processes)
        ]
    else:
        procs = [ctx.Process(target=worker, args=(share, start_evt, done_q)) for share in shares]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every worker load its data and connect
    t0 = time.perf_counter()
    start_evt.set()
    results = [done_q.get() for _ in shares]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    total = sum(r[0] for r in results)
    batches, items = (sum(r[2][i] for r in results if len(r) > 2) for i in (0, 1))
    if batches:
        print(f"  group commit: {items} credits in {batches} statements (mean batch {items / batches:.1f})")
    return total / wall, total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wallets", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument(
        "--processes", type=int, default=2, help="group commit: clients are threads of this many processes"
    )
    args = parser.parse_args()
    _setup()
    import random

    from _db import ensure_database
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from billing.models import Wallet
    from billing.services.topup import top_up_create
    from portal.models import Organization

    ensure_database()
    call_command("migrate", verbosity=0)
    have = Organization.objects.filter(name__startswith="bench-b1-").count()
    Organization.objects.bulk_create(
        [Organization(name=f"bench-b1-{i}", kind="service_provider") for i in range(have, args.wallets)]
    )
    org_ids = list(
        Organization.objects.filter(name__startswith="bench-b1-").order_by("pk").values_list("pk", flat=True)
    )[: args.wallets]
    Wallet.objects.bulk_create([Wallet(organization_id=o) for o in org_ids], ignore_conflicts=True)
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS bench_bare_balance (id bigint PRIMARY KEY, balance bigint NOT NULL)"
        )
        cur.execute("TRUNCATE bench_bare_balance")
        cur.execute(
            "INSERT INTO bench_bare_balance SELECT g, 0 FROM generate_series(1, %s) g", [args.wallets]
        )
        cur.execute("ANALYZE bench_bare_balance")
    rng = random.Random(3)

    def vacuumed(result):
        """VACUUM both sides' tables before a timed run, as autovacuum would between runs (it is
        off on the bench machine): dead rows of earlier runs must not slow one side only."""
        with connection.cursor() as cur:
            cur.execute(
                "VACUUM (ANALYZE) billing_topuporder, billing_paymentevent, billing_ledgerentry,"
                " billing_wallet, bench_bare_balance"
            )
        return result

    def orders_for(targets):
        now = timezone.now()
        ids = []
        for org_id in targets:
            ids.append(
                top_up_create(organization_id=org_id, amount_fen=rng.randint(100, 1_000_000), now=now).pk
            )
        return vacuumed(ids)

    def split(items):
        return [items[i :: args.clients] for i in range(args.clients)]

    report = {}
    for label, targets in (
        ("one wallet", [org_ids[0]] * args.ops),
        (f"{args.wallets} wallets", [rng.choice(org_ids) for _ in range(args.ops)]),
    ):
        bare_ids = [org_ids.index(t) + 1 for t in targets]
        bare_rate, _ = _run(_bare_worker, split(vacuumed(bare_ids)))
        service_rate, credited = _run(_service_worker, split(orders_for(targets)))
        assert credited == args.ops, f"credited {credited} of {args.ops}"
        webhook_rate, credited = _run(_credit_worker, split(orders_for(targets)))
        assert credited == args.ops, f"credited {credited} of {args.ops}"
        grouped_rate, credited = _run(_credit_worker, split(orders_for(targets)), processes=args.processes)
        assert credited == args.ops, f"credited {credited} of {args.ops}"
        bare_threads_rate, _ = _run(_bare_worker, split(vacuumed(bare_ids)), processes=args.processes)
        bare_rate2, _ = _run(_bare_worker, split(vacuumed(bare_ids)))
        bare = max((bare_rate + bare_rate2) / 2, bare_threads_rate)  # the faster bare loop
        report[label] = (
            service_rate,
            webhook_rate,
            grouped_rate,
            (bare_rate + bare_rate2) / 2,
            bare_threads_rate,
            bare,
        )

    call_command("verify_ledger")
    with connection.cursor() as cur:
        cur.execute("SHOW synchronous_commit")
        sync = cur.fetchone()[0]
        cur.execute("SELECT version()")
        version = cur.fetchone()[0].split(",")[0]
    print(f"{version}; synchronous_commit={sync}; clients={args.clients}; ops per scenario={args.ops}")
    print(
        "| scenario | credit service, 1 per process (top-ups/s) | full webhook, 1 per process"
        " | full webhook, group commit (clients as threads) | bare UPDATE, processes (updates/s)"
        " | bare UPDATE, threads | ratio service/bare | ratio webhook/bare | ratio group commit/bare |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, (service, webhook, grouped, bare_procs, bare_threads, bare) in report.items():
        print(
            f"| {label} | {service:,.0f} | {webhook:,.0f} | {grouped:,.0f} | {bare_procs:,.0f}"
            f" | {bare_threads:,.0f} | {service / bare:.2f} | {webhook / bare:.2f} | {grouped / bare:.2f} |"
        )
    print("(ratios are to the faster of the two bare loops)")


if __name__ == "__main__":
    main()
