"""A decided release is frozen: once the final GO or DEFER is recorded (status *decided*), no
row of that release may be written until it is reopened (``services.release_reopen``).

The rule sits where every path meets — ``pre_save``, ``pre_delete`` and ``m2m_changed`` of each
release-owned model, connected once in SignoffsConfig.ready() — so an admin form, a bulk
action, ``import_checklist --replace``, a service, a future API or a shell all hit it. It reads
the release's status from the database (locking the release row inside a transaction, so a
write and a decision are serialised), never from the object in memory.

What the decision and a reopen must still write is exempt: the release row moving in review →
decided (the decision) and decided → in review with nothing else changed, once the decision's
signature is stale (the reopen);
signature state moves and their events; the decision record (rendered and sealed after the
decision); reminder dispatches and "last seen" marks. Deliberate exception: granting or
removing an *auditor* membership (read access only; the auditor arrives after the decision).

``release_change_refusals`` is the read-only question ("may this release be changed?") that
services and the admin ask first, to refuse early and clearly; the receivers are the guarantee.
Limits: writes that send no signal (``QuerySet.update()``, ``bulk_create``, raw SQL) are not
seen here — the portal uses none on existing rows of a release, the import checks first, and
the audit chain reports any such edit — and fixture loading (``raw`` saves, and the links
``loaddata`` then sets on the rows it restored) is not refused.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model, OuterRef, Q, Subquery
from django.db.models.signals import m2m_changed, pre_delete, pre_save
from django.utils import timezone

from checklist.choices import ReleaseStatus
from checklist.models import Release

from .choices import MemberRole, SignatureMeaning, SignatureState
from .models import Criterion, ReleaseMember, Signature, SignoffRequirement

# Every model a decided release freezes, with the path from one of its rows to its release.
FROZEN_MODELS: dict[str, str] = {
    "checklist.Release": "",
    "checklist.Section": "release",
    "checklist.Item": "release",
    "risks.Risk": "release",
    "risks.ActionItem": "release",
    "signoffs.Criterion": "release",
    "signoffs.SignoffRequirement": "release",
    "signoffs.Attestation": "requirement__release",
    "signoffs.ReleaseMember": "release",
}


# ---------------------------------------------------------------- the decision, in words
@dataclass(frozen=True)
class Decision:
    """The release's latest final decision (GO or DEFER) and the state of its signature."""

    meaning: str
    signed_at: datetime.datetime
    by: str
    state: str

    @property
    def label(self) -> str:
        return SignatureMeaning(self.meaning).label

    @property
    def date(self) -> str:
        return timezone.localtime(self.signed_at).date().isoformat()

    @property
    def is_valid(self) -> bool:
        return self.state == SignatureState.VALID

    @property
    def state_label(self) -> str:
        return SignatureState(self.state).label.lower()

    def __str__(self) -> str:
        return f"{self.label} on {self.date} by {self.by}"


_DECISION_FIELDS = {"meaning": "meaning", "signed_at": "signed_at", "by": "printed_name"}


def _final_signatures(release):
    return Signature.objects.filter(release=release, requirement__final_decision=True).order_by(
        "-signed_at", "-pk"
    )


def decision_annotations() -> dict[str, Subquery]:
    """``queryset.annotate(**decision_annotations())`` on releases: the latest final decision's
    meaning, time, signer and state, in the same query (no query per row)."""
    latest = _final_signatures(OuterRef("pk"))
    columns = {**_DECISION_FIELDS, "state": "state"}
    return {
        f"decision_{name}": Subquery(latest.values(column)[:1]) for name, column in columns.items()
    }


def decision_from_row(release: Release) -> Decision | None:
    """The Decision of a release annotated with ``decision_annotations``; None when none."""
    if getattr(release, "decision_meaning", None) is None:
        return None
    return Decision(
        meaning=release.decision_meaning,
        signed_at=release.decision_signed_at,
        by=release.decision_by,
        state=release.decision_state,
    )


