"""The portal keeps serving when its cache is down (issue #14, point 6).

Django's cache is an optimisation and a shared counter, never a record: a Redis that is down or
hung must not turn every request into a 500. Three helpers wrap the calls the portal makes:

- ``counter_incr(key, timeout)``: the rate limit's counter (``security.RateLimitMiddleware``).
  From the cache when it answers (all processes share the count); while it does not, from a
  counter in this process, so the limit still applies per process ("fails open" to a smaller
  scope, never to no limit).
- ``cache_get`` / ``cache_set``: a read that fails is a miss, a write that fails is skipped.

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

    def incr(self, key: str, timeout: float) -> int:
        now = time.monotonic()
        with self._lock:
            if len(self._counts) >= LOCAL_COUNTERS_MAX:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, expires = self._counts.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + timeout
            self._counts[key] = (count + 1, expires)
            return count + 1

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


outage = _Outage()
local_counters = _LocalCounters()


def _shared_incr(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


def counter_incr(key: str, *, timeout: int) -> int:
    """Add one to the counter ``key`` (created with ``timeout`` seconds to live) and return it:
    shared in the cache, or in this process while the cache is down."""
    if not outage.skip():
        try:
            count = _shared_incr(key, timeout)
        except CACHE_ERRORS as error:
            outage.failed(error)
        else:
            outage.succeeded()
            return count
    return local_counters.incr(key, timeout)


def cache_get(key: str, default: Any = None) -> Any:
    """``cache.get``; ``default`` (a miss) while the cache is down."""
    if outage.skip():
        return default
    try:
        value = cache.get(key, default)
    except CACHE_ERRORS as error:
        outage.failed(error)
        return default
    outage.succeeded()
    return value


def cache_set(key: str, value: Any, *, timeout: int | None) -> bool:
    """``cache.set``; False (nothing kept) while the cache is down."""
    if outage.skip():
        return False
    try:
        cache.set(key, value, timeout=timeout)
    except CACHE_ERRORS as error:
        outage.failed(error)
        return False
    outage.succeeded()
    return True


def reset() -> None:
    """Forget an outage and the per-process counters (tests; a process that starts afresh)."""
    with outage._lock:
        outage.since, outage.retry_at = None, 0.0
    local_counters.clear()
