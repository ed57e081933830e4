"""What changed in a release's content, read from its audit history: when, who, what (each field
as ``old → new``, in words) and why. Read-only. Used by the sign page ("what changed since you
last signed"), and meant for the PDF audit excerpt, the reminders and the dashboard.

The content of a release is its own row, its sections, items, risks, action items, sign-off
requirements (with their attestation statements) and GO / NO-GO criteria. Signatures and access
are the record *about* the content and are not listed here.

Queries are bounded by the number of content models, never by the number of changed rows: one
query per model for the records (each annotated with the id of the record before it), one per
model for the previous records not already fetched, one per criterion link table and one per
kind of related object named in a change.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.utils.text import capfirst

from checklist.change_reasons import is_no_change
from checklist.choices import ReleaseStatus
from checklist.models import Item, Release, Section
from checklist.targets import format_number
from risks.models import ActionItem, Risk

from .models import Attestation, Criterion, SignoffRequirement

EMPTY = "—"
SYSTEM = "system"
REVIEW_OPENED_REASON = "Review opened"  # the reason release_open_review records
KINDS = {"+": "added", "~": "changed", "-": "removed"}
# The release's content, in the order a reader meets it (also the tie-break between models).
CONTENT_MODELS: tuple[type[models.Model], ...] = (
    Release,
    Section,
    Item,
    Risk,
    ActionItem,
    SignoffRequirement,
    Attestation,
    Criterion,
)


class FieldChange(NamedTuple):
    """One field of one change, as a reader sees it: ('Status', 'Not started', 'Complete')."""

    field: str
    old: str
    new: str


@dataclass(frozen=True)
class Change:
    """One history record of the release's content."""

    when: datetime.datetime
    who: str
    model: str
    label: str
    kind: str
    fields: tuple[FieldChange, ...]
    reason: str
    model_label: str
    object_id: int
    history_id: int


# ---------------------------------------------------------------- review
def review_opened_at(release: Release) -> datetime.datetime | None:
    """When the release's current review opened: the time of the latest history record of the
    release whose status moved to in review (or that says "Review opened"). None when it was
    never in review. One query."""
    rows = (
        Release.history.filter(id=release.pk)
        .order_by("history_date", "history_id")
        .values_list("history_date", "status", "history_change_reason")
    )
    opened: datetime.datetime | None = None
    previous: str | None = None
    for when, status, reason in rows:
        moved_in = status == ReleaseStatus.IN_REVIEW and previous != ReleaseStatus.IN_REVIEW
        if moved_in or reason == REVIEW_OPENED_REASON:
            opened = when
        previous = status
    return opened


# ---------------------------------------------------------------- records
def _scope(model: type[models.Model], release: Release) -> Q:
    """The history rows of ``model`` that belong to ``release`` (deleted rows included)."""
    if model is Release:
        return Q(id=release.pk)
    if model is Attestation:
        # A historical attestation knows only its requirement; any requirement the release
        # ever had, so that statements of a deleted requirement still show.
        return Q(
            requirement_id__in=SignoffRequirement.history.filter(release_id=release.pk)
            .values("id")
            .distinct()
        )
    return Q(release_id=release.pk)


def _records(
    model: type[models.Model],
    release: Release,
    since: datetime.datetime | None,
    limit: int | None,
) -> list[Any]:
    """The model's history records of the release after ``since``, newest first, each with
    ``prev_history_id``: the object's record just before it (None for its first)."""
    history = model.history.model
    previous = (
        history._default_manager.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id"))
        .order_by("-history_id")
        .values("history_id")[:1]
    )
    queryset = (
        model.history.filter(_scope(model, release))
        .select_related("history_user")
        .annotate(prev_history_id=Subquery(previous))
        .order_by("-history_date", "-history_id")
    )
    if since is not None:
        queryset = queryset.filter(history_date__gt=since)
    if limit is not None:
        queryset = queryset[:limit]
    return list(queryset)


def _diff_fields(model: type[models.Model]) -> list[str]:
    """The fields a person edits (not the derived ones), many-to-many links apart."""
    return [
        field.name
        for field in model._meta.concrete_fields
        if field.editable and not field.primary_key
    ]


def _m2m_fields(model: type[models.Model]) -> list[models.ManyToManyField]:
    return list(getattr(model.history.model, "_history_m2m_fields", []))


def _m2m_sets(
    model: type[models.Model], history_ids: set[int]
) -> dict[str, dict[int, frozenset[int]]]:
    """For each tracked link of ``model``: history id → the linked ids it recorded. One query
    per link table."""
    sets: dict[str, dict[int, frozenset[int]]] = {}
    for field in _m2m_fields(model):
        through = getattr(model.history.model, field.name).model
        target = field.m2m_reverse_field_name()
        linked: dict[int, set[int]] = defaultdict(set)
        rows = through._default_manager.filter(history_id__in=history_ids).values_list(
            "history_id", f"{target}_id"
        )
        for history_id, target_id in rows:
            linked[history_id].add(target_id)
        sets[field.name] = {h: frozenset(linked.get(h, ())) for h in history_ids}
    return sets


# ---------------------------------------------------------------- display
class _Raw(NamedTuple):
    field: models.Field
    old: Any
    new: Any


def _object_label(obj: Any) -> str:
    if isinstance(obj, get_user_model()):
        return obj.get_full_name() or obj.get_username()
    if isinstance(obj, SignoffRequirement):
        return obj.role  # its str() names the release, which costs a query per row
    return str(obj)


