"""Organization name search at scale (P-2, foundation): trigram index vs sequential scan.

Usage (own database; it is created and migrated if missing):
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_portal \
        .venv/bin/python bench/bench_org_search.py --orgs 50000

Loads N organizations with COPY, then times the portal's own search selector
(``organization_search``: icontains → UPPER(name) LIKE, served by the trigram GIN index)
against the same query with index scans disabled, in the same run. Reports the ratio.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

WORDS = [
    "星河",
    "跨境",
    "好物",
    "旗舰",
    "美妆",
    "全球",
    "星光",
    "机构",
    "数码",
    "母婴",
    "食品",
    "家居",
    "服饰",
    "运动",
    "户外",
    "Global",
    "Star",
    "Beauty",
    "Home",
    "Tech",
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--orgs", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    import django

    django.setup()
    from _db import ensure_database
    from django.core.management import call_command
    from django.db import connection

    from portal.models import Organization
    from portal.selectors import organization_search

    ensure_database()
    call_command("migrate", verbosity=0)
    have = Organization.objects.count()
    if have < args.orgs:
        rng = random.Random(7)
        with (
            connection.cursor() as cur,
            cur.copy("COPY portal_organization (name, kind, contact_email, created_at) FROM STDIN") as copy,
        ):
            for i in range(have, args.orgs):
                name = f"{rng.choice(WORDS)}{rng.choice(WORDS)}{i}号店"
                copy.write_row(
                    (
                        name,
                        rng.choice(["shop", "agency", "service_provider"]),
                        "",
                        "2026-01-01T00:00:00+08:00",
                    )
                )
        with connection.cursor() as cur:
            cur.execute("ANALYZE portal_organization")
    total = Organization.objects.count()
    rng = random.Random(11)
    terms = [f"{rng.choice(WORDS)}{rng.randint(1, 9)}" for _ in range(args.queries)]

    def run(label):
        times = []
        for term in terms:
            t0 = time.perf_counter()
            list(organization_search(query=term, limit=20))
            times.append(time.perf_counter() - t0)
        times.sort()
        return statistics.mean(times), times[int(len(times) * 0.99) - 1]

    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = on; SET enable_bitmapscan = on; SET enable_indexscan = on")
    idx_mean, idx_p99 = run("index")
    with connection.cursor() as cur:
        cur.execute(
            "EXPLAIN SELECT id FROM portal_organization"
            " WHERE UPPER(name::text) LIKE UPPER(%s) ORDER BY name LIMIT 20",
            ["%星光3%"],
        )
        plan = " | ".join(r[0].strip() for r in cur.fetchall())
        cur.execute("SET enable_bitmapscan = off; SET enable_indexscan = off")
    seq_mean, seq_p99 = run("seqscan")
    print(f"organizations: {total}")
    print(f"plan: {plan}")
    print(f"trigram index: mean {idx_mean * 1000:.2f} ms, p99 {idx_p99 * 1000:.2f} ms")
    print(f"sequential:    mean {seq_mean * 1000:.2f} ms, p99 {seq_p99 * 1000:.2f} ms")
    print(f"speed-up (seq mean / index mean): {seq_mean / idx_mean:.1f}x")


if __name__ == "__main__":
    main()