def release_decision(release: Release | int) -> Decision | None:
    """The latest final decision of a release (one query); None when none was recorded."""
    row = _final_signatures(release).values(*_DECISION_FIELDS.values(), "state").first()
    if row is None:
        return None
    return Decision(row["meaning"], row["signed_at"], row["printed_name"], row["state"])


def frozen_message(version: str, decision: Decision | None) -> str:
    """Why a write is refused, naming the release and the decision."""
    if decision is None:
        return f"{version} is decided; reopen it to change."
    return f"{version} is decided: {decision}; reopen it to change."


def banner_text(decision: Decision | None) -> str:
    """The notice on the pages of a decided release and of its rows."""
    if decision is None:
        return "Decided; reopen to change."
    return f"Decided: {decision.label} on {decision.date}, by {decision.by}; reopen to change."


# ---------------------------------------------------------------- may this release be changed?
def release_change_refusals(*, release: Release | int) -> list[str]:
    """Why the release may not be changed now (empty: it may). Read from the database: the
    status held by the object in memory may be out of date."""
    pk = release.pk if isinstance(release, Release) else release
    row = Release.objects.filter(pk=pk).values_list("version", "status").first()
    if row is None or row[1] != ReleaseStatus.DECIDED:
        return []
    return [frozen_message(row[0], release_decision(pk))]


def auditor_access_only(old_role: str | None, new_role: str | None) -> bool:
    """The deliberate exception: an auditor's membership (read access only) may be granted or
    removed on a decided release, the auditor arriving after the decision; making anyone an
    auditor who had another role, or the reverse, may not."""
    return {old_role, new_role} <= {None, MemberRole.AUDITOR}


def member_change_refusals(
    *, release: Release | int, old_role: str | None, role: str | None
) -> list[str]:
    """Why a person's membership may not move from ``old_role`` to ``role`` (None: none)."""
    if auditor_access_only(old_role, role):
        return []
    return release_change_refusals(release=release)


# ---------------------------------------------------------------- the receivers
def _locked(releases):
    """Lock the rows inside a transaction: a decision waits for the write, or the write sees it."""
    if transaction.get_connection().in_atomic_block:
        return releases.select_for_update()
    return releases


def _refuse_if_decided(condition: Q) -> None:
    """Raise ValidationError, naming the release and its decision, when a release matching
    ``condition`` is decided."""
    rows = _locked(Release.objects.filter(condition)).values_list("pk", "version", "status")
    for pk, version, status in rows:
        if status == ReleaseStatus.DECIDED:
            raise ValidationError(frozen_message(version, release_decision(pk)), code="frozen")


def _release_of(model: type[Model], path: str, pk: Any) -> Subquery:
    """The release id(s) of the stored row ``pk`` of ``model`` (as the database holds it)."""
    return model._default_manager.filter(pk=pk).values(path or "pk")


def _releases_of(instance: Model, *, stored: bool, current: bool) -> Q:
    """The releases a write to ``instance`` touches: the one it belongs to in the database
    (``stored``) and the one it is being put in (``current``)."""
    path = FROZEN_MODELS[instance._meta.label]
    condition = Q(pk__in=[])
    if stored and instance.pk is not None:
        condition |= Q(pk__in=_release_of(type(instance), path, instance.pk))
    if current:
        if path == "release":
            condition |= Q(pk=instance.release_id)
        elif instance.requirement_id is not None:  # an attestation, through its requirement
            condition |= Q(
                pk__in=_release_of(SignoffRequirement, "release", instance.requirement_id)
            )
    return condition


_reopening: ContextVar[int | None] = ContextVar("dcmms_reopening", default=None)


@contextmanager
def reopening(release_id: int) -> Iterator[None]:
    """``release_reopen`` writes the release row inside this block: the one write of a decided
    release's row that the freeze lets through (besides the decision itself)."""
    token = _reopening.set(release_id)
    try:
        yield
    finally:
        _reopening.reset(token)


