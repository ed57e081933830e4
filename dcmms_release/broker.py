"""Queueing a task from a request, bounded in time (issue #14, point 7).

A request that queues work (after its transaction commits: ``transaction.on_commit``) must never
wait on the broker longer than a short bound, and never fail because the broker is down or hung:
the work is already committed, the queuing is a side effect. The bound comes from the settings
(``BROKER_TIMEOUT``: the connection timeout, the Redis transport's socket timeouts and one
publish retry); this helper is the one place that turns every way a broker can fail into
kombu's ``OperationalError``, and logs how long the failed attempt took.

Callers keep their own policy for a failure: ``signoffs.records.record_enqueue`` records it on
the decision record (beat renders it later), ``signoffs.reminder_tasks.enqueue`` logs and goes
on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kombu.exceptions import KombuError, OperationalError

logger = logging.getLogger("dcmms_release.broker")

try:  # the Redis transport can let redis-py's own errors through
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover — redis-py is a dependency (celery[redis])
    RedisError = OSError

BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, RedisError, OSError)


def publish(task: Any, *args: Any, **kwargs: Any) -> Any:
    """``task.delay(*args, **kwargs)`` within the configured bound. Raises kombu's
    ``OperationalError`` (the broker is unreachable, refused, or did not answer in time)."""
    started = time.monotonic()
    try:
        return task.delay(*args, **kwargs)
    except BROKER_ERRORS as error:
        elapsed = time.monotonic() - started
        logger.warning("Broker: %s not queued after %.1f s (%s)", task.name, elapsed, error)
        if isinstance(error, OperationalError):
            raise
        raise OperationalError(f"{type(error).__name__}: {error}") from error
