"""Web-layer security controls (docs/security.md maps each to its requirement and its test).

- ``SessionLifetimeMiddleware``: a session ends 12 hours after sign-in however active it is
  (Django only has the 30-minute idle limit, ``SESSION_COOKIE_AGE`` renewed by each request).
- ``RateLimitMiddleware``: at most ``RATE_LIMIT_PER_MINUTE`` requests in any 60 seconds (a
  sliding window, ``ratelimit``) per signed-in user (per client address when anonymous); the
  next one gets 429 with ``Retry-After``. Counted
  in Django's cache, so several workers share the count when the cache is Redis; while the
  cache is down, counted per process (``cache_guard``), so the portal keeps serving.
- ``NoStoreMiddleware``: pages served to a signed-in user are never stored by a browser or proxy.
- ``DeniedAuditMiddleware``: every refused write (403, or 404 for an object not granted) is one
  ``permission_denied`` audit event (``checklist.audit.audit_denied``).
- ``server_error`` / ``permission_denied``: a generic error page carrying an incident id that
  is also in the log; a refused request is recorded as a ``permission_denied`` audit event.
- ``MaximumLengthValidator``: passwords up to at least 64 characters are accepted (ASVS 2.1.2);
  longer than the limit is refused rather than silently truncated.
- ``Argon2idHasher``: Argon2id with OWASP's minimum parameters (m=19 MiB, t=2, p=1).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils.cache import add_never_cache_headers
from django.views import defaults

from .ratelimit import rate_limit_hit

logger = logging.getLogger("dcmms_release.security")

AUTH_AT_KEY = "_dcmms_auth_at"
EXEMPT_PATHS = ("/health/",)


def client_ip(request: HttpRequest | None) -> str | None:
    """The address the request came from (REMOTE_ADDR; a TLS proxy must set it correctly)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def mark_session_start(request: HttpRequest | None) -> None:
    """Called at sign-in: the absolute lifetime counts from here."""
    if request is not None and hasattr(request, "session"):
        request.session[AUTH_AT_KEY] = int(time.time())


class SessionLifetimeMiddleware:
    """A signed-in session older than ``SESSION_ABSOLUTE_SECONDS`` is ended: the request goes on
    as anonymous (the admin then asks for a fresh sign-in) and the expiry is audited."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            started = request.session.get(AUTH_AT_KEY)
            now = int(time.time())
            if started is None:
                request.session[AUTH_AT_KEY] = now
            elif now - int(started) >= settings.SESSION_ABSOLUTE_SECONDS:
                from checklist.audit import audit_record

                audit_record(
                    "session_expired",
                    request=request,
                    actor=user,
                    detail={"signed_in_seconds": now - int(started)},
                )
                request.session.flush()
                request.user = AnonymousUser()
        return self.get_response(request)


class RateLimitMiddleware:
    """At most ``RATE_LIMIT_PER_MINUTE`` requests in any 60 seconds per user (a sliding
    window, ``dcmms_release.ratelimit``); other users have their own counters. ``clock`` is
    the time source (tests replace it)."""

    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in EXEMPT_PATHS:
            return self.get_response(request)
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        who = f"u{user.pk}" if signed_in else f"ip{client_ip(request)}"
        limit = settings.RATE_LIMIT_PER_MINUTE
        verdict = rate_limit_hit(who, limit=limit, now=self.clock())
        if not verdict.allowed:
            if verdict.first_refusal:
                from checklist.audit import audit_record

                audit_record("rate_limited", request=request, detail={"limit_per_minute": limit})
            response = HttpResponse(
                "Too many requests. Please wait a minute and try again.\n",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(verdict.retry_after)
            return response
        return self.get_response(request)


class NoStoreMiddleware:
    """``Cache-Control: no-store`` (and private, no-cache) on every response to a signed-in user."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


