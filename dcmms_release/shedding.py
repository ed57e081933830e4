"""Load shedding: under overload the portal answers some requests at once with 503 and
``Retry-After`` instead of letting every request wait in a queue until nobody gets an answer in
time (issue #8: at 500 users, shed load with 429/503, never a 500, lose no write).

``LoadSheddingMiddleware`` bounds the requests a process works on at the same time
(``SHED_MAX_IN_FLIGHT``). A request that finds every slot taken waits up to
``SHED_QUEUE_TIMEOUT_MS`` for one; if none frees, it is refused. A request that a proxy stamped
with ``X-Request-Start`` (``t=<epoch seconds, ms or µs>``, as nginx, Heroku and New Relic write
it) and that already waited longer than ``SHED_MAX_QUEUE_AGE_MS`` is refused at once: its user
has most likely given up, and working on it would only delay the requests behind it.

The middleware sits before the session, authentication and every view, so a refused request has
done nothing: no session read, no query, no write. An admitted request always runs to its end;
a write (a signed-in POST) therefore either completes or is refused before anything was written,
never half. ``/health/`` and static files are never refused (the load balancer must see the
process is alive; a page's CSS costs nothing).

Bounding per process needs a server that hands a process more requests than it works on: with
gunicorn, ``gthread`` workers with more threads than ``SHED_MAX_IN_FLIGHT`` (the extra threads
are the bounded waiting room). A sync worker holds one request at a time, so nothing queues in
the process and only ``X-Request-Start`` can shed. ``SHED_MAX_IN_FLIGHT=0`` switches the bound
off. See docs/operations.md.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger("dcmms_release.shedding")

EXEMPT_PATHS = ("/health/",)
BODY = "The portal is busy. Please try again in a few seconds.\n"


def queue_age(request: HttpRequest, now: float | None = None) -> float | None:
    """Seconds since the proxy received the request, from ``X-Request-Start: t=<time>`` (epoch
    seconds with a fraction, milliseconds or microseconds); None when absent or unreadable."""
    header = request.META.get("HTTP_X_REQUEST_START", "").strip()
    if not header:
        return None
    value = header[2:] if header.startswith("t=") else header
    try:
        stamp = float(value)
    except ValueError:
        return None
    if not math.isfinite(stamp) or stamp <= 0:
        return None
    if stamp > 1e14:  # microseconds
        stamp /= 1e6
    elif stamp > 1e11:  # milliseconds
        stamp /= 1e3
    return (time.time() if now is None else now) - stamp


def busy_response(retry_after: int) -> HttpResponse:
    """503 with Retry-After and a short plain body that says nothing about the server."""
    response = HttpResponse(BODY, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response


class LoadSheddingMiddleware:
    """At most ``SHED_MAX_IN_FLIGHT`` requests at once in this process; a request waits up to
    ``SHED_QUEUE_TIMEOUT_MS`` for a slot, else 503. One instance per process (Django builds the
    middleware chain once per handler), so the slots are shared by the process's threads."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.max_in_flight = max(0, int(settings.SHED_MAX_IN_FLIGHT))
        self.queue_timeout = max(0.0, settings.SHED_QUEUE_TIMEOUT_MS / 1000)
        self.max_queue_age = max(0.0, settings.SHED_MAX_QUEUE_AGE_MS / 1000)
        self.retry_after = max(1, int(settings.SHED_RETRY_AFTER_SECONDS))
        self.slots = threading.BoundedSemaphore(self.max_in_flight or 1)
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/") if settings.STATIC_URL else None

    def exempt(self, request: HttpRequest) -> bool:
        path = request.path
        if path in EXEMPT_PATHS:
            return True
        return bool(self.static_prefix and path.startswith(self.static_prefix))

    def refuse(self, request: HttpRequest, why: str) -> HttpResponse:
        logger.warning("Shed %s %s: %s", request.method, request.path[:200], why)
        return busy_response(self.retry_after)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.exempt(request):
            return self.get_response(request)
        age = queue_age(request)
        if age is not None and age > self.max_queue_age:
            return self.refuse(request, f"waited {age * 1000:.0f} ms before reaching the process")
        if not self.max_in_flight:
            return self.get_response(request)
        if not self.slots.acquire(timeout=self.queue_timeout):
            return self.refuse(
                request, f"no free slot of {self.max_in_flight} within {self.queue_timeout}s"
            )
        try:
            return self.get_response(request)
        finally:
            self.slots.release()
