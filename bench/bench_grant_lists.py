"""The creator's and the organization's grant lists (GRANT-7, GRANT-8) with 100,000 grants
for one party: p50/p99 of the whole page (Django test client in-process: middleware, session,
selectors, template) at page 1 and at random depths, and the list query alone at the same
depths with keyset (what the pages do: ``WHERE (list_end, id) > cursor``) vs OFFSET (what they
did before), plus EXPLAIN ANALYZE of a deep keyset page.

Usage (same database as bench_access.py, which loads the data):
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_auth CACHE_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python bench/bench_grant_lists.py --grants 5000000 --creators 1000000 --orgs 100000
"""

import argparse
import random
import statistics
import time

from bench_access import ensure_data


def pct(times):
    times = sorted(times)
    return statistics.median(times) * 1000, times[max(0, int(len(times) * 0.99) - 1)] * 1000


def timed(client, url, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = client.get(url() if callable(url) else url)
        times.append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.status_code
    return pct(times)


def timed_query(make_qs, n):
    times = []
    for _ in range(n):
        qs = make_qs()
        t0 = time.perf_counter()
        rows = list(qs)
        times.append(time.perf_counter() - t0)
        assert rows
    return pct(times)


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
    from django.db.models import F
    from django.test import Client

    # Pages render static URLs: serve them from the finders (no collectstatic manifest here).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

    from authorization import selectors
    from authorization.api import OrgGrantListApi
    from authorization.views import CREATOR_LIST_SALT, ORG_LIST_SALT, PAGE_SIZE
    from portal.models import Creator, Membership
    from portal.pagination import _RowCompare, cursor_encode

    rng = random.Random(3)
    creator_client, org_client = Client(), Client()
    creator_client.force_login(info["creator_user"])
    org_client.force_login(info["org_user"])
    creator = Creator.objects.get(pk=1)
    membership = Membership.objects.get(user=info["org_user"])

    def lists():
        return {
            "creator": selectors.grant_list_for_creator(creator=creator),
            "org": selectors.grant_list_for_organization(membership=membership),
            "org expired": selectors.grant_list_for_organization(membership=membership, state="expired"),
        }

    # Every row's sort key, to make cursors (and OFFSETs) at random depths.
    keys = {name: list(qs.values_list(*selectors.LIST_KEYS)) for name, qs in lists().items()}
    for name, rows in keys.items():
        print(f"{name} list: {len(rows)} grants; page size {PAGE_SIZE}")

    def deep(name):
        """A random (offset, key) at least 10% into the list."""
        rows = keys[name]
        i = rng.randint(len(rows) // 10, len(rows) - PAGE_SIZE - 1)
        return i, rows[i]

    def page_url(path, name, salt, extra=""):
        def make():
            _i, (end, pk) = deep(name)
            return f"{path}?{extra}cursor={cursor_encode(values=(end, pk), direction='n', salt=salt)}"

        return make

    print(f"\nwhole page, {args.requests} requests each:")
    cases = [
        ("creator list, page 1", creator_client, "/authorization/creator/"),
        ("creator list, state=authorized", creator_client, "/authorization/creator/?state=authorized"),
        (
            "creator list, random deep page",
            creator_client,
            page_url("/authorization/creator/", "creator", CREATOR_LIST_SALT),
        ),
        ("org list, page 1", org_client, "/authorization/org/"),
        ("org list, state=expired", org_client, "/authorization/org/?state=expired"),
        ("org list, random deep page", org_client, page_url("/authorization/org/", "org", ORG_LIST_SALT)),
        (
            "org list, state=expired, deep page",
            org_client,
            page_url("/authorization/org/", "org expired", ORG_LIST_SALT, "state=expired&"),
        ),
        (
            "API org list, random deep page",
            org_client,
            page_url("/api/v1/authorization/org/grants", "org", OrgGrantListApi.keyset_salt, "page_size=25&"),
        ),
    ]
    for label, client, url in cases:
        timed(client, url, 5)  # warm
        p50, p99 = timed(client, url, args.requests)
        print(f"  {label:36}: p50 {p50:7.1f} ms, p99 {p99:7.1f} ms", flush=True)

    print(f"\nlist query alone at random depths (>= 10% in), {args.requests} queries each:")
    for name in keys:

        def by_keyset(name=name):
            _i, (end, pk) = deep(name)
            qs = lists()[name]
            return qs.filter(_RowCompare(">", [F("list_end"), F("id")], [end, pk]))[:PAGE_SIZE]

        def by_offset(name=name):
            i, _key = deep(name)
            return lists()[name][i : i + PAGE_SIZE]

        for label, make in (("keyset", by_keyset), ("OFFSET", by_offset)):
            timed_query(make, 5)
            p50, p99 = timed_query(make, args.requests)
            print(f"  {name:12} {label:7}: p50 {p50:7.1f} ms, p99 {p99:7.1f} ms", flush=True)

    rows = keys["org"]
    end, pk = rows[len(rows) * 9 // 10]
    qs = lists()["org"].filter(_RowCompare(">", [F("list_end"), F("id")], [end, pk]))[:PAGE_SIZE]
    print("\nEXPLAIN org list, keyset page at 90%:")
    print(explain(qs))
    rows = keys["org expired"]
    end, pk = rows[len(rows) // 2]
    qs = lists()["org expired"].filter(_RowCompare(">", [F("list_end"), F("id")], [end, pk]))[:PAGE_SIZE]
    print("\nEXPLAIN org list state=expired, keyset page at 50%:")
    print(explain(qs))
    rows = keys["creator"]
    end, pk = rows[len(rows) * 9 // 10]
    qs = lists()["creator"].filter(_RowCompare(">", [F("list_end"), F("id")], [end, pk]))[:PAGE_SIZE]
    print("\nEXPLAIN creator list, keyset page at 90%:")
    print(explain(qs))


if __name__ == "__main__":
    main()