def refused_admin_action(request: HttpRequest) -> str | None:
    """The admin action a changelist POST asked for that the user may not use (Django offers
    it only to those with its permission and answers anyone else "No action selected",
    changing nothing): its name, else None."""
    match = getattr(request, "resolver_match", None)
    model_admin = getattr(getattr(match, "func", None), "model_admin", None)
    if request.method != "POST" or model_admin is None:
        return None
    if not (match.url_name or "").endswith("_changelist"):
        return None
    try:
        name = request.POST.getlist("action")[int(request.POST.get("index", 0))]
    except (IndexError, ValueError):
        return None
    defined = {entry[1] for entry in model_admin._get_base_actions()}
    if name in defined and name not in model_admin.get_actions(request):
        return name
    return None


class DeniedAuditMiddleware:
    """Every refused write is one ``permission_denied`` audit event (checklist.audit): the
    refusal a view or service recorded with ``audit_denied`` (written here, after the refused
    transaction rolled back), an admin action the user may not use, else any
    POST/PUT/PATCH/DELETE answered 403, or 404 by a named route (an object not granted answers
    like a missing one; a GET 404 is a typo, not an event). Last in MIDDLEWARE, inside axes, so
    a lockout answer is not counted as a refusal."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from checklist.audit import WRITE_METHODS, audit_denied, audit_denied_flush

        request._dcmms_denied_watched = True
        response = self.get_response(request)
        action = refused_admin_action(request)
        if action is not None:
            audit_denied(request, reason="Admin action not allowed.", detail={"action": action})
        status = None
        if request.method in WRITE_METHODS and response.status_code in (403, 404):
            match = getattr(request, "resolver_match", None)
            if response.status_code == 403 or (match is not None and match.url_name):
                status = response.status_code
        if status is not None:
            reason = "No such object, or not granted to this user." if status == 404 else ""
            audit_denied(request, reason=reason)
        audit_denied_flush(request, status=response.status_code)
        return response


# ---------------------------------------------------------------- error pages
def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """A generic page: no stack trace, no settings, only an incident id that the log repeats."""
    incident = uuid.uuid4().hex[:12]
    logger.error("Incident %s: server error on %s %s", incident, request.method, request.path)
    body = loader.get_template(template_name).render({"incident_id": incident})
    response = HttpResponse(body, status=500)
    response["X-Incident-Id"] = incident
    return response


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 403 page, after recording who was refused what (once per request, with the
    refusal's own message as the reason)."""
    from checklist.audit import audit_denied

    audit_denied(request, reason=str(exception or ""), detail={"status": 403})
    return defaults.permission_denied(request, exception)


# ---------------------------------------------------------------- passwords
class Argon2idHasher(Argon2PasswordHasher):
    """Argon2id at the OWASP Password Storage Cheat Sheet's minimum configuration: 19 MiB of
    memory, 2 iterations, 1 degree of parallelism. Django's own defaults (100 MiB, 2, 8) made
    each sign-in cost about 0.27 s of both cores and 100 MiB, so a burst of sign-ins stalled
    every other request (issue #8). The algorithm name stays ``argon2``: hashes made with other
    parameters still verify, and Django re-hashes them with these at the next sign-in."""

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1


class MaximumLengthValidator:
    """Passwords of up to ``max_length`` characters (at least 64, ASVS 2.1.2) are accepted."""

    def __init__(self, max_length: int = 128):
        if max_length < 64:
            raise ValueError("The maximum password length must allow at least 64 characters.")
        self.max_length = max_length

    def validate(self, password: str, user=None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                "This password is too long: at most %(max_length)d characters.",
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self) -> str:
        return f"Your password can be up to {self.max_length} characters long."


# ---------------------------------------------------------------- lockout backend
class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, first in ``AUTHENTICATION_BACKENDS``. Every web sign-in and
    every signing password re-entry passes its request, so the lockout (username + client
    address) applies to both. A call with no request at all comes from code on the server
    (a management command, a test), not from a client; it has no address to key a lockout on,
    so this backend abstains and the password check proceeds."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
