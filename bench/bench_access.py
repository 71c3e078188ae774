"""Access checks per second over HTTP (GRANT-11) vs constant views, on generated grants.

Usage (own database bench_auth and Redis db; needs wrk: apt-get install -y wrk):
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_auth CACHE_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python bench/bench_access.py --grants 5000000 --creators 1000000 --orgs 100000 \
        --seconds 20 --connections 16

Data (``ensure_data``, shared by bench_grant_lists.py and bench_expiry.py): users, creators,
organizations and all_data grants loaded with COPY (secondary indexes and the exclusion
constraint are dropped for the load and rebuilt after, as a bulk load would). Layout:
creator #1 holds grants to every organization (the creator's list with --orgs grants),
organization #1 holds grants from up to 100,000 creators (the organization's list), the rest
are spread over all pairs. Dates spread ±400 days around today; 5% revoked.

Server: gunicorn, 2 sync workers, loopback, on this module's ``application`` (the portal plus
two constant views). wrk calls ``GET /api/v1/authorization/access`` with an Api-Key of
organization #1 for random creators, and the constant views, alternating rounds; best kept.
- ``/bench/constant``: a plain Django view returning a fixed decision (no authentication);
- ``/bench/constant-auth``: a DRF view with the same Api-Key authentication as the access API.
"""

import argparse
import datetime as dt
import io
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


# --- the WSGI app gunicorn serves -----------------------------------------------------------------


def constant_view(request):
    from django.http import JsonResponse

    return JsonResponse(
        {"allowed": True, "state": "authorized", "valid_until": "2026-12-31", "code": "GRANT-10"}
    )


def _urlpatterns():
    from django.urls import include, path
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class ConstantAuthView(APIView):
        def get(self, request):
            return Response(
                {"allowed": True, "state": "authorized", "valid_until": "2026-12-31", "code": "GRANT-10"}
            )

    return [
        path("bench/constant", constant_view),
        path("bench/constant-auth", ConstantAuthView.as_view()),
        path("", include("portal.urls")),
    ]


def __getattr__(name):  # lazy: importing this module must not set Django up
    if name == "urlpatterns":
        return _urlpatterns()
    if name == "application":
        import django
        from django.conf import settings

        django.setup()
        settings.ROOT_URLCONF = "bench_access"
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()
    raise AttributeError(name)


# --- data ----------------------------------------------------------------------------------------


def _copy(cur, table: str, columns: str, rows, chunk: int = 200_000) -> None:
    buf = io.StringIO()
    n = 0
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            buf.write(row)
            n += 1
            if n % chunk == 0:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


def _without_indexes(cur, table: str):
    """Drop secondary indexes, FKs and exclusion constraints; return the statements to rebuild."""
    cur.execute(
        """SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s
           AND indexname NOT IN (SELECT conname FROM pg_constraint
                                 WHERE conrelid = %s::regclass AND contype = 'p')""",
        [table, table],
    )
    indexes = cur.fetchall()
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype IN ('x', 'f', 'u')",
        [table],
    )
    constraints = cur.fetchall()
    rebuild = []
    for name, definition in constraints:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    constrained = {name for name, _ in constraints}
    for name, definition in indexes:
        if name in constrained:
            continue
        cur.execute(f'DROP INDEX IF EXISTS "{name}"')
        rebuild.insert(0, definition)
    return rebuild


def ensure_data(*, grants: int, creators: int, orgs: int) -> dict:
    """Load the data set once (idempotent on the sizes); return ids the benchmarks use."""
    import django

    django.setup()
    from _db import ensure_database
    from django.core.management import call_command
    from django.db import connection

    from portal import clock

    ensure_database()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM authorization_grant")
        have = cur.fetchone()[0]
    if have == grants:
        return _bench_parties(orgs=orgs, creators=creators)
    if have:
        raise SystemExit(
            f"bench database has {have} grants, not {grants}: drop it (dropdb bench_auth) and rerun"
        )
    today = clock.today()
    rng = random.Random(5)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        tables = ["portal_user", "portal_creator", "portal_organization", "authorization_grant"]
        rebuild = [stmt for t in tables for stmt in _without_indexes(cur, t)]
        _copy(
            cur,
            "portal_user",
            "id, password, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined, display_name",
            (
                f"{i}\t!\tf\tu{i}\t\t\t\tf\tt\t2026-01-01 00:00:00+08\t达人{i}\n"
                for i in range(1, creators + 1)
            ),
        )
        _copy(
            cur,
            "portal_creator",
            "id, user_id, nickname, douyin_id, avatar_url",
            (f"{i}\t{i}\t达人{i}\tdy{i}\t\n" for i in range(1, creators + 1)),
        )
        _copy(
            cur,
            "portal_organization",
            "id, name, kind, contact_email, created_at",
            (
                f"{i}\t{'店铺' if i % 3 else '机构'}{i}\t{'shop' if i % 3 else 'agency'}\t\t"
                "2026-01-01 00:00:00+08\n"
                for i in range(1, orgs + 1)
            ),
        )
        print(f"parties loaded in {time.perf_counter() - t0:.0f}s", flush=True)

        def grant_rows():
            gid = 0

            def row(c, o):
                nonlocal gid
                gid += 1
                start = today - dt.timedelta(days=rng.randrange(400))
                end = start + dt.timedelta(days=rng.randrange(400))
                revoked = f"{start} 12:00:00+08" if rng.random() < 0.05 else "\\N"
                return (
                    f"{gid}\tall_data\t{start}\t{end}\tt\t2026-01-01 00:00:00+08\t{revoked}"
                    f"\t\t\\N\t\\N\t{c}\t"
                    f"\\N\t{o}\t\\N\n"
                )

            block_a = min(orgs, grants)
            for o in range(1, block_a + 1):  # creator #1 → every organization
                yield row(1, o)
            block_b = min(creators - 1, 100_000, grants - block_a)
            for c in range(2, block_b + 2):  # organization #1 ← creators 2..
                yield row(c, 1)
            for i in range(grants - block_a - block_b):
                c = 2 + i % (creators - 1)
                k = i // (creators - 1)
                yield row(c, 2 + (k * 9973 + c * 31) % (orgs - 1))

        _copy(
            cur,
            "authorization_grant",
            "id, scope, start_date, end_date, is_current, created_at, revoked_at, "
            "revoke_reason, expiry_recorded_for, created_by_id, creator_id, live_room_id, organization_id, "
            "revoked_by_id",
            grant_rows(),
        )
        print(f"grants copied in {time.perf_counter() - t0:.0f}s", flush=True)
        for stmt in rebuild:
            t1 = time.perf_counter()
            cur.execute(stmt)
            print(f"  {time.perf_counter() - t1:6.1f}s {stmt[:100]}", flush=True)
        for t in tables:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))")
            cur.execute(f"VACUUM ANALYZE {t}")
    print(f"data ready in {time.perf_counter() - t0:.0f}s", flush=True)
    return _bench_parties(orgs=orgs, creators=creators)


