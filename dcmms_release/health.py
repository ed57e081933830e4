"""``/health/`` for the load balancer: is the database, the cache and the broker reachable?

It answers 200 with ``{"status": "ok", ...}`` or 503 naming which check failed, and reveals
nothing else (no versions, hosts, error texts or settings). Anonymous, not rate-limited, and
exempt from the TLS redirect so the balancer can probe the backend directly.

It answers within ``HEALTH_TIMEOUT`` seconds (2) whatever hangs: the cache and broker checks run
in threads of their own while the database check runs in the request, and a check that has not
answered by then is "fail". A check still running from an earlier probe is not started again
(it is "fail" too), so probes of a hung broker never pile up threads: at most one per check.
The checks themselves are bounded too (socket timeouts), so such a thread ends."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger("dcmms_release.health")


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone()[0] != 1:
            raise RuntimeError("unexpected answer")


def check_cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    try:
        if cache.get(key) != "1":
            raise RuntimeError("cache did not return the value written")
    finally:
        cache.delete(key)


def check_broker() -> None:
    """Open (and close) one connection to the broker with short timeouts: to connect and, on
    Redis, for each answer (a broker that accepts and never answers)."""
    from kombu import Connection

    timeout = settings.HEALTH_BROKER_TIMEOUT
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {})
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout)
    with Connection(
        settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=timeout
    ) as conn:
        conn.ensure_connection(max_retries=0, timeout=timeout)  # one attempt, no sleep to retry


CHECKS = {"database": check_database, "cache": check_cache, "broker": check_broker}
IN_REQUEST = ("database",)  # the request's own connection; the others run in threads

_running: dict[str, threading.Thread] = {}  # the thread of each check, while it runs
_running_lock = threading.Lock()


def _outcome(name: str, check: Callable[[], None]) -> str:
    try:
        check()
    except Exception:  # noqa: BLE001 — any failure means "not healthy"; details go to the log
        logger.exception("Health check %s failed", name)
        return "fail"
    return "ok"


def _start(name: str, check: Callable[[], None]) -> tuple[threading.Thread, dict] | None:
    """Run the check in a thread of its own; None when the one from an earlier probe is still
    running (never two threads for one check)."""
    box: dict[str, str] = {}
    backend = caches[DEFAULT_CACHE_ALIAS]  # a thread's own would open a new Redis pool each time

    def run() -> None:
        caches[DEFAULT_CACHE_ALIAS] = backend
        try:
            box["result"] = _outcome(name, check)
        finally:
            with _running_lock:
                if _running.get(name) is threading.current_thread():
                    del _running[name]

    with _running_lock:
        if name in _running:
            return None
        thread = threading.Thread(target=run, name=f"health-{name}", daemon=True)
        _running[name] = thread
    thread.start()
    return thread, box


def run_checks(timeout: float) -> dict[str, str]:
    """Each check's "ok" or "fail", within ``timeout`` seconds (plus the database's own)."""
    deadline = time.monotonic() + timeout
    started = {
        name: _start(name, check) for name, check in CHECKS.items() if name not in IN_REQUEST
    }
    results = {name: _outcome(name, CHECKS[name]) for name in IN_REQUEST if name in CHECKS}
    for name, running in started.items():
        if running is None:
            logger.error("Health check %s: the previous one has not answered yet", name)
            results[name] = "fail"
            continue
        thread, box = running
        thread.join(max(0.0, deadline - time.monotonic()))
        if "result" not in box:
            logger.error("Health check %s did not answer within %.1f s", name, timeout)
        results[name] = box.get("result", "fail")
    return {name: results[name] for name in CHECKS}


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    results = run_checks(settings.HEALTH_TIMEOUT)
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "fail", "checks": results}, status=200 if healthy else 503
    )
