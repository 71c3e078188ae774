"""Shared by the benchmark scripts: each uses its own database, named by DATABASE_URL."""


def ensure_database() -> None:
    """Create the benchmark database if it does not exist yet (Django must be set up)."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    name = params.pop("dbname")
    params = {k: v for k, v in params.items() if k in ("host", "port", "user", "password")}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
