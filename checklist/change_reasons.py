"""Why each change was made: the history's change reason (21 CFR Part 11 §11.10(e) — the audit
trail records who, when, what and why).

Every write path names its reason: the services (``Status set to At risk``, ``Review opened``),
the import (``Imported from …``), and the admin, whose edit forms carry a "Reason for change"
(``checklist.admin_reason``). When the release is under review (in review, or decided) the
person must give one; in a draft it may be left empty and a readable default is recorded
(``Changed in the admin: status, actual value``).

A write path that forgot its reason (a shell, a future path, a row deleted by cascade) is caught
by one backstop: a ``pre_create_historical_record`` receiver that derives the reason from the
record itself — ``Added``, ``Changed: status, actual value``, ``Deleted`` — so the history never
shows an empty reason. A caller can name the reason of everything written inside a block
(``default_reason``), e.g. the rows a deletion cascades to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Model
from simple_history.signals import pre_create_historical_record
from simple_history.utils import get_m2m_reverse_field_name

from .choices import ReleaseStatus

REASON_REQUIRED = (
    "A reason for change is required while the release is under review: say why this "
    "change is made."
)
NOTHING_CHANGED = "Saved without changes"

_default: ContextVar[str | None] = ContextVar("change_reason_default", default=None)


# ---------------------------------------------------------------- the rule
def change_reason_required(*, release: Any) -> bool:
    """A change to a release under review (in review, or decided) must say why; a draft's
    changes may rely on the recorded default."""
    return release is not None and release.status != ReleaseStatus.DRAFT


def change_reason_refusals(*, releases: Iterable[Any], reason: str) -> list[str]:
    """Why a change with this reason may not be saved: empty when it may. ``releases`` are the
    ones the change touches (the row's release before and after the change)."""
    if (reason or "").strip():
        return []
    if any(change_reason_required(release=release) for release in releases):
        return [REASON_REQUIRED]
    return []


def is_no_change(reason: str | None) -> bool:
    """A reason that says nothing beyond "saved": empty, or the default of a save that changed
    nothing. Readers listing changes may leave such a record out."""
    return not (reason or "").strip() or reason.startswith(NOTHING_CHANGED)


# ---------------------------------------------------------------- readable defaults
def field_label(model: type[Model], name: str) -> str:
    """A field as a reader names it: its verbose name ("actual value"), else its name."""
    try:
        return str(model._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name.replace("_", " ")


def reason_text(verb: str, *, fields: Iterable[str] = ()) -> str:
    """``Changed in the admin: status, actual value``; the verb alone when no field is named."""
    named = list(dict.fromkeys(fields))
    return f"{verb}: {', '.join(named)}" if named else verb


@contextmanager
def default_reason(reason: str) -> Iterator[None]:
    """Everything written inside the block without a reason of its own is recorded with
    ``reason`` (e.g. the rows a deletion cascades to), instead of a derived one."""
    token = _default.set(reason)
    try:
        yield
    finally:
        _default.reset(token)


# ---------------------------------------------------------------- the backstop
def _value(field: Any, record: Any) -> Any:
    """A field's value as stored ("450" and Decimal("450.000000") are one value)."""
    value = getattr(record, field.attname)
    try:
        return field.to_python(value)
    except ValidationError:
        return value


def derived_reason(history_instance: Any, instance: Model) -> str:
    """What a history record says happened, in words: ``Added``, ``Deleted``, ``Changed:
    <fields>`` (compared with the record before it, links included), or ``Saved without
    changes``."""
    if history_instance.history_type == "+":
        return "Added"
    if history_instance.history_type == "-":
        return "Deleted"
    previous = history_instance.prev_record
    if previous is None:
        return "Changed"
    model = type(instance)
    changed = [
        field_label(model, field.name)
        for field in history_instance.tracked_fields
        if _value(field, previous) != _value(field, history_instance)
    ]
    for field in getattr(history_instance, "_history_m2m_fields", ()):
        # The record's own link rows are written after it: compare the live links with the
        # links of the record before.
        target = get_m2m_reverse_field_name(field)
        before = set(getattr(previous, field.name).values_list(target, flat=True))
        now = set(getattr(instance, field.name).values_list("pk", flat=True))
        if before != now:
            changed.append(field_label(model, field.name))
    return reason_text("Changed", fields=changed) if changed else NOTHING_CHANGED


def fill_missing_reason(sender, instance: Model, history_instance: Any, **kwargs: Any) -> None:
    """The backstop: a history record about to be written without a reason gets the block's
    default (``default_reason``) or one derived from the record."""
    if (history_instance.history_change_reason or "").strip():
        return
    history_instance.history_change_reason = _default.get() or derived_reason(
        history_instance, instance
    )


def connect() -> None:
    """Called once from ChecklistConfig.ready()."""
    pre_create_historical_record.connect(fill_missing_reason, dispatch_uid="change-reason")
