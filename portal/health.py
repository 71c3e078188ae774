"""Health of the things the portal cannot work without: database, broker, migrations."""

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def check_database() -> str | None:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
    except Exception as exc:  # any failure means "down"; the message says which
        return f"database unreachable: {exc.__class__.__name__}"
    return None


def check_migrations() -> str | None:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return f"cannot read migrations: {exc.__class__.__name__}"
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        return f"{len(plan)} unapplied migration(s): {names}"
    return None


def check_broker() -> str | None:
    from kombu import Connection

    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=2,
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"broker unreachable ({_safe(settings.CELERY_BROKER_URL)}): {exc.__class__.__name__}"
    return None


def _safe(url: str) -> str:
    """Broker URL without credentials."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


CHECKS = {"database": check_database, "broker": check_broker, "migrations": check_migrations}


def health_report() -> tuple[bool, dict]:
    results = {}
    db_problem = None
    for name, check in CHECKS.items():
        if name == "migrations" and db_problem:
            results[name] = "unknown: database down"
            continue
        problem = check()
        if name == "database":
            db_problem = problem
        results[name] = problem or "ok"
    healthy = all(v == "ok" for v in results.values())
    return healthy, results
