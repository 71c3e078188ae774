"""Celery is configured for at-least-once delivery that never loses a task."""

from django.conf import settings

from portal.celery import app


def test_celery_runs_late_acks_with_prefetch_one_and_time_limits():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.timezone == "Asia/Shanghai"
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert not conf.task_always_eager


def test_redis_visibility_timeout_outlasts_the_longest_task():
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "tests run on the real Redis broker"
    assert app.conf.broker_transport_options["visibility_timeout"] > app.conf.task_time_limit


def test_a_task_round_trips_through_the_real_redis_broker():
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL) as conn:
        queue = conn.SimpleQueue("portal-test-roundtrip")
        queue.put({"ping": 1})
        msg = queue.get(timeout=5)
        msg.ack()
        queue.close()
    assert msg.payload == {"ping": 1}
