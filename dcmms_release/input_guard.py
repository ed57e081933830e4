"""A request carrying a value the portal cannot use answers 400 Bad Request, never 500 (issue #14
point 11; docs/security.md §2d).

- **NUL characters** are refused before any view runs: in the path, or in any name or value of
  the query string or of a form (not in uploaded files: the importer refuses those itself,
  naming the line). PostgreSQL cannot store or compare text containing NUL, so a filter
  (``?status__exact=x%00``) or an autocomplete search (``term=a%00``) carrying one ended in a
  500; no page or link of the portal sends one.
- **A value that is not one of the field it is compared with** — a foreign key that is not an
  integer (``?release__id__exact=abc``, an add form's ``?release=abc`` looked up by its
  autocomplete widget, ``_selected_action=abc`` posted to an action), an integer past the
  database's range — makes Django raise while it builds or runs the query. Those exceptions,
  and only those, are answered 400 when they escape a view: ``ValueError`` / ``TypeError`` with
  Django's "Field '…' expected a number but got …", ``ValidationError`` (a date, decimal or
  UUID that is none), ``OverflowError`` (SQLite's integer range) and ``DataError`` (a value the
  database refused). Any other exception stays a 500 with its incident id.

A changelist filter Django itself finds wrong (``IncorrectLookupParameters``) is turned into the
same 400 by ``checklist.admin_base.AuditedAdmin.get_changelist_instance`` (Django's admin would
redirect to the unfiltered list, silently dropping the filter). Each 400 is logged as a warning
(``django.request``) with the path and the reason, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.core.exceptions import BadRequest, ValidationError
from django.core.handlers.exception import response_for_exception
from django.db import DataError
from django.http import HttpRequest, HttpResponse, QueryDict

NUL = "\x00"
# Django's message when a lookup value cannot be converted to an integer or float field's type
# (django.db.models.fields: IntegerField / FloatField.get_prep_value).
_NOT_A_NUMBER = re.compile(r"Field '[^']*' expected a number but got ")


def nul_refusal(request: HttpRequest) -> str | None:
    """Where the request carries a NUL character (None: it does not)."""
    if NUL in request.path_info:
        return "the path"
    sources: list[tuple[str, QueryDict]] = [("the query string", request.GET)]
    if request.method == "POST":
        sources.append(("the form", request.POST))
    for where, values in sources:
        for name, items in values.lists():
            if NUL in name or any(NUL in item for item in items):
                return where
    return None


def is_bad_value(exception: BaseException) -> bool:
    """Did Django refuse a value from the request, rather than fail on its own?"""
    if isinstance(exception, ValidationError | OverflowError | DataError):
        return True
    return isinstance(exception, ValueError | TypeError) and bool(
        _NOT_A_NUMBER.match(str(exception))
    )


def bad_request(request: HttpRequest, reason: str) -> HttpResponse:
    """Django's 400 answer (``handler400``, logged as a warning), for ``reason``."""
    return response_for_exception(request, BadRequest(reason))


class BadInputMiddleware:
    """400 for a request carrying NUL, and for a view that failed on a value it was sent."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = nul_refusal(request)
        if where is not None:
            return bad_request(request, f"Bad request: a NUL character in {where}")
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_bad_value(exception):
            return None
        return bad_request(
            request, f"Bad request: a value the view cannot use ({type(exception).__name__})"
        )


__all__ = ["BadInputMiddleware", "bad_request", "is_bad_value", "nul_refusal"]
