"""When a release's retention clock started, and which releases (and which audit events tied to
no release) are past a cutoff (checklist.retention).

The clock starts at the release's final decision (its final-role signature, its decision record)
or, for a release never decided, at its last change: the newest history row of the release or of
anything of it. It is the later of the two, so a release reopened and changed after a decision is
kept from that change. Releases deleted long ago count too: their history is still there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max

from .models import Release
from .models_audit import AuditEvent, AuditKind
from .retention_rows import chunks
from .triggers import OUR_APPS


@dataclass(frozen=True)
class ReleaseDue:
    """A release whose retention clock started before the cutoff."""

    id: int
    name: str
    version: str
    decided_at: datetime | None
    last_change: datetime

    def as_detail(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "last_change": self.last_change.isoformat(),
        }


def _release_key(history) -> str | None:
    """The column of a history table that names its release, if it has one."""
    if getattr(history, "instance_type", None) is Release:
        return "id"
    names = {f.name: f for f in history._meta.concrete_fields}
    if "release" in names and names["release"].related_model is Release:
        return names["release"].attname
    return None


def _bump(clocks: dict[int, datetime], pairs) -> None:
    for release_id, at in pairs:
        if release_id is not None and at is not None:
            clocks[release_id] = max(at, clocks.get(release_id, at))


def _last_changes(using: str) -> dict[int, datetime]:
    """The newest history row per release, over every history table that names its release,
    and those that reach it through a key (an attestation through its requirement)."""
    clocks: dict[int, datetime] = {}
    _bump(clocks, Release.objects.using(using).values_list("id", "created_at"))
    histories = [
        m
        for m in apps.get_models()
        if m._meta.app_label in OUR_APPS
        and hasattr(m, "instance_type")
        and hasattr(m, "history_date")
    ]
    for history in histories:
        key = _release_key(history)
        manager = history._default_manager.using(using)
        if key is not None:
            _bump(clocks, manager.values_list(key).annotate(at=Max("history_date")).order_by())
            continue
        for fk in history._meta.concrete_fields:
            parent = fk.related_model if fk.is_relation else None
            parent_history = getattr(parent, "history", None)
            if parent_history is None or _release_key(parent_history.model) is None:
                continue
            owner = dict(
                parent_history.model._default_manager.using(using)
                .values_list(parent._meta.pk.attname, _release_key(parent_history.model))
                .distinct()
            )
            by_parent = manager.values_list(fk.attname).annotate(at=Max("history_date"))
            _bump(clocks, ((owner.get(p), at) for p, at in by_parent.order_by()))
            break
    return clocks


def _decisions(using: str) -> dict[int, datetime]:
    """When each release was last decided: its final-role signature, its decision record.
    (Looked up by name: signoffs depends on checklist, not the other way round.)"""
    signature = apps.get_model("signoffs", "Signature")
    record = apps.get_model("signoffs", "DecisionRecord")
    decided: dict[int, datetime] = {}
    signed = signature._default_manager.using(using).filter(requirement__final_decision=True)
    _bump(decided, signed.values_list("release_id").annotate(at=Max("signed_at")).order_by())
    made = record._default_manager.using(using).values_list("release_id")
    _bump(decided, made.annotate(at=Max("created_at")).order_by())
    return decided


def releases_due(*, cutoff: datetime, using: str = DEFAULT_DB_ALIAS) -> list[ReleaseDue]:
    """Releases (also ones deleted but still in history) whose clock started before ``cutoff``."""
    changes, decided = _last_changes(using), _decisions(using)
    due = [
        (release_id, changed)
        for release_id, changed in changes.items()
        if max(changed, decided.get(release_id, changed)) < cutoff
    ]
    names: dict[int, tuple[str, str]] = {}
    for chunk in chunks(pk for pk, _ in due):  # the newest name wins; a live release's last
        for model, order in ((Release.history.model, "history_date"), (Release, "pk")):
            rows = model._default_manager.using(using).filter(id__in=chunk).order_by(order)
            names.update((pk, (n, v)) for pk, n, v in rows.values_list("id", "name", "version"))
    return sorted(
        (ReleaseDue(pk, *names.get(pk, ("", "")), decided.get(pk), changed) for pk, changed in due),
        key=lambda r: r.id,
    )


def loose_events(*, cutoff: datetime, using: str = DEFAULT_DB_ALIAS) -> list[int]:
    """Audit events tied to no release and older than the cutoff, except earlier purges'."""
    events = AuditEvent.objects.using(using).filter(release__isnull=True, at__lt=cutoff)
    return list(events.exclude(kind=AuditKind.PURGE).order_by("pk").values_list("pk", flat=True))
