"""The daily expiry job (GRANT-10) vs a single bare UPDATE doing the same marking.

Usage (same database as bench_access.py, which loads the data):
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_auth CACHE_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python bench/bench_expiry.py --grants 5000000 --creators 1000000 --orgs 100000 --due 1000000

Before each run the marking is reset so exactly ``--due`` grants are expired and unrecorded
(the rest of the expired ones count as recorded already). The job (``grant_expiry_record``:
batched UPDATE … RETURNING + INSERT of one ``expire`` event per grant, in one statement per
batch) is timed against ``UPDATE authorization_grant SET expiry_recorded_for = end_date
WHERE <due>`` — the marking alone, without the events. Rounds alternate; best of each kept.

The data set is shared (bench_access.py and bench_grant_lists.py use it too): the marking column
and the event table are copied aside first and restored at the end, even after a failure (a
run killed before restoring leaves the copies, and the next run restores them first).
"""

import argparse
import time

from bench_access import ensure_data

DUE = (
    "scope = 'all_data' AND revoked_at IS NULL AND end_date < %(today)s "
    "AND (expiry_recorded_for IS NULL OR expiry_recorded_for < end_date)"
)


SAVED_MARKS = "bench_expiry_saved_marks"
SAVED_EVENTS = "bench_expiry_saved_events"


def snapshot(cur) -> None:
    """Keep what the rounds change (the marking column, the event table) in two side tables,
    so ``restore`` gives the shared data set back as it was. If the side tables exist, an
    earlier run died before restoring: restore from them first."""
    cur.execute("SELECT to_regclass(%s)", [SAVED_MARKS])
    if cur.fetchone()[0] is not None:
        print("an earlier run did not restore: restoring its snapshot first", flush=True)
        restore(cur)
    cur.execute(
        f"CREATE UNLOGGED TABLE {SAVED_MARKS} AS SELECT id, expiry_recorded_for FROM authorization_grant "
        "WHERE expiry_recorded_for IS NOT NULL"
    )
    cur.execute(f"CREATE UNLOGGED TABLE {SAVED_EVENTS} AS SELECT * FROM authorization_grantevent")


def restore(cur) -> None:
    cur.execute("TRUNCATE authorization_grantevent")  # row triggers (append-only) do not fire
    cur.execute(f"INSERT INTO authorization_grantevent SELECT * FROM {SAVED_EVENTS}")
    cur.execute(
        "UPDATE authorization_grant SET expiry_recorded_for = NULL WHERE expiry_recorded_for IS NOT NULL"
    )
    cur.execute(
        f"UPDATE authorization_grant g SET expiry_recorded_for = s.expiry_recorded_for "
        f"FROM {SAVED_MARKS} s WHERE g.id = s.id"
    )
    cur.execute(f"DROP TABLE {SAVED_MARKS}, {SAVED_EVENTS}")
    cur.execute("VACUUM ANALYZE authorization_grant")
    cur.execute("VACUUM ANALYZE authorization_grantevent")


def reset(cur, today, due: int) -> int:
    cur.execute("TRUNCATE authorization_grantevent")
    cur.execute(
        "UPDATE authorization_grant SET expiry_recorded_for = NULL WHERE expiry_recorded_for IS NOT NULL"
    )
    # Everything expired beyond the first `due` ids counts as already recorded.
    cur.execute(
        f"""UPDATE authorization_grant SET expiry_recorded_for = end_date
            WHERE id IN (SELECT id FROM authorization_grant WHERE {DUE} ORDER BY id OFFSET %(due)s)""",
        {"today": today, "due": due},
    )
    cur.execute("VACUUM ANALYZE authorization_grant")
    cur.execute(f"SELECT count(*) FROM authorization_grant WHERE {DUE}", {"today": today})
    return cur.fetchone()[0]


def run_rounds(cur, args, today, results, grant_expiry_record, transaction) -> None:
    """Alternate job and bare UPDATE rounds, each on a freshly reset marking."""
    for rnd in range(args.rounds):
        due = reset(cur, today, args.due)
        t0 = time.perf_counter()
        done = grant_expiry_record(today=today)
        results["job"].append(time.perf_counter() - t0)
        cur.execute("SELECT count(*) FROM authorization_grantevent WHERE operation = 'expire'")
        events = cur.fetchone()[0]
        assert done == due == events, (done, due, events)
        print(
            f"round {rnd + 1} job        : {results['job'][-1]:6.2f} s for {done} grants ({events} events)",
            flush=True,
        )
        due = reset(cur, today, args.due)
        t0 = time.perf_counter()
        with transaction.atomic():
            cur.execute(
                f"UPDATE authorization_grant SET expiry_recorded_for = end_date WHERE {DUE}",
                {"today": today},
            )
            marked = cur.rowcount
        results["bare UPDATE"].append(time.perf_counter() - t0)
        assert marked == due
        print(
            f"round {rnd + 1} bare UPDATE: {results['bare UPDATE'][-1]:6.2f} s for {marked} grants",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grants", type=int, default=5_000_000)
    parser.add_argument("--creators", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ensure_data(grants=args.grants, creators=args.creators, orgs=args.orgs)

    from django.db import connection, transaction

    from authorization.services import grant_expiry_record
    from portal import clock

    today = clock.today()
    results = {"job": [], "bare UPDATE": []}
    with connection.cursor() as cur:
        snapshot(cur)
        try:
            run_rounds(cur, args, today, results, grant_expiry_record, transaction)
            cur.execute(
                "EXPLAIN " + "SELECT id FROM authorization_grant WHERE " + DUE + " LIMIT 500000",
                {"today": today},
            )
            plan = " | ".join(r[0].strip() for r in cur.fetchall())
        finally:
            t0 = time.perf_counter()
            restore(cur)
            print(f"data set restored in {time.perf_counter() - t0:.0f}s", flush=True)
    job, bare = min(results["job"]), min(results["bare UPDATE"])
    print(f"\njob {job:.2f} s vs bare UPDATE {bare:.2f} s: {job / bare:.2f}x (target <= 2x)")
    print(f"plan of the due scan: {plan}")


if __name__ == "__main__":
    main()
