"""The portal keeps serving when its cache is down (issue #14, point 6).

Django's cache is an optimisation and a shared counter, never a record: a Redis that is down or
hung must not turn every request into a 500. Three helpers wrap the calls the portal makes:

- ``counter_incr(key, timeout)``: the rate limit's counter (``security.RateLimitMiddleware``).
  From the cache when it answers (all processes share the count); while it does not, from a
  counter in this process, so the limit still applies per process ("fails open" to a smaller
  scope, never to no limit).
- ``counters_get(keys)``, ``counter_touch(key, timeout)``: the rate limit's earlier buckets
  and the account throttle's counters (``ratelimit``, ``account_throttle``), the same way.
- ``cache_get`` / ``cache_set``: a read that fails is a miss, a write that fails is skipped; with
  ``local=True`` the value is kept in this process while the cache is down (the account
  throttle's state). ``cache_delete`` forgets keys in both places.

A failure starts an *outage*: it is logged once (a warning), not once per request, and for
``CACHE_RETRY_SECONDS`` the cache is not asked at all, so a cache that hangs costs one request
per process at most its socket timeout (``CACHE_TIMEOUT``, settings) in each such interval. The
first call that succeeds after it ends the outage and logs that the cache is back. ``/health/``
asks the cache itself and reports it down (``dcmms_release.health``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("dcmms_release.cache")

try:  # Django's Redis backend raises redis-py's errors, which are not OSErrors
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover — redis-py is a dependency (celery[redis])
    RedisError = OSError

CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)
LOCAL_COUNTERS_MAX = 10_000  # keys kept per process before expired ones are dropped


class _Outage:
    """Whether the cache failed recently in this process; logs the start and the end once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None  # monotonic time of the first failure
        self.retry_at = 0.0

    def skip(self) -> bool:
        """True while the cache should not be asked (a failure less than the retry delay ago)."""
        return self.since is not None and time.monotonic() < self.retry_at

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self.retry_at = now + settings.CACHE_RETRY_SECONDS
            if self.since is not None:
                return
            self.since = now
        logger.warning(
            "Cache unreachable (%s: %s): serving without it, rate limit counted per process; "
            "asking it again every %s s",
            type(error).__name__,
            error,
            settings.CACHE_RETRY_SECONDS,
        )

    def succeeded(self) -> None:
        if self.since is None:
            return
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            logger.info("Cache reachable again after %.0f s", time.monotonic() - since)


class _LocalCounters:
    """Per-process counters with an expiry, for while the cache is down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def incr(self, key: str, timeout: float, delta: int = 1) -> int:
        now = time.monotonic()
        with self._lock:
            if len(self._counts) >= LOCAL_COUNTERS_MAX:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, expires = self._counts.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + timeout
            self._counts[key] = (count + delta, expires)
            return count + delta

    def get(self, key: str) -> int:
        count, expires = self._counts.get(key, (0, 0.0))
        return count if expires > time.monotonic() else 0

    def touch(self, key: str, timeout: float) -> None:
        with self._lock:
            if key in self._counts:
                self._counts[key] = (self._counts[key][0], time.monotonic() + timeout)

    def delete(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


class _LocalValues:
    """Per-process values with an expiry, for while the cache is down (``local=True``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[Any, float]] = {}

    def get(self, key: str, default: Any = None) -> Any:
        value, expires = self._values.get(key, (default, 0.0))
        return value if expires > time.monotonic() else default

    def set(self, key: str, value: Any, timeout: float | None) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._values) >= LOCAL_COUNTERS_MAX:
                self._values = {k: v for k, v in self._values.items() if v[1] > now}
            self._values[key] = (value, now + (timeout if timeout is not None else 86400))

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


outage = _Outage()
local_counters = _LocalCounters()
local_values = _LocalValues()
_UNAVAILABLE = object()


def _shared(call, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)`` on the cache, or ``_UNAVAILABLE`` while it is down."""
    if outage.skip():
        return _UNAVAILABLE
    try:
        result = call(*args, **kwargs)
    except CACHE_ERRORS as error:
        outage.failed(error)
        return _UNAVAILABLE
    outage.succeeded()
    return result


def _shared_incr(key: str, timeout: int, delta: int = 1) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key, delta)
    except ValueError:  # evicted between add and incr
        cache.set(key, delta, timeout=timeout)
        return delta


def counter_incr(key: str, *, timeout: int, delta: int = 1) -> int:
    """Add ``delta`` (one) to the counter ``key`` (created with ``timeout`` seconds to live) and
    return it: shared in the cache, or in this process while the cache is down."""
    count = _shared(_shared_incr, key, timeout, delta)
    return local_counters.incr(key, timeout, delta) if count is _UNAVAILABLE else count


def counters_get(keys: list[str]) -> dict[str, int]:
    """The counters ``keys`` (0 for one that does not exist): from the cache, or this
    process's own while the cache is down."""
    found = _shared(cache.get_many, keys)
    if found is _UNAVAILABLE:
        return {key: local_counters.get(key) for key in keys}
    return {key: int(found.get(key) or 0) for key in keys}


def counter_touch(key: str, *, timeout: int) -> None:
    """Let the counter ``key`` live ``timeout`` seconds from now."""
    if _shared(cache.touch, key, timeout) is _UNAVAILABLE:
        local_counters.touch(key, timeout)


def cache_get(key: str, default: Any = None, *, local: bool = False) -> Any:
    """``cache.get``; while the cache is down ``default`` (a miss), or with ``local`` the value
    this process set meanwhile."""
    value = _shared(cache.get, key, default)
    if value is _UNAVAILABLE:
        return local_values.get(key, default) if local else default
    return value


def cache_set(key: str, value: Any, *, timeout: int | None, local: bool = False) -> bool:
    """``cache.set``; False while the cache is down (nothing kept, or with ``local`` kept in
    this process only)."""
    if _shared(cache.set, key, value, timeout=timeout) is _UNAVAILABLE:
        if local:
            local_values.set(key, value, timeout)
        return False
    return True


def cache_delete(*keys: str) -> None:
    """Forget ``keys``: values and counters, in the cache and in this process."""
    _shared(cache.delete_many, list(keys))
    for key in keys:
        local_counters.delete(key)
        local_values.delete(key)


def reset() -> None:
    """Forget an outage and the per-process counters (tests; a process that starts afresh)."""
    with outage._lock:
        outage.since, outage.retry_at = None, 0.0
    local_counters.clear()
    local_values.clear()
