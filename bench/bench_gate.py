"""Gate checks per second over HTTP (FEE-3.1, FEE-6.1) vs a view that returns a constant.

Usage (own database and Redis db; needs wrk: apt-get install -y wrk):
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_b2 CACHE_URL=redis://127.0.0.1:6379/3 \
        .venv/bin/python bench/bench_gate.py --seconds 20 --connections 16

Starts gunicorn (2 sync workers, loopback only) on this module's ``application``: the portal
with one extra URL, ``/bench/constant``, a plain Django view behind the same middleware that
returns a fixed decision. wrk POSTs the same JSON body with the gateway token to both; the
gate's request is a value-added API called out of cloud by an app holding the permission, so
every check reads app, API, permission and arrears (all cached in Redis after the first call).
Rounds alternate constant/gate; the best of each is kept (the machine is shared).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
TOKEN = os.environ.setdefault("BILLING_GATEWAY_TOKEN", "bench-gateway-token")


# --- the WSGI app gunicorn serves -----------------------------------------------------------------


def constant_view(request):
    from django.http import JsonResponse

    return JsonResponse({"allow": True, "code": None, "message": "", "tier": "value_added"})


def _urlpatterns():
    from django.urls import include, path
    from django.views.decorators.csrf import csrf_exempt

    return [path("bench/constant", csrf_exempt(constant_view)), path("", include("portal.urls"))]


def __getattr__(name):  # lazy: importing this module must not set Django up
    if name == "urlpatterns":
        return _urlpatterns()
    if name == "application":
        import django
        from django.conf import settings

        django.setup()
        settings.ROOT_URLCONF = "bench_gate"
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()
    raise AttributeError(name)


# --- the benchmark ---------------------------------------------------------------------------------

LUA = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""


def setup() -> dict:
    import django

    django.setup()
    from _db import ensure_database
    from django.core.cache import cache
    from django.core.management import call_command

    from billing.models import Api, App, OutOfCloudPermission
    from billing.services import metering as svc
    from portal.models import Organization

    ensure_database()
    call_command("migrate", verbosity=0)
    org, _ = Organization.objects.get_or_create(name="bench-gate-org", defaults={"kind": "service_provider"})
    api = Api.objects.filter(code="bench.gate.va").first() or svc.api_create(
        code="bench.gate.va", tier="value_added"
    )
    app = App.objects.filter(name="bench-gate-app").first()
    if app is None:
        app, _raw = svc.app_create_for_organization(organization_id=org.id, name="bench-gate-app")
    if not OutOfCloudPermission.objects.filter(app=app, api=api).exists():
        svc.permission_grant(app=app, api=api)
    cache.clear()
    return {"app_key": app.app_key, "api": api.code, "location": "out_of_cloud"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    body = setup()
    lua_path = Path(tempfile.mkstemp(suffix=".lua")[1])
    lua_path.write_text(LUA.format(body=json.dumps(body), token=TOKEN))

    def probe(base):
        return urllib.request.Request(
            f"{base}/api/v1/billing/gate",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )

    from _http import gunicorn

    try:
        with gunicorn("bench_gate:application", port=args.port, probe=probe) as (base, first):
            _run(base, json.loads(first), lua_path, args)
    finally:
        lua_path.unlink(missing_ok=True)


def _run(base: str, decision: dict, lua_path: Path, args) -> None:
    """Alternate rounds of the constant view and the gate; print best and per-round ratios."""
    from _http import wrk

    assert decision["allow"] is True, decision
    results = {"constant": [], "gate": []}
    for rnd in range(args.rounds):
        for name, path in (("constant", "/bench/constant"), ("gate", "/api/v1/billing/gate")):
            rps, p99 = wrk(base + path, str(lua_path), seconds=args.seconds, connections=args.connections)
            results[name].append((rps, p99))
            print(f"round {rnd + 1} {name:8}: {rps:8.0f} req/s, p99 {p99}")
    best = {k: max(v) for k, v in results.items()}
    print(f"\nconstant view: {best['constant'][0]:.0f} req/s (p99 {best['constant'][1]})")
    print(f"gate         : {best['gate'][0]:.0f} req/s (p99 {best['gate'][1]})")
    print(f"gate / constant = {best['gate'][0] / best['constant'][0]:.2f} best of each (target >= 0.7)")
    # Each round's pair ran back to back: its ratio is the least exposed to load changes.
    pairs = sorted(g[0] / c[0] for g, c in zip(results["gate"], results["constant"], strict=True))
    print(f"per-round ratios {[round(r, 2) for r in pairs]}; median {statistics.median(pairs):.2f}")


if __name__ == "__main__":
    main()
