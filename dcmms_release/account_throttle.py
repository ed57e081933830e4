"""Failed sign-ins counted per account, from every address (issue #14, point 14).

django-axes locks out one username *from one address* after 5 failures (``LockoutBackend``).
A guesser with many addresses is not slowed by it: 80 wrong passwords from 20 addresses (4
each) locked nobody out, and the right password then worked. This module counts the failures
of each **account** across all addresses and answers them with a progressive delay, not a
lockout, so that nobody can keep the CEO out before a go/no-go:

- Every failed password check counts: the sign-in page, the signing password
  (``signoffs.services._check_password``), any call of ``authenticate()`` with a request.
- After ``ACCOUNT_THROTTLE_FAILURES`` (10) failures, with no pause of
  ``ACCOUNT_THROTTLE_WINDOW`` (1 h) between them, each further attempt for the account waits:
  ``ACCOUNT_THROTTLE_BASE_DELAY`` (1 s) after the 10th failure, then 2, 4, 8 … s, never more
  than ``ACCOUNT_THROTTLE_MAX_DELAY`` (15 min). An attempt before its time is refused before
  its password is checked (``AccountThrottleBackend``; 429 with ``Retry-After`` from
  ``AccountThrottleMiddleware``) and is no failure itself, neither here nor for axes
  (``refused_before_password``). Nothing sleeps: the refusal is the delay.
- When the time has come, one attempt takes the turn (an atomic claim): a burst of guesses
  sent at that moment gets one of them checked.
- A successful sign-in, or signing, ends the delay and forgets the count.
- A browser that signed in to the account before carries a signed cookie naming it (for
  ``ACCOUNT_THROTTLE_KNOWN_BROWSER_DAYS``) and is not held by the account's delay, so an
  attacker elsewhere cannot keep the owner out. It stays under axes (username + address), and
  its own failures count: after ``ACCOUNT_THROTTLE_FAILURES`` of them it waits like any other.
- The delay starting is the alarm: an ``account_attack`` audit event and one mail to
  ``SECURITY_ALERT_EMAIL`` (``account_alerts``), once per attack, for a name that is an account.

Counted in Django's cache (Redis: shared by every process); while the cache is down, per
process (``cache_guard``). The time comes from ``throttle.clock`` (tests replace it).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from .cache_guard import (
    cache_delete,
    cache_get,
    cache_set,
    counter_incr,
    counter_touch,
    counters_get,
)

THROTTLED = "dcmms_account_throttled"  # request attribute: seconds the refused attempt must wait
KNOWN_BROWSER = "_dcmms_known_browser"  # request attribute: the account to remember the browser for
COOKIE_SALT = "dcmms_release.account_throttle.known_browser"
ADDRESSES_KEPT = 20
TURN_SECONDS = 30  # a turn taken by an attempt whose outcome never came is free again after this


class AccountThrottled(PermissionDenied):
    """An attempt refused before its password was checked: the account's delay is running."""


def account_digest(username: str) -> str:
    """The cache's name for an account (a name as typed: one that names nobody is counted too,
    so the answers never tell which accounts exist)."""
    return hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:32]


def cookie_name() -> str:
    """``__Host-`` in production, like the session cookie (plain over local http)."""
    return ("__Host-" if settings.SESSION_COOKIE_NAME.startswith("__Host-") else "") + (
        "dcmms_browser"
    )


def _key(digest: str, part: str) -> str:
    return f"acct:{digest}:{part}"