def _bench_parties(*, orgs: int, creators: int) -> dict:
    """Organization #1's main account with an API key; creator #1's user (list benchmark)."""
    from portal.models import ApiKey, Membership, User
    from portal.services import api_key_create

    user, _ = User.objects.get_or_create(username="bench_main", defaults={"display_name": "bench"})
    membership, _ = Membership.objects.get_or_create(user=user, organization_id=1, defaults={"role": "main"})
    ApiKey.objects.filter(organization_id=1).delete()
    _key, raw = api_key_create(membership=membership, name="bench", actor=user)
    return {
        "api_key": raw,
        "org_id": 1,
        "creator_user": User.objects.get(pk=1),
        "org_user": user,
        "org_creators": min(creators - 1, 100_000),
        "creator_grants": orgs,
    }


# --- the benchmark ---------------------------------------------------------------------------------

LUA = """
math.randomseed({seed})
request = function()
  local c = math.random(2, {max_creator})
  return wrk.format("GET", "{path}" .. c .. "&scope=all_data", {{["Authorization"] = "Api-Key {key}"}})
end
"""
LUA_CONST = """
request = function()
  return wrk.format("GET", "{path}", {{["Authorization"] = "Api-Key {key}"}})
end
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grants", type=int, default=5_000_000)
    parser.add_argument("--creators", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hot", type=int, default=1000, help="creators in the hot (cached) set")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument(
        "--warm-redis",
        action="store_true",
        help="before timing, fill Redis with every org creator's windows (steady state)",
    )
    args = parser.parse_args()

    info = ensure_data(grants=args.grants, creators=args.creators, orgs=args.orgs)
    if args.load_only:
        return
    from django.core.cache import cache

    cache.clear()
    if args.warm_redis:
        from authorization.selectors import access_check

        t0 = time.perf_counter()
        for creator_id in range(2, 2 + info["org_creators"]):
            access_check(organization_id=info["org_id"], creator_id=creator_id, scope="all_data")
        print(f"Redis warmed with {info['org_creators']:,} pairs in {time.perf_counter() - t0:.1f} s")
    scripts = {}
    for name, text in {
        "constant": LUA_CONST.format(path="/bench/constant", key=info["api_key"]),
        "constant-auth": LUA_CONST.format(path="/bench/constant-auth", key=info["api_key"]),
        "access-hot": LUA.format(
            seed=1,
            max_creator=1 + args.hot,
            key=info["api_key"],
            path="/api/v1/authorization/access?creator=",
        ),
        "access-all": LUA.format(
            seed=2,
            max_creator=1 + info["org_creators"],
            key=info["api_key"],
            path="/api/v1/authorization/access?creator=",
        ),
    }.items():
        p = Path(tempfile.mkstemp(suffix=".lua")[1])
        p.write_text(text)
        scripts[name] = p
    from _http import gunicorn

    def probe(base):
        return urllib.request.Request(
            f"{base}/api/v1/authorization/access?creator=2&scope=all_data",
            headers={"Authorization": f"Api-Key {info['api_key']}"},
        )

    try:
        with gunicorn("bench_access:application", port=args.port, probe=probe) as (base, first):
            print("sample decision:", first.decode())
            _run(base, scripts, args)
    finally:
        for p in scripts.values():
            p.unlink(missing_ok=True)


def _run(base: str, scripts: dict[str, Path], args) -> None:
    """Rounds over every scenario; print best of each and the per-round ratios."""
    from _http import wrk

    results = {name: [] for name in scripts}
    for rnd in range(args.rounds):
        for name, lua in scripts.items():
            rps, p99 = wrk(base + "/", str(lua), seconds=args.seconds, connections=args.connections)
            results[name].append((rps, p99))
            print(f"round {rnd + 1} {name:14}: {rps:8.0f} req/s, p99 {p99}", flush=True)
    best = {k: max(v) for k, v in results.items()}
    print()
    for name, (rps, p99) in best.items():
        print(f"{name:14}: {rps:8.0f} req/s (p99 {p99})")
    for access in ("access-hot", "access-all"):
        for const in ("constant", "constant-auth"):
            # best of each, and the median of each round's back-to-back ratio (the least
            # exposed to load changing between scenarios on a shared machine)
            per_round = [a[0] / c[0] for a, c in zip(results[access], results[const], strict=True)]
            print(
                f"{access} / {const} = {best[access][0] / best[const][0]:.2f} best of each,"
                f" {statistics.median(per_round):.2f} median per round (target >= 0.7)"
            )


if __name__ == "__main__":
    main()
