"""The creator's and the organization's grant lists (GRANT-7, GRANT-8) with 100,000 grants
for one party: p50/p99 of the whole page (Django test client in-process: middleware, session,
selectors, template) and EXPLAIN ANALYZE of the list query.

Usage (same database as bench_access.py, which loads the data):
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_auth CACHE_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python bench/bench_grant_lists.py --grants 5000000 --creators 1000000 --orgs 100000
"""

import argparse
import random
import statistics
import time

from bench_access import ensure_data


def timed(client, url, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = client.get(url() if callable(url) else url)
        times.append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.status_code
    times.sort()
    return statistics.median(times) * 1000, times[max(0, int(len(times) * 0.99) - 1)] * 1000


def explain(qs) -> str:
    from django.db import connection

    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join("    " + r[0] for r in cur.fetchall())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grants", type=int, default=5_000_000)
    parser.add_argument("--creators", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    info = ensure_data(grants=args.grants, creators=args.creators, orgs=args.orgs)

    from django.conf import settings
    from django.test import Client

    # Pages render static URLs: serve them from the finders (no collectstatic manifest here).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

    from authorization import selectors
    from authorization.views import PAGE_SIZE
    from portal.models import Creator, Membership

    rng = random.Random(3)
    creator_client, org_client = Client(), Client()
    creator_client.force_login(info["creator_user"])
    org_client.force_login(info["org_user"])
    creator = Creator.objects.get(pk=1)
    membership = Membership.objects.get(user=info["org_user"])
    n_creator = selectors.grant_list_for_creator(creator=creator).count()
    n_org = selectors.grant_list_for_organization(membership=membership).count()
    pages_c, pages_o = max(1, n_creator // PAGE_SIZE), max(1, n_org // PAGE_SIZE)
    print(f"creator #1: {n_creator} grants; organization #1: {n_org} grants; page size {PAGE_SIZE}")
    cases = [
        ("creator list, page 1", creator_client, "/authorization/creator/"),
        ("creator list, state=authorized", creator_client, "/authorization/creator/?state=authorized"),
        (
            "creator list, random page",
            creator_client,
            lambda: f"/authorization/creator/?page={rng.randint(1, pages_c)}",
        ),
        ("org list, page 1", org_client, "/authorization/org/"),
        ("org list, state=expired", org_client, "/authorization/org/?state=expired"),
        ("org list, random page", org_client, lambda: f"/authorization/org/?page={rng.randint(1, pages_o)}"),
    ]
    for label, client, url in cases:
        timed(client, url, 5)  # warm
        p50, p99 = timed(client, url, args.requests)
        print(f"{label:34}: p50 {p50:7.1f} ms, p99 {p99:7.1f} ms ({args.requests} requests)")
    print("\nEXPLAIN creator list page 1:")
    print(explain(selectors.grant_list_for_creator(creator=creator)[:PAGE_SIZE]))
    print("\nEXPLAIN org list state=expired page 1:")
    print(explain(selectors.grant_list_for_organization(membership=membership, state="expired")[:PAGE_SIZE]))


if __name__ == "__main__":
    main()
