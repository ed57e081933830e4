"""A request a page makes by itself — the import job page polling its status — is not a person's
activity: its session is not saved, although ``SESSION_SAVE_EVERY_REQUEST`` saves every other.

So the poll neither extends the idle timeout (an open progress page does not keep a session
alive), nor writes to the database: on SQLite every write waits for the one writer, and a
worker's import holds that lock for its whole transaction, so a saving poll would see no progress
until the import ended (issue #14, point 10). The view marks its request with
``mark_passive(request)``; a session the request changed is saved as usual.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

_PASSIVE = "_dcmms_passive_session"


def mark_passive(request: HttpRequest) -> None:
    setattr(request, _PASSIVE, True)


def _unsaved(must_create: bool = False) -> None:
    """The session's save() on a passive request: nothing is written."""


class PassiveSessionMiddleware:
    """Right after Django's SessionMiddleware (so it answers first): on a passive request whose
    session was not changed, the session is not saved when that middleware finishes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if getattr(request, _PASSIVE, False) and session is not None and not session.modified:
            session.save = _unsaved
        return response