def _is_reopen(instance: Release, stored: Release) -> bool:
    """Decided → in review by ``release_reopen`` (inside ``reopening``), with nothing else
    changed and the decision already made stale: a status flipped by any other write is not."""
    if instance.status != ReleaseStatus.IN_REVIEW or _reopening.get() != stored.pk:
        return False
    fields = [f for f in Release._meta.concrete_fields if f.name not in ("id", "status")]
    if any(f.to_python(getattr(instance, f.attname)) != getattr(stored, f.attname) for f in fields):
        return False
    decision = _final_signatures(stored.pk).filter(state=SignatureState.VALID)
    return not decision.exists()


def _release_saving(instance: Release) -> None:
    """Only the decision (in review → decided, not frozen yet) and the reopen write the row of
    a release that is decided."""
    if instance.pk is None:
        return
    stored = _locked(Release.objects.filter(pk=instance.pk)).first()
    if stored is None or stored.status != ReleaseStatus.DECIDED or _is_reopen(instance, stored):
        return
    raise ValidationError(
        frozen_message(stored.version, release_decision(stored.pk)), code="frozen"
    )


def _auditor_access(member: ReleaseMember, *, deleting: bool) -> bool:
    stored = None
    if member.pk is not None:
        stored = ReleaseMember.objects.filter(pk=member.pk).values_list("role", flat=True).first()
    return auditor_access_only(stored, None if deleting else member.role)


def on_pre_save(sender, instance: Model, raw: bool = False, **kwargs) -> None:
    if raw:  # loaddata: rows restored as they were, not written by the portal's users
        instance._freeze_loaded = True  # and its links, set next on this very object
        return
    if isinstance(instance, Release):
        _release_saving(instance)
    elif not (isinstance(instance, ReleaseMember) and _auditor_access(instance, deleting=False)):
        _refuse_if_decided(_releases_of(instance, stored=True, current=True))


def on_pre_delete(sender, instance: Model, **kwargs) -> None:
    if isinstance(instance, ReleaseMember) and _auditor_access(instance, deleting=True):
        return
    _refuse_if_decided(_releases_of(instance, stored=True, current=False))


def on_signature_save(sender, instance: Signature, raw: bool = False, **kwargs) -> None:
    """State moves are exempt (a reopen makes the decision stale); a new signature is not: the
    final one is written while the release is still in review, then the release is decided."""
    if raw or instance.pk is not None:
        return
    _refuse_if_decided(Q(pk=instance.release_id))


def on_links_changed(sender, instance: Model, action: str, model, pk_set, **kwargs) -> None:
    """A criterion's links to items, risks and sign-offs, from either side."""
    if action not in ("pre_add", "pre_remove", "pre_clear"):
        return
    if getattr(instance, "_freeze_loaded", False):  # the links of a row loaddata just restored
        return
    condition = Q(pk__in=_release_of(type(instance), "release", instance.pk))
    if pk_set:
        condition |= Q(pk__in=model._default_manager.filter(pk__in=pk_set).values("release"))
    _refuse_if_decided(condition)


def connect() -> None:
    """Called once from SignoffsConfig.ready()."""
    from django.apps import apps

    for label in FROZEN_MODELS:
        model = apps.get_model(label)
        pre_save.connect(on_pre_save, sender=model, dispatch_uid=f"freeze-save-{label}")
        pre_delete.connect(on_pre_delete, sender=model, dispatch_uid=f"freeze-delete-{label}")
    pre_save.connect(on_signature_save, sender=Signature, dispatch_uid="freeze-signature")
    for name in ("items", "risks", "requirements"):
        through = getattr(Criterion, name).through
        m2m_changed.connect(on_links_changed, sender=through, dispatch_uid=f"freeze-{name}")
