"""Optimistic locking of the rows people edit: no lost update (issue #14, point 5).

The version of a row is its latest history entry (simple-history's ``history_id``). Every save,
on every path (admin forms, actions, services, imports, the sign page), writes one, so "changed
since version V" is "has a history entry newer than V". No model field holds the version and
nothing in this module writes.

- ``row_version(obj)``: the version of the row now (0 while it has no history entry).
- ``changes_since(obj, version)``: the history entries written after ``version``, newest first.
- ``stale_edit_refusals(obj, version)``: why an edit opened at ``version`` may not be saved now —
  who changed the row, when and why — or an empty list when nothing changed since.
- ``row_lock(obj)``: locks the row until the caller's transaction ends, so that the answer of
  ``stale_edit_refusals`` stays true until the caller's save commits (a second save of the same
  row waits, then sees the first one's entry and is refused).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max, Model, QuerySet
from django.utils import timezone
from django.utils.text import Truncator

NOT_VERIFIED = (
    "This page's version could not be verified: reload the page and make your change again; "
    "nothing was saved."
)
GONE = "This row was deleted since you opened this page; nothing was saved."
NO_USER = "the system (no user recorded)"


def _history(obj: Model) -> QuerySet:
    """The row's own history entries (simple-history's manager, bound to the instance)."""
    return getattr(obj, obj._meta.simple_history_manager_attribute).all()


def row_version(obj: Model) -> int:
    """The row's version: the ``history_id`` of its latest history entry, 0 without one."""
    return _history(obj).aggregate(version=Max("history_id"))["version"] or 0


def changes_since(obj: Model, version: int) -> list[Any]:
    """The row's history entries written after ``version``, newest first, with their user."""
    entries = _history(obj).filter(history_id__gt=version).select_related("history_user")
    return list(entries.order_by("-history_id"))


def _when(entry: Any) -> str:
    moment = timezone.localtime(entry.history_date)
    return f"at {moment:%H:%M} {moment.tzname()} on {moment:%Y-%m-%d}"


def _who(entry: Any) -> str:
    user = entry.history_user
    return user.get_username() if user is not None else NO_USER


def _why(entry: Any) -> str:
    reason = (entry.history_change_reason or "").strip()
    return f"reason: {Truncator(reason).chars(200)}" if reason else "no reason given"


def stale_edit_refusals(*, obj: Model, version: int) -> list[str]:
    """Why an edit of ``obj`` opened when the row was at ``version`` may not be saved: someone
    (or something) changed the row since, and saving would silently overwrite that change. The
    message names who changed it last, when and why. Empty: nothing changed since."""
    changes = changes_since(obj, version)
    if not changes:
        return []
    latest = changes[0]
    earlier = len(changes) - 1
    more = f", and {earlier} earlier change{'s' if earlier > 1 else ''}," if earlier else ""
    their = "their changes" if earlier else "their change"
    return [
        f"Changed by {_who(latest)} {_when(latest)} ({_why(latest)}){more} since you opened "
        f"this page: reload to see {their}; nothing was saved."
    ]


def row_lock(obj: Model) -> bool:
    """Lock the row for the rest of the caller's transaction (required: a lock outside one
    would end at once); False when the row no longer exists."""
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("row_lock needs a transaction.")
    locked = type(obj)._base_manager.select_for_update().filter(pk=obj.pk)
    return bool(list(locked.values_list("pk", flat=True)))
