"""Admin changelists and change pages over large tables vs the bare indexed SELECT.

Usage (own database; created, migrated and filled if empty):
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_admin \
        .venv/bin/python bench/bench_admin.py --rows 1000000

Fills the tables staff page through in admin (``_admin_data.py``: ledger, top-ups, payment
events, invoices, bills, grants and grant events, gift orders, shipments, violations, disputes
and events, the audit log, notifications) with ``INSERT … SELECT generate_series``, ANALYZEs,
then renders each page through Django's test client as a logged-in superuser (templates and
all), in the same run as the bare query a hand-written page would need: ``SELECT * FROM <table>
ORDER BY id DESC LIMIT 100`` (or the row by its key). Reports the median page time, the time of
its SQL (sum of the queries Django ran for it), the bare query's time and the ratios; and, for
scale, what one ``COUNT(*)`` of the whole table costs (Django's stock changelist ran it once or
twice per page view before ``portal.admin_scale``).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# (label, url (str or callable returning str), table, bare SQL)
LATEST = "SELECT * FROM {table} ORDER BY id DESC LIMIT 100"


def pages():
    from django.urls import reverse

    from authorization.models import Grant
    from billing.models import LedgerEntry, TopUpOrder
    from gifts.models import GiftDispute, Order

    def cl(name):
        return reverse(f"admin:{name}_changelist")

    def change(name, model):
        return lambda: reverse(
            f"admin:{name}_change", args=[model.objects.order_by("-pk").values("pk")[0]["pk"]]
        )

    def search(name, model, field):
        return lambda: cl(name) + "?q=" + str(model.objects.order_by("-pk").values(field)[5000][field])

    return [
        ("ledger", cl("billing_ledgerentry"), "billing_ledgerentry", LATEST),
        (
            "ledger: top-up credits",
            cl("billing_ledgerentry") + "?kind__exact=top_up_credit",
            "billing_ledgerentry",
            "SELECT * FROM billing_ledgerentry WHERE kind = 'top_up_credit' ORDER BY id DESC LIMIT 100",
        ),
        (
            "ledger: search order no.",
            search("billing_ledgerentry", TopUpOrder, "out_trade_no"),
            "billing_ledgerentry",
            LATEST,
        ),
        ("ledger entry page", change("billing_ledgerentry", LedgerEntry), "billing_ledgerentry", LATEST),
        ("top-up orders", cl("billing_topuporder"), "billing_topuporder", LATEST),
        (
            "top-up: search order no.",
            search("billing_topuporder", TopUpOrder, "out_trade_no"),
            "billing_topuporder",
            LATEST,
        ),
        ("top-up order page", change("billing_topuporder", TopUpOrder), "billing_topuporder", LATEST),
        ("payment events", cl("billing_paymentevent"), "billing_paymentevent", LATEST),
        (
            "invoices (queue)",
            cl("billing_invoice"),
            "billing_invoice",
            "SELECT * FROM billing_invoice WHERE state = 'requested' ORDER BY id DESC LIMIT 100",
        ),
        ("bills", cl("billing_bill"), "billing_bill", LATEST),
        ("usage batches", cl("billing_usagebatch"), "billing_usagebatch", LATEST),
        ("grants", cl("authorization_grant"), "authorization_grant", LATEST),
        ("grant page", change("authorization_grant", Grant), "authorization_grant", LATEST),
        ("grant events", cl("authorization_grantevent"), "authorization_grantevent", LATEST),
        ("gift orders", cl("gifts_order"), "gifts_order", LATEST),
        ("gift orders: search order no.", search("gifts_order", Order, "order_no"), "gifts_order", LATEST),
        ("gift shipments", cl("gifts_giftshipment"), "gifts_giftshipment", LATEST),
        (
            "shipments: search order no.",
            search("gifts_giftshipment", Order, "order_no"),
            "gifts_giftshipment",
            LATEST,
        ),
        ("violations", cl("gifts_violation"), "gifts_violation", LATEST),
        ("gift disputes", cl("gifts_giftdispute"), "gifts_giftdispute", LATEST),
        ("gift dispute page", change("gifts_giftdispute", GiftDispute), "gifts_giftdispute", LATEST),
        ("gift events", cl("gifts_giftevent"), "gifts_giftevent", LATEST),
        ("audit log", cl("portal_auditentry"), "portal_auditentry", LATEST),
        ("notifications", cl("portal_notification"), "portal_notification", LATEST),
        ("deposit: add page", reverse("admin:billing_depositaccount_add"), "portal_organization", LATEST),
        ("API key: add page", reverse("admin:portal_apikey_add"), "portal_organization", LATEST),
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="size of the big tables (multiple of 20)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    import logging

    logging.disable(logging.CRITICAL)
    from _admin_data import BIG_TABLES, load
    from _db import ensure_database
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    ensure_database()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM (SELECT 1 FROM billing_topuporder LIMIT 1) t")
        if not cur.fetchone()[0]:
            print(f"loading {args.rows:,} rows per big table …", flush=True)
            t0 = time.perf_counter()
            load(cur, args.rows, log=lambda s: print(s, flush=True))
            print(f"  loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        sizes = {}
        for table in BIG_TABLES:
            cur.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
            sizes[table] = cur.fetchone()[0]
    print("rows (planner):", ", ".join(f"{t} {n:,}" for t, n in sizes.items()))

    from portal.models import User

    user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    static = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    override_settings(STORAGES=static).enable()
    client = Client()
    client.force_login(user)

    def bare(sql, params=()):
        with connection.cursor() as cur:
            t0 = time.perf_counter()
            cur.execute(sql, params)
            cur.fetchall()
            return time.perf_counter() - t0

    def full_count(table):
        return bare(f"SELECT count(*) FROM {table}")

    rows = pages()
    print(
        f"\n{'page':32s} {'page ms':>8s} {'SQL ms':>7s} {'queries':>7s} {'bare ms':>8s} "
        f"{'page/bare':>9s} {'SQL/bare':>8s} {'COUNT(*) ms':>11s}"
    )
    results = []
    for label, url, table, sql in rows:
        url = url() if callable(url) else url
        sql = sql.format(table=table)
        resp = client.get(url)  # warm-up: plans, caches, templates
        assert resp.status_code == 200, (label, url, resp.status_code)
        page_t, sql_t, bare_t, nq = [], [], [], 0
        for _ in range(args.rounds):
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                client.get(url)
                page_t.append(time.perf_counter() - t0)
            sql_t.append(sum(float(q["time"]) for q in ctx.captured_queries))
            nq = len(ctx.captured_queries)
            bare_t.append(bare(sql))
        count_t = full_count(table)
        p, s, b = (statistics.median(x) for x in (page_t, sql_t, bare_t))
        results.append((label, p, s, b))
        print(
            f"{label:32s} {p * 1000:8.1f} {s * 1000:7.1f} {nq:7d} {b * 1000:8.2f} {p / b:9.0f} {s / b:8.1f} "
            f"{count_t * 1000:11.1f}",
            flush=True,
        )
    worst = max(results, key=lambda r: r[1])
    print(
        f"\nslowest page: {worst[0]} {worst[1] * 1000:.0f} ms; median page "
        f"{statistics.median(r[1] for r in results) * 1000:.0f} ms; median SQL per page "
        f"{statistics.median(r[2] for r in results) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
