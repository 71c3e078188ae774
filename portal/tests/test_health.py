"""/healthz: database, broker and pending migrations; 503 naming what is down."""

import pytest
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from portal import health
from portal.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_healthz_ok_when_everything_is_up(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200, resp.json()
    assert resp.json() == {"status": "ok", "down": []}


def test_healthz_tells_only_staff_why_a_part_is_down(client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        anonymous = client.get("/healthz").json()
        client.force_login(UserFactory(is_staff=True))
        staff = client.get("/healthz").json()
    assert anonymous == {"status": "fail", "down": ["broker"]}  # no host, no error text
    assert staff["checks"]["database"] == "ok" and "127.0.0.1:1" in staff["checks"]["broker"]


def test_healthz_names_a_broker_that_is_down(client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.json()["down"] == ["broker"]


def test_healthz_names_a_database_that_is_down(client, monkeypatch):
    def broken():
        raise OSError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", broken)
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert "database" in resp.json()["down"]


def test_healthz_names_pending_migrations(client, monkeypatch):
    real_plan = MigrationExecutor.migration_plan

    def plan_with_one_pending(self, targets, clean_start=False):
        loader_graph = self.loader.graph
        node = loader_graph.leaf_nodes()[0]
        return [(self.loader.get_migration(*node), False), *real_plan(self, targets, clean_start)]

    monkeypatch.setattr(MigrationExecutor, "migration_plan", plan_with_one_pending)
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.json()["down"] == ["migrations"]
    client.force_login(UserFactory(is_staff=True))
    assert "unapplied" in client.get("/healthz").json()["checks"]["migrations"]
