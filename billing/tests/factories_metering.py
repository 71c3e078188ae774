"""Factories and helpers for the metering side (Billing II)."""

import contextlib
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import factory
from django.db import transaction
from django.utils import timezone
from factory.django import DjangoModelFactory

from billing.models import TIER_HISTORY_START, Api, ApiPrice, ApiTierChange, App, Discount
from portal.tests.factories import OrganizationFactory

SH = ZoneInfo("Asia/Shanghai")


class ApiFactory(DjangoModelFactory):
    class Meta:
        model = Api

    code = factory.Sequence(lambda n: f"api.m{n}")
    tier = Api.Tier.BASIC

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Like ``api_create``: the API and its tier history's first row (in force from before
        any usage) in one transaction; the database refuses an API without it at commit."""
        with transaction.atomic():
            api = super()._create(model_class, *args, **kwargs)
            ApiTierChange.objects.create(api=api, tier=api.tier, effective_from=TIER_HISTORY_START)
        return api


class ApiPriceFactory(DjangoModelFactory):
    class Meta:
        model = ApiPrice

    api = factory.SubFactory(ApiFactory)
    price_fen_per_1000 = 100
    effective_from = dt.date(2023, 1, 1)


class AppFactory(DjangoModelFactory):
    class Meta:
        model = App

    organization = factory.SubFactory(OrganizationFactory, kind="service_provider")
    name = factory.Sequence(lambda n: f"应用{n}")
    app_key = factory.Sequence(lambda n: f"akt{n:08d}")
    secret_hash = factory.LazyFunction(lambda: App.hash_secret("test-secret"))


class DiscountFactory(DjangoModelFactory):
    class Meta:
        model = Discount

    app = factory.SubFactory(AppFactory)
    rate = "0.2000"
    valid_from = dt.date(2023, 1, 1)
    valid_to = dt.date(2030, 12, 31)


def paid_api(
    price_fen_per_1000: int = 100, tier: str = Api.Tier.BASIC, since=dt.date(2023, 1, 1), **kw
) -> Api:
    api = ApiFactory(tier=tier, **kw)
    ApiPriceFactory(api=api, price_fen_per_1000=price_fen_per_1000, effective_from=since)
    return api


def sh(y, m, d, h=0) -> dt.datetime:
    """An hour in Asia/Shanghai."""
    return dt.datetime(y, m, d, h, tzinfo=SH)


def record_usage(rows, batch_id: str | None = None):
    """rows: (app, api, location, hour datetime, calls) → through the real ingest path."""
    from billing.services.usage import usage_record_rows

    result = usage_record_rows(
        rows=[(a.app_key, x.code, loc, hour, calls) for a, x, loc, hour, calls in rows],
        batch_id=batch_id or uuid.uuid4().hex,
    )
    assert result.rows_rejected == 0, result.errors
    return result


def top_up(organization, amount_fen: int):
    from billing.services.wallet import wallet_credit_top_up
    from billing.tests.factories_wallet import TopUpOrderFactory

    order = TopUpOrderFactory(
        organization=organization, amount_fen=amount_fen, state="paid", paid_at=timezone.now()
    )
    return wallet_credit_top_up(order=order)


def race_two_batches(send_a, send_b) -> dict:
    """Batch A runs ``send_a()`` inside a transaction it holds open; batch B runs ``send_b()``
    on another connection until it waits on one of A's locks; then A commits. Returns
    {"a": A's result, "b": B's result, or the code of the BillingConflict B raised}."""
    import threading

    from django.db import connection, transaction

    from billing.errors import BillingConflict

    a_loaded, a_commit = threading.Event(), threading.Event()
    pids, results = set(), {}

    def batch_a():
        try:
            with transaction.atomic():
                results["a"] = send_a()
                a_loaded.set()
                a_commit.wait(30)
        finally:
            connection.close()

    def batch_b():
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pids.add(cur.fetchone()[0])
            results["b"] = send_b()
        except BillingConflict as exc:
            results["b"] = exc.code
        finally:
            connection.close()

    def b_waits_on_a_lock() -> bool:
        with connection.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            return bool(pids & {r[0] for r in cur.fetchall()})

    ta = threading.Thread(target=batch_a)
    ta.start()
    assert a_loaded.wait(30), "batch A never loaded"
    tb = threading.Thread(target=batch_b)
    tb.start()
    for _ in range(300):
        if b_waits_on_a_lock():
            break
        threading.Event().wait(0.05)
    else:
        a_commit.set()
        raise AssertionError("batch B never waited for batch A")
    a_commit.set()
    ta.join(30)
    tb.join(30)
    return results


@contextlib.contextmanager
def other_session():
    """A second PostgreSQL session beside the test's own (its transaction rolled back at exit)."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as other:
        yield other
        other.rollback()


@contextlib.contextmanager
def while_a_month_is_planned(lock_timeout: str = "300ms"):
    """Another session holds the planning side (shared) of the price lock; lock waits in this
    session give up after ``lock_timeout`` instead of hanging the test."""
    from django.db import connection

    from billing.locks_metering import NS_PRICES

    with other_session() as planner:
        planner.execute("SELECT pg_advisory_xact_lock_shared(%s, 0)", [NS_PRICES])
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = %s", [lock_timeout])
        try:
            yield
        finally:
            with connection.cursor() as cur:
                cur.execute("RESET lock_timeout")
