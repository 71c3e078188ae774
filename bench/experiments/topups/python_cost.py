"""Python's own cost per "paid" callback on the group-commit path, with the database stubbed.

The webhook path (``payment_webhook_handle``: signature, JSON, ``credit_group``) runs in
``--clients`` threads of this one process, as a gunicorn gthread worker serves them; the
statements are replaced by a stub that sleeps ``--write-ms`` (releasing the GIL, as waiting for
PostgreSQL does) and answers "credited". Prints credits/s, this process's user and system CPU
per credit and the mean batch. Nothing is written; the database is only needed for settings.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_b1 \
        .venv/bin/python bench/experiments/topups/python_cost.py --clients 1 --write-ms 0
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_b1 \
        .venv/bin/python bench/experiments/topups/python_cost.py --clients 4 --write-ms 1.5
"""

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--per-client", type=int, default=2000)
    parser.add_argument("--write-ms", type=float, default=1.5)
    args = parser.parse_args()

    import django

    django.setup()
    from billing.models import TopUpOrder
    from billing.payments import sandbox
    from billing.services import credit_group, topup

    pause = args.write_ms / 1000

    def write_batch(events, *, now):
        if pause:
            time.sleep(pause)
        return [("credited", 1, True) for _ in events]

    def write_one(**_kwargs):
        if pause:
            time.sleep(pause)
        return ("credited", 1, True)

    credit_group.wallet_credit_paid_events = write_batch
    credit_group.wallet_credit_paid_event = write_one
    topup.wallet_credit_paid_event = write_one

    def body(client, i):
        order = TopUpOrder(out_trade_no=f"T{client:04d}{i:08d}", amount_fen=1000, currency="CNY")
        return sandbox.event_body(order=order, status="paid")

    bodies = [[body(c, i) for i in range(args.per_client)] for c in range(args.clients)]

    def client(share):
        for raw in share:
            ts = str(int(time.time()))
            headers = {
                sandbox.TIMESTAMP_HEADER: ts,
                sandbox.SIGNATURE_HEADER: sandbox.sign(timestamp=ts, body=raw),
            }
            topup.payment_webhook_handle(provider_name="sandbox", headers=headers, body=raw)

    threads = [threading.Thread(target=client, args=(share,)) for share in bodies]
    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    n = args.clients * args.per_client
    group = credit_group.current()
    print(
        f"clients={args.clients} write={args.write_ms} ms: {n / seconds:,.0f} credits/s;"
        f" user {1e6 * (after.ru_utime - before.ru_utime) / n:.0f} µs,"
        f" system {1e6 * (after.ru_stime - before.ru_stime) / n:.0f} µs per credit;"
        f" mean batch {group.items / max(1, group.batches):.1f}"
    )


if __name__ == "__main__":
    main()