def _record_label(model: type[models.Model], record: Any) -> str:
    if model is SignoffRequirement:
        return record.role
    return str(record.instance)


def _who(user: Any) -> str:
    if user is None:
        return SYSTEM
    name = user.get_full_name()
    return f"{name} ({user.get_username()})" if name else user.get_username()


def _related_labels(raws: Iterable[_Raw]) -> dict[tuple[type, Any], str]:
    """Labels of every object a change refers to, one query per kind of object."""
    wanted: dict[type, set[Any]] = defaultdict(set)
    for raw in raws:
        if not raw.field.is_relation:
            continue
        for value in (raw.old, raw.new):
            values = value if isinstance(value, frozenset) else {value}
            wanted[raw.field.related_model].update(v for v in values if v is not None)
    labels: dict[tuple[type, Any], str] = {}
    for model, pks in wanted.items():
        for pk, obj in model._default_manager.in_bulk(pks).items():
            labels[(model, pk)] = _object_label(obj)
    return labels


def _display(field: models.Field, value: Any, labels: dict[tuple[type, Any], str]) -> str:
    if field.many_to_many:
        names = sorted(labels.get((field.related_model, pk), f"#{pk} (deleted)") for pk in value)
        return "; ".join(names) or EMPTY
    if value is None or value == "":
        return EMPTY
    if field.is_relation:
        return labels.get((field.related_model, value), f"#{value} (deleted)")
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Decimal):
        return format_number(value)
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------- the trail
def release_changes_since(
    release: Release, since: datetime.datetime | None, *, limit: int | None = None
) -> list[Change]:
    """The audit trail of the release's content after ``since`` (None: all of it), newest
    first, at most ``limit`` changes. A record that changed nothing and says nothing (a form
    saved as it was) is left out."""
    fetched: dict[type[models.Model], list[Any]] = {
        model: _records(model, release, since, limit) for model in CONTENT_MODELS
    }
    order = {model: position for position, model in enumerate(CONTENT_MODELS)}
    merged = sorted(
        ((model, record) for model, records in fetched.items() for record in records),
        key=lambda pair: (pair[1].history_date, -order[pair[0]], pair[1].history_id),
        reverse=True,
    )
    if limit is not None:
        merged = merged[:limit]

    previous = _previous_records(merged, fetched)
    raws_of: dict[tuple[type[models.Model], int], list[_Raw]] = {}
    for model in CONTENT_MODELS:
        kept = [record for m, record in merged if m is model]
        raws_of.update(_raw_changes(model, kept, previous))
    labels = _related_labels(raw for raws in raws_of.values() for raw in raws)

    changes = []
    for model, record in merged:
        raws = raws_of[(model, record.history_id)]
        kind = KINDS.get(record.history_type, record.history_type)
        reason = record.history_change_reason or ""
        compared = (model, record.prev_history_id) in previous
        if kind == "changed" and compared and not raws and is_no_change(reason):
            continue
        changes.append(
            Change(
                when=record.history_date,
                who=_who(record.history_user),
                model=str(model._meta.verbose_name),
                label=_record_label(model, record),
                kind=kind,
                fields=tuple(
                    FieldChange(
                        capfirst(str(raw.field.verbose_name)),
                        _display(raw.field, raw.old, labels),
                        _display(raw.field, raw.new, labels),
                    )
                    for raw in raws
                ),
                reason=reason,
                model_label=model._meta.label,
                object_id=record.id,
                history_id=record.history_id,
            )
        )
    return changes


def _previous_records(
    merged: list[tuple[type[models.Model], Any]],
    fetched: dict[type[models.Model], list[Any]],
) -> dict[tuple[type[models.Model], int], Any]:
    """(model, history id) → record, for the record before each kept change; those not already
    fetched are read in one query per model."""
    known = {(model, r.history_id): r for model, records in fetched.items() for r in records}
    missing: dict[type[models.Model], set[int]] = defaultdict(set)
    for model, record in merged:
        if record.history_type == "~" and record.prev_history_id is not None:
            if (model, record.prev_history_id) not in known:
                missing[model].add(record.prev_history_id)
    for model, ids in missing.items():
        for record in model.history.filter(history_id__in=ids):
            known[(model, record.history_id)] = record
    return known


def _raw_changes(
    model: type[models.Model],
    records: list[Any],
    previous: dict[tuple[type[models.Model], int], Any],
) -> dict[tuple[type[models.Model], int], list[_Raw]]:
    """(model, history id) → the record's field changes against the record before it (empty
    for an addition, a removal, or a change with nothing to compare with)."""
    pairs = [
        (record, previous.get((model, record.prev_history_id)))
        if record.history_type == "~"
        else (record, None)
        for record in records
    ]
    compared = [(r, p) for r, p in pairs if p is not None]
    links: dict[str, dict[int, frozenset[int]]] = {}
    if compared and _m2m_fields(model):
        ids = {r.history_id for r, _ in compared} | {p.history_id for _, p in compared}
        links = _m2m_sets(model, ids)
    fields = _diff_fields(model)
    result: dict[tuple[type[models.Model], int], list[_Raw]] = {}
    for record, prev in pairs:
        raws: list[_Raw] = []
        if prev is not None:
            delta = record.diff_against(prev, included_fields=fields)
            raws = [
                _Raw(model._meta.get_field(change.field), change.old, change.new)
                for change in delta.changes
            ]
            for name, sets in links.items():
                old, new = sets[prev.history_id], sets[record.history_id]
                if old != new:
                    raws.append(_Raw(model._meta.get_field(name), old, new))
        result[(model, record.history_id)] = raws
    return result
