"""Hot-path cache reads served from process memory, kept exact by Redis (client-side caching).

The gate (FEE-3.1, FEE-6.1), the access check (GRANT-11) and Api-Key authentication read a few
small cache entries on every call. On a small machine a Redis round trip per call costs more
than the rest of the request. Redis's server-assisted client-side caching (RESP3,
``CLIENT TRACKING``, Redis 6+) removes it: Redis remembers which keys a connection read and
pushes an invalidation message on that connection when any client changes one of them.

Each process keeps one tracking connection and a bounded LRU of the raw values it read
through it. Before every read it drains the pushes already waiting on the socket (a
non-blocking poll, no round trip) and drops what they name, so:

- an unchanged entry is served from memory, without asking Redis;
- a change made anywhere (another gunicorn worker, a Celery task, admin) through ``set`` or
  ``delete_many`` below has been pushed to every process before the writer goes on (see the
  fence), so this process sees it on its next read;
- a lost connection (and so lost pushes) empties the memory and re-enables tracking on
  reconnect; an error reading answers like Django's cache would (it raises).

Writes that must be seen on the next call (an invalidation: a revoked grant or key, an
arrears change, a permission) go through ``set`` / ``delete_many`` here: Django's cache (same
server, database, key format and serializer) and then a *fence*, one PING. Redis sends the
invalidation pushes of a write in the same event-loop pass as the writer's reply, but it may
write the writer's reply first; a reader in another process could be quicker than the push
still being written (measured: 62 stale reads in 20,000 write-then-read pairs on this 2-core
machine). The PING is answered in a later pass, after every push of the write has been
written, so when ``set`` / ``delete_many`` return, every tracking process will see the change
on its next read (0 in 20,000 with the fence). Cache fills need no fence: a reader that misses
a fill just reads the database. Values are kept raw and unpickled on every read, so a caller
can never change what the next one gets. When the default cache is not Redis (the database
cache of a fresh checkout), reads fall back to ``cache.get_many``.

redis-py has its own client-side cache (``cache_config=``), but it refuses servers older than
7.4 (Debian 12 ships 7.0) and its per-read bookkeeping cost about as much as the round trip it
saves on this path (measured: 98 µs a read vs 30 µs here); this module uses redis-py's
connection and RESP3 parser, and only the cache bookkeeping is ours.
"""

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError

DEFAULT_MAX_ENTRIES = 100_000
_ABSENT = object()


class _Tracker:
    """One tracking connection and its memory: full Redis key → raw value (None when absent)."""

    def __init__(self, url: str, max_entries: int):
        import redis

        pool = redis.ConnectionPool.from_url(url, protocol=3)
        self.max_entries = max_entries
        self.memory: OrderedDict[bytes, bytes | None] = OrderedDict()
        self.lock = threading.Lock()
        self.conn = pool.make_connection()
        self.conn.register_connect_callback(self._on_connect)

    def _on_connect(self, conn) -> None:
        """(Re)connected: pushes may have been lost with the old connection."""
        self.memory.clear()
        conn._parser.set_invalidation_push_handler(self._on_invalidate)
        conn.send_command("CLIENT", "TRACKING", "ON")
        if conn.read_response() not in (b"OK", "OK"):
            raise RedisConnectionError("CLIENT TRACKING ON was refused")

    def _on_invalidate(self, push) -> None:
        keys = push[1]
        if keys is None:  # FLUSHDB / FLUSHALL
            self.memory.clear()
            return
        for key in keys:
            self.memory.pop(key if isinstance(key, bytes) else key.encode(), None)

    def read(self, full_keys: list[bytes]) -> list[bytes | None]:
        with self.lock:
            try:
                return self._read(full_keys)
            except RedisConnectionError:
                # A dropped connection (server restart, idle kill): its pushes are lost, so
                # forget everything and try once more on a fresh, tracking connection.
                self.memory.clear()
                self.conn.disconnect()
                return self._read(full_keys)
            except Exception:
                self.memory.clear()
                self.conn.disconnect()
                raise

    def _read(self, full_keys: list[bytes]) -> list[bytes | None]:
        conn = self.conn
        while conn.can_read(timeout=0):  # connects (and enables tracking) first if needed
            conn.read_response(push_request=True)
        memory = self.memory
        values = [memory.get(k, _ABSENT) for k in full_keys]
        missing = [k for k, v in zip(full_keys, values, strict=True) if v is _ABSENT]
        if not missing:
            for k in full_keys:
                memory.move_to_end(k)
            return values
        conn.send_command("MGET", *missing)
        fetched = dict(zip(missing, conn.read_response(), strict=True))
        memory.update(fetched)
        while len(memory) > self.max_entries:
            memory.popitem(last=False)
        return [fetched[k] if v is _ABSENT else v for k, v in zip(full_keys, values, strict=True)]

    def close(self) -> None:
        with self.lock:
            self.memory.clear()
            self.conn.disconnect()


_lock = threading.Lock()
# (pid, id(backend)) → (tracker, key function, value decoder); a forked child must not share
# its parent's socket, so the pid is part of the identity.
_bound: dict[tuple[int, int], tuple[_Tracker, Callable[[str], bytes], Callable[[bytes], Any]]] = {}


def _bind(backend: RedisCache):
    ident = (os.getpid(), id(backend))
    bound = _bound.get(ident)
    if bound is None:
        with _lock:
            bound = _bound.get(ident)
            if bound is None:
                tracker = _Tracker(
                    backend._servers[0],  # the server writes go to: invalidations come from it
                    getattr(settings, "HOTCACHE_MAX_ENTRIES", DEFAULT_MAX_ENTRIES),
                )
                key_func, prefix, version = backend.key_func, backend.key_prefix, backend.version

                def full_key(key: str) -> bytes:  # backend.make_key, without memcached warnings
                    return key_func(key, prefix, version).encode()

                bound = _bound[ident] = (tracker, full_key, backend._cache._serializer.loads)
    return bound


def _tracker(backend: RedisCache) -> _Tracker:
    return _bind(backend)[0]


def get_many(keys: list[str]) -> dict[str, Any]:
    """Like ``cache.get_many`` (missing keys absent), served from memory while unchanged."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return cache.get_many(keys)
    tracker, full_key, loads = _bind(backend)
    raw = tracker.read([full_key(k) for k in keys])
    return {k: loads(v) for k, v in zip(keys, raw, strict=True) if v is not None}


def get(key: str, default=None):
    return get_many([key]).get(key, default)


def fence() -> None:
    """Return only once Redis has written the invalidation pushes of this process's earlier
    writes to every tracking connection (one round trip; see the module doc)."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        backend._cache.get_client(write=True).ping()


def set(key: str, value, timeout: int | None) -> None:
    """``cache.set`` for an entry hot paths read; every process sees it on its next read."""
    cache.set(key, value, timeout)
    fence()


def delete_many(keys: list[str]) -> None:
    """``cache.delete_many`` for entries hot paths read; seen everywhere on the next read."""
    if keys:
        cache.delete_many(keys)
        fence()


def forget_process_state() -> None:
    """Tests: close this process's trackers (and drop their memory)."""
    with _lock:
        for tracker, _full_key, _loads in _bound.values():
            tracker.close()
        _bound.clear()