class AccountThrottle:
    """The per-account count and delay; ``clock`` gives seconds since the epoch."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    @staticmethod
    def delay_after(failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure of a window (0 before the limit)."""
        free = settings.ACCOUNT_THROTTLE_FAILURES
        if failures < free:
            return 0.0
        doubling = settings.ACCOUNT_THROTTLE_BASE_DELAY * 2 ** min(failures - free, 40)
        return float(min(settings.ACCOUNT_THROTTLE_MAX_DELAY, doubling))

    @staticmethod
    def _ttl() -> int:
        return int(settings.ACCOUNT_THROTTLE_WINDOW) + 60

    def _stored(self, username: str) -> tuple[dict[str, Any], bool]:
        """The stored window and whether it is over (a whole window passed without a failure)."""
        stored = cache_get(_key(account_digest(username), "state"), local=True) or {}
        over = bool(stored) and self.clock() - stored["last_at"] > settings.ACCOUNT_THROTTLE_WINDOW
        return stored, over

    def state(self, username: str) -> dict[str, Any]:
        """The account's current window: first and last failure, next allowed time, addresses."""
        stored, over = self._stored(username)
        return {} if over else stored

    def wait(self, username: str, request: HttpRequest | None = None) -> int:
        """Seconds before an attempt for ``username`` may have its password checked; 0: now.
        At the allowed time one attempt takes the turn; the others wait for its outcome."""
        state = self.state(username)
        next_at = state.get("next_at")
        if not next_at or self.known_browser(request, username):
            return 0
        now = self.clock()
        if now < next_at:
            return max(1, math.ceil(next_at - now))
        turn = _key(account_digest(username), f"turn:{int(next_at * 1000)}")
        return 0 if counter_incr(turn, timeout=TURN_SECONDS) == 1 else 1

    def failed(self, username: str, request: HttpRequest | None) -> None:
        """Count one failed password check for ``username``; start or lengthen the delay, and
        raise the alarm once when the delay starts."""
        from .security import client_ip

        digest, now, ttl = account_digest(username), self.clock(), self._ttl()
        state, over = self._stored(username)
        if over:  # a new window: the old count and alarm are forgotten (their keys expire
            # by themselves a minute later; deleting only then keeps concurrent first
            # failures of a new account from wiping each other's count)
            state = {}
            cache_delete(_key(digest, "failures"), _key(digest, "alarm"))
        failures = counter_incr(_key(digest, "failures"), timeout=ttl)
        counter_touch(_key(digest, "failures"), timeout=ttl)
        state.setdefault("first_at", now)
        state["last_at"] = now
        addresses = state.setdefault("addresses", [])
        address = client_ip(request)
        if address and address not in addresses and len(addresses) < ADDRESSES_KEPT:
            addresses.append(address)
        delay = self.delay_after(failures)
        if delay:
            state["next_at"] = max(state.get("next_at", 0.0), now + delay)
        cache_set(_key(digest, "state"), state, timeout=ttl, local=True)
        nonce = self._browser_nonce(request, digest)
        if nonce:
            counter_incr(_key(digest, f"browser:{nonce}"), timeout=ttl)
        if not delay:
            return
        if counter_incr(_key(digest, "alarm"), timeout=ttl) == 1:
            from .account_alerts import attack_alert

            attack_alert(username=username, request=request, failures=failures, state=state)
        else:
            counter_touch(_key(digest, "alarm"), timeout=ttl)

    def succeeded(self, username: str) -> None:
        """The right password: the delay and the count end (the alarm may ring again)."""
        digest = account_digest(username)
        parts = ("state", "failures", "alarm")
        cache_delete(*(_key(digest, part) for part in parts))

    # ------------------------------------------------------------ known browsers
    @staticmethod
    def _browser_nonce(request: HttpRequest | None, digest: str) -> str | None:
        if request is None or not hasattr(request, "get_signed_cookie"):
            return None
        max_age = settings.ACCOUNT_THROTTLE_KNOWN_BROWSER_DAYS * 86400
        value = request.get_signed_cookie(
            cookie_name(), default=None, salt=COOKIE_SALT, max_age=max_age
        )
        account, _, nonce = (value or "").partition(":")
        return nonce if account == digest and nonce else None

    def known_browser(self, request: HttpRequest | None, username: str) -> bool:
        """The request comes from a browser that signed in to ``username`` before and has
        failed fewer than ``ACCOUNT_THROTTLE_FAILURES`` times in this window."""
        digest = account_digest(username)
        nonce = self._browser_nonce(request, digest)
        if nonce is None:
            return False
        key = _key(digest, f"browser:{nonce}")
        return counters_get([key])[key] < settings.ACCOUNT_THROTTLE_FAILURES


throttle = AccountThrottle()


# ---------------------------------------------------------------- authentication
class AccountThrottleBackend:
    """Second in ``AUTHENTICATION_BACKENDS`` (after axes' ``LockoutBackend``): refuses an
    attempt whose account is waiting, before any backend checks its password. Like
    ``LockoutBackend``, it abstains for a call without a request (code on the server)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None or username is None:
            return None
        wait = throttle.wait(str(username), request)
        if wait:
            setattr(request, THROTTLED, wait)
            raise AccountThrottled(f"Too many failed sign-ins for this account: wait {wait} s.")
        return None

    # No get_user(): this backend signs nobody in, and Django's force_login() would otherwise
    # pick it (the first backend with get_user) and store it in the session.


def wait_text(seconds: int) -> str:
    """``1 second``, ``900 seconds``: how long, for the refusal's message."""
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def throttled_for(request: HttpRequest | None) -> int | None:
    """Seconds the request's refused attempt must wait, or None when it was not refused."""
    return getattr(request, THROTTLED, None) if request is not None else None


def refused_before_password(request: HttpRequest, credentials: dict | None) -> bool:
    """``AXES_WHITELIST_CALLABLE``: an attempt this throttle refused before its password was
    checked guessed nothing, so axes does not count it against the username and address (the
    owner trying during the delay is not locked out for it)."""
    return bool(throttled_for(request))


class AccountThrottleMiddleware:
    """A request whose sign-in attempt was refused by the throttle is answered 429 with
    ``Retry-After`` (whatever page made it: the sign-in page, the sign page); a request that
    signed in gets the known-browser cookie. Next to axes' middleware in ``MIDDLEWARE``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        wait = throttled_for(request)
        if wait:
            response = HttpResponse(
                f"Too many failed sign-ins for this account. Try again in {wait_text(wait)}.\n",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(wait)
        digest = getattr(request, KNOWN_BROWSER, None)
        if digest:
            response.set_signed_cookie(
                cookie_name(),
                f"{digest}:{secrets.token_urlsafe(12)}",
                salt=COOKIE_SALT,
                max_age=settings.ACCOUNT_THROTTLE_KNOWN_BROWSER_DAYS * 86400,
                path="/",
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response


# ---------------------------------------------------------------- receivers
def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    """A failed password check counts, unless the password was never checked: refused here
    (the delay) or by axes (a locked-out username and address). No request: code on the
    server, not a guess."""
    if request is None or throttled_for(request) or getattr(request, "axes_locked_out", False):
        return
    typed = credentials.get("username") or credentials.get(get_user_model().USERNAME_FIELD)
    if typed:
        throttle.failed(str(typed), request)


def _on_logged_in(sender, request, user, **kwargs) -> None:
    throttle.succeeded(user.get_username())
    if request is not None:
        setattr(request, KNOWN_BROWSER, account_digest(user.get_username()))


def connect() -> None:
    """Called once from ``ChecklistConfig.ready()``, next to the audit receivers."""
    user_login_failed.connect(_on_login_failed, dispatch_uid="dcmms_account_throttle_failed")
    user_logged_in.connect(_on_logged_in, dispatch_uid="dcmms_account_throttle_login")
