# ruff: noqa: E501  (an experiment: the SQL is kept as it was measured)
"""Experiment, not product code: group commit of top-up credits through a Redis queue.

8 client processes push a "paid" callback to a Redis list and wait on their own reply key
(one pipelined round trip); one batcher process pops up to 128 at a time, credits them with ONE
set-based statement (lock the orders, store the events, mark them paid, move each wallet once,
append the ledger rows with running balances) and answers. Compared with the bare UPDATE loop
in the same run. Needs the tp_scratch database that ./run.sh prepares.

    ./run.sh bare.sql >/dev/null && ../../../.venv/bin/python group_commit_proto.py 8000 20000

Result (2026-11-22): 2,833 credits/s vs 8,306 bare = 0.34, mean batch 6.8 -- no better than
the one-statement credit, so it was not built (bench/RESULTS_billing_wallet.md).
"""

import json
import multiprocessing as mp
import sys
import time
import uuid

import psycopg
import redis

DSN = "postgresql://postgres@127.0.0.1:5432/tp_scratch"
Q = "proto:q"
BATCH_SQL = """
WITH req AS (
  SELECT * FROM unnest(%(otn)s::text[], %(eid)s::text[], %(amt)s::int8[], %(cur)s::text[], %(rk)s::text[]) AS r(out_trade_no, event_id, amount_fen, currency, rk)
), o AS (
  SELECT t.id, t.organization_id, t.amount_fen, t.currency, t.state, r.event_id, r.amount_fen AS req_amount, r.currency AS req_currency, t.out_trade_no, r.rk
  FROM billing_topuporder t JOIN req r ON r.out_trade_no = t.out_trade_no WHERE t.provider = 'sandbox'
  ORDER BY t.id FOR UPDATE OF t
), verdict AS (
  SELECT o.*, CASE WHEN o.amount_fen <> o.req_amount OR o.currency <> o.req_currency THEN 'rejected_mismatch'
    WHEN o.state = 'paid' THEN 'already_paid' ELSE 'credited' END AS outcome FROM o
), e AS (
  INSERT INTO billing_paymentevent (provider, event_id, order_id, status, amount_fen, currency, outcome, payload, received_at)
  SELECT 'sandbox', event_id, id, 'paid', req_amount, req_currency, outcome, '{}'::jsonb, now() FROM verdict
  ON CONFLICT (provider, event_id) DO NOTHING RETURNING order_id, outcome
), paid AS (
  UPDATE billing_topuporder t SET state = 'paid', paid_at = now(), finished_at = now(), provider_trade_no = 'SBX'
  FROM e WHERE t.id = e.order_id AND e.outcome = 'credited'
  RETURNING t.id, t.organization_id, t.amount_fen, t.out_trade_no
), per_wallet AS (
  SELECT organization_id, sum(amount_fen) AS total FROM paid GROUP BY organization_id
), w AS (
  UPDATE billing_wallet b SET balance_fen = b.balance_fen + pw.total, updated_at = now()
  FROM per_wallet pw WHERE b.organization_id = pw.organization_id
  RETURNING b.id, b.organization_id, b.balance_fen
), l AS (
  INSERT INTO billing_ledgerentry (wallet_id, kind, amount_fen, balance_after_fen, top_up_order_id, reference, created_at)
  SELECT w.id, 'top_up_credit', paid.amount_fen,
         w.balance_fen - sum(paid.amount_fen) OVER (PARTITION BY paid.organization_id ORDER BY paid.id DESC) + paid.amount_fen,
         paid.id, 'top-up ' || paid.out_trade_no, now()
  FROM paid JOIN w ON w.organization_id = paid.organization_id
  RETURNING top_up_order_id
)
SELECT v.rk, coalesce(e.outcome, 'replay') FROM verdict v LEFT JOIN e ON e.order_id = v.id
"""


def batcher(stop):
    r = redis.Redis()
    conn = psycopg.connect(DSN, autocommit=True, prepare_threshold=0)
    sizes = []
    while not stop.is_set():
        first = r.blpop(Q, timeout=0.2)
        if not first:
            continue
        items = [first[1]] + (r.lpop(Q, 127) or [])
        reqs = [json.loads(x) for x in items]
        sizes.append(len(reqs))
        with conn.cursor() as cur:
            cur.execute(
                BATCH_SQL,
                {
                    "otn": [q["o"] for q in reqs],
                    "eid": [q["e"] for q in reqs],
                    "amt": [q["a"] for q in reqs],
                    "cur": ["CNY"] * len(reqs),
                    "rk": [q["k"] for q in reqs],
                },
                prepare=True,
            )
            rows = cur.fetchall()
        p = r.pipeline(transaction=False)
        for rk, outcome in rows:
            p.lpush(rk, outcome)
            p.expire(rk, 30)
        p.execute()
    print("batches", len(sizes), "mean size", sum(sizes) / max(1, len(sizes)), file=sys.stderr)


def client(ids, start, q):
    r = redis.Redis()
    start.wait()
    t0 = time.perf_counter()
    ok = 0
    for n in ids:
        rk = f"proto:r:{uuid.uuid4().hex}"
        p = r.pipeline(transaction=False)
        p.rpush(Q, json.dumps({"o": f"T{n}", "e": f"evt_{uuid.uuid4().hex}", "a": 1000, "k": rk}))
        p.blpop(rk, timeout=5)
        res = p.execute()[1]
        ok += res is not None and res[1] == b"credited"
    q.put((ok, time.perf_counter() - t0))


def bare(ids, start, q):
    conn = psycopg.connect(DSN, autocommit=True, cursor_factory=psycopg.ClientCursor)
    start.wait()
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        for n in ids:
            cur.execute(
                "UPDATE bench_bare_balance SET balance = balance + %s WHERE id = %s", (100, n % 1000 + 1)
            )
    q.put((len(ids), time.perf_counter() - t0))


def run(worker, allids, clients=8):
    start, q = mp.Event(), mp.Queue()
    ps = [mp.Process(target=worker, args=(allids[i::clients], start, q)) for i in range(clients)]
    for p in ps:
        p.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    start.set()
    res = [q.get() for _ in ps]
    wall = time.perf_counter() - t0
    for p in ps:
        p.join()
    return sum(x[0] for x in res) / wall, sum(x[0] for x in res)


if __name__ == "__main__":
    N = int(sys.argv[1])
    off = int(sys.argv[2])
    stop = mp.Event()
    b = mp.Process(target=batcher, args=(stop,))
    b.start()
    r1, _ = run(bare, list(range(N)))
    rc, ok = run(client, list(range(off, off + N)))
    r2, _ = run(bare, list(range(N)))
    stop.set()
    b.join()
    print(f"bare {(r1 + r2) / 2:,.0f}/s batched {rc:,.0f}/s credited {ok} ratio {rc / ((r1 + r2) / 2):.2f}")
