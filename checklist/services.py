"""Writes to the checklist that carry a rule: each one locks what it decides on, validates, names
who made the change and why in the audit history, and saves row by row so that every change is
recorded (never ``QuerySet.update()``, which writes no history)."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from .choices import ItemStatus
from .models import Item, Release
from .permissions import require_edit_items


def _status_label(status: str) -> str:
    return ItemStatus(status).label


def _check_item_status(status: str) -> None:
    if status not in ItemStatus.values:
        raise ValidationError({"status": f"Unknown item status: {status!r}."})


def _apply_item_status(
    *, item: Item, status: str, user: AbstractBaseUser | None, reason: str
) -> bool:
    """Set one locked item's status; False (and nothing written) when it already had it."""
    if item.status == status:
        return False
    item.status = status
    # The document's checkbox follows the status: ticked exactly when the item is complete.
    item.checked = status == ItemStatus.COMPLETE
    item.full_clean()
    item._change_reason = reason or f"Status set to {_status_label(status)}"
    item._history_user = user
    item.save()
    return True


def _with_releases(items: list[Item]) -> None:
    """Attach each item's release, read once per release (not joined into the row lock: the
    release rows are not ours to lock here)."""
    releases = Release.objects.in_bulk({item.release_id for item in items})
    for item in items:
        item.release = releases[item.release_id]


@transaction.atomic
def item_set_status(
    *, item: Item, status: str, user: AbstractBaseUser | None, reason: str = ""
) -> Item:
    """Set an item's status (one of the legend's five states) as ``user``.

    The row is locked and re-read before the change, so the status is set on the current row,
    not on a stale copy. The checkbox is ticked exactly when the status is complete. The change
    is recorded in the item's history with ``user`` and ``reason`` (default: "Status set to
    <label>"). Setting the status an item already has writes nothing. Only a manager of the
    item's release, or the item's owner, may do it (``user`` None: the system, never from a web
    request); anyone else is refused and nothing is written.
    """
    _check_item_status(status)
    locked = Item.objects.select_for_update().get(pk=item.pk)
    _with_releases([locked])
    require_edit_items(user, [locked], action=f"Set status to {_status_label(status)}")
    _apply_item_status(item=locked, status=status, user=user, reason=reason)
    return locked


@transaction.atomic
def items_set_status(
    *,
    items: Iterable[Item],
    status: str,
    user: AbstractBaseUser | None,
    reason: str = "",
) -> list[Item]:
    """Set the status of several items at once, all or nothing, as ``user``.

    Every row is locked (in primary-key order, so two bulk changes cannot deadlock) and saved on
    its own, so each item gets its own history entry with ``user`` and ``reason``. If any item
    fails validation nothing is changed. Each item must be one ``user`` may change (a manager of
    its release, or its owner); if any is not, all are refused and nothing is changed, whatever
    view sent them. Returns the items whose status actually changed.
    """
    _check_item_status(status)
    if isinstance(items, QuerySet):
        pks = list(items.values_list("pk", flat=True))
    else:
        pks = [item.pk for item in items]
    locked = list(Item.objects.select_for_update().filter(pk__in=set(pks)).order_by("pk"))
    _with_releases(locked)
    require_edit_items(user, locked, action=f"Mark {_status_label(status).lower()}")
    changed = []
    for item in locked:
        try:
            if _apply_item_status(item=item, status=status, user=user, reason=reason):
                changed.append(item)
        except ValidationError as error:
            label = str(item) or f"Item #{item.pk}"
            raise ValidationError(f"{label}: {'; '.join(error.messages)}") from error
    return changed
