"""portal.hotcache: hot-path reads from process memory, never stale after a change elsewhere.

Real Redis (scripts/test points CACHE_URL at it). "Another process" is any other Redis
connection: Django's cache client here, a forked process in one test.
"""

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from portal import hotcache


@pytest.fixture(autouse=True)
def _fresh_clients():
    assert isinstance(caches["default"], RedisCache), "these tests need CACHE_URL=redis://…"
    hotcache.forget_process_state()
    yield
    hotcache.forget_process_state()


def test_unchanged_entry_is_served_from_memory(redis_commands_sent):
    cache.set("hot:a", {"v": 1})
    assert hotcache.get("hot:a") == {"v": 1}
    redis_commands_sent.clear()

    for _ in range(5):
        assert hotcache.get("hot:a") == {"v": 1}

    assert redis_commands_sent == []  # no round trip while the key is unchanged


def _write_elsewhere(op, *args):
    """A write through Django's own cache connection, then the fence a writer owes its
    readers (``hotcache.fence``): without it the read below may run before Redis has sent the
    invalidation push, which the fenced-write test shows happens under load."""
    op(*args)
    hotcache.fence()


def test_a_change_through_another_connection_is_seen_on_the_next_read():
    _write_elsewhere(cache.set, "hot:b", "old")
    assert hotcache.get_many(["hot:b", "hot:missing"]) == {"hot:b": "old"}

    _write_elsewhere(cache.set, "hot:b", "new")
    assert hotcache.get_many(["hot:b", "hot:missing"]) == {"hot:b": "new"}

    _write_elsewhere(cache.set, "hot:missing", 7)  # a key read while absent is tracked too
    assert hotcache.get_many(["hot:b", "hot:missing"]) == {"hot:b": "new", "hot:missing": 7}

    _write_elsewhere(cache.delete, "hot:b")
    assert hotcache.get("hot:b") is None


def test_a_fenced_write_is_seen_by_the_very_next_read_every_time():
    """Redis may write the writer's reply before the invalidation push to a tracking reader;
    without the fence, about 1 in 400 reads right after a write was stale on this machine."""
    stale = 0
    for i in range(3000):
        hotcache.set("hot:fence", i, 60)
        stale += hotcache.get("hot:fence") != i
    hotcache.delete_many(["hot:fence"])
    stale += hotcache.get("hot:fence") is not None
    assert stale == 0


def test_a_change_made_by_another_process_is_seen_on_the_next_read(cache_set_from_another_process):
    cache.set("hot:proc", 1)
    assert hotcache.get("hot:proc") == 1

    cache_set_from_another_process("hot:proc", 2)
    hotcache.fence()  # that process has exited; one round trip from here fences its write

    assert hotcache.get("hot:proc") == 2


def test_clearing_the_cache_empties_process_memory():
    cache.set("hot:c", 1)
    assert hotcache.get("hot:c") == 1

    cache.clear()

    assert hotcache.get("hot:c") is None


def test_an_invalidation_drops_only_the_reads_that_involve_that_key(redis_commands_sent):
    cache.set_many({"hot:x": 1, "hot:y": 2})
    assert hotcache.get_many(["hot:x", "hot:y"]) == {"hot:x": 1, "hot:y": 2}
    assert hotcache.get("hot:y") == 2

    _write_elsewhere(cache.set, "hot:x", 10)
    redis_commands_sent.clear()

    assert hotcache.get("hot:y") == 2  # untouched: still from memory
    assert redis_commands_sent == []
    assert hotcache.get_many(["hot:x", "hot:y"]) == {"hot:x": 10, "hot:y": 2}
    assert len(redis_commands_sent) == 1


def test_memory_is_bounded_and_evicted_reads_still_answer_correctly(settings):
    settings.HOTCACHE_MAX_ENTRIES = 10
    for i in range(40):
        cache.set(f"hot:n{i}", i)
        assert hotcache.get(f"hot:n{i}") == i

    assert len(hotcache._tracker(caches["default"]).memory) == 10

    cache.set("hot:n0", "changed")  # evicted long ago: read again from Redis
    assert hotcache.get("hot:n0") == "changed"
    _write_elsewhere(cache.set, "hot:n39", "changed too")  # still in memory: invalidated
    assert hotcache.get("hot:n39") == "changed too"


def test_a_lost_connection_empties_memory_and_tracking_resumes():
    cache.set("hot:r", 1)
    assert hotcache.get("hot:r") == 1
    tracker = hotcache._tracker(caches["default"])
    cache._cache.get_client(write=True).client_kill_filter(_id=tracker.conn._sock and _client_id(tracker))

    cache.set("hot:r", 2)  # its push went to the killed connection
    assert hotcache.get("hot:r") == 2
    _write_elsewhere(cache.set, "hot:r", 3)  # tracking is on again on the new connection
    assert hotcache.get("hot:r") == 3


def _client_id(tracker):
    tracker.conn.send_command("CLIENT", "ID")
    return tracker.conn.read_response()


def test_without_redis_reads_fall_back_to_the_configured_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from django.core.cache import caches as fresh_caches

    try:
        fresh_caches["default"].set("hot:local", 3)
        assert hotcache.get("hot:local") == 3
    finally:
        fresh_caches["default"].clear()
