"""Which signing of a session this is (21 CFR Part 11 §11.200(a)(1)).

The first signing in a continuous session asks for both identification components, the user ID
and the password; later signings in the same session ask for the password only. After a
successful signing the session remembers who signed fully; a sign-in (a new session, or the
same person signing in again) forgets it, so the next signing asks for the user ID again. A
signing with no session at all (a management command, a task) is never a later one: it always
needs both."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

SESSION_KEY = "signoffs_full_signing_by"


def _session(request: HttpRequest | None):
    return getattr(request, "session", None) if request is not None else None


def signing_needs_user_id(request: HttpRequest | None, user: Any) -> bool:
    """True when this signing is the first of the session for ``user``."""
    session = _session(request)
    return session is None or session.get(SESSION_KEY) != user.pk


def signing_session_mark(request: HttpRequest | None, user: Any) -> None:
    """Record that ``user`` signed with user ID and password in this session."""
    session = _session(request)
    if session is not None:
        session[SESSION_KEY] = user.pk


def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """A sign-in starts anew: Django keeps the session's data when the same person signs in
    again, so the mark is removed here."""
    session = _session(request)
    if session is not None:
        session.pop(SESSION_KEY, None)
