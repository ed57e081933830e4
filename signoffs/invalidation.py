"""Synchronous invalidation: a material change to a release marks its valid signatures stale in
the same transaction as the change.

Every write to an audited model, through any path (admin form, list_editable, bulk action,
import --replace, shell), creates a django-simple-history record inside the writing transaction.
That record is the one choke point all paths share, so this is where the rule is enforced:
connected once in SignoffsConfig.ready(). What is *not* material is listed here explicitly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.models import Model

from .choices import SignatureState

# Fields whose change does not alter what was signed: workflow, who owns or follows what,
# reminder settings, bookkeeping. Everything else on an audited model is material.
NOT_MATERIAL: dict[str, set[str]] = {
    "checklist.Release": {
        "status",
        "owner",
        "owner_label",
        "review_cadence",
        "review_frequency",
        "next_review",
        "source_name",
        "approvers_label",
    },
    "checklist.Item": {"owner", "owner_label", "due_date"},
    "risks.Risk": {"owner", "owner_label"},
    "risks.ActionItem": {"owner", "owner_label"},
    "signoffs.SignoffRequirement": {"assignee"},
}
# Models whose rows are the sign-off record itself or access to it, not release content.
NOT_CONTENT = {
    "signoffs.Signature",
    "signoffs.ReleaseMember",
    "signoffs.DecisionRecord",
    "signoffs.ReminderDispatch",
}


_within = threading.local()


@contextmanager
def material_change(*, release_id: int, reason: str, actor=None) -> Iterator[None]:
    """A multi-row change of one release (e.g. import --replace) made in one transaction: its
    valid signatures become stale once, up front, and the release row stays locked until the
    transaction ends, so no signature can be given meanwhile and the rows written inside need
    not be checked one by one. Must be used inside transaction.atomic()."""
    from checklist.models import Release

    from .services import signatures_mark_stale

    list(Release.objects.select_for_update().filter(pk=release_id).values_list("pk"))
    signatures_mark_stale(release_id=release_id, reason=reason, actor=actor)
    previous = getattr(_within, "release_ids", frozenset())
    _within.release_ids = previous | {release_id}
    try:
        yield
    finally:
        _within.release_ids = previous


def _release_id(instance: Model) -> int | None:
    label = instance._meta.label
    if label == "checklist.Release":
        return instance.pk
    if label == "signoffs.Attestation":
        from .models import SignoffRequirement

        return (
            SignoffRequirement.objects.filter(pk=instance.requirement_id)
            .values_list("release_id", flat=True)
            .first()
        )
    return getattr(instance, "release_id", None)


def _material_change(instance: Model, history) -> str | None:
    """What changed, in words, or None when nothing material did."""
    name = f"{instance._meta.verbose_name} “{str(instance)[:80]}”"
    if history.history_type == "+":
        return f"{name} added"
    if history.history_type == "-":
        return f"{name} removed"
    previous = history.prev_record
    if previous is None:
        return f"{name} changed"
    ignored = NOT_MATERIAL.get(instance._meta.label, set())
    changed = [c.field for c in history.diff_against(previous).changes if c.field not in ignored]
    if not changed:
        return None
    return f"{name} changed: {', '.join(sorted(changed))}"


def on_history_record(sender, instance, history_instance, **kwargs) -> None:
    from checklist.models import Release

    from .models import Signature
    from .services import signatures_mark_stale

    if instance._meta.label in NOT_CONTENT:
        return
    release_id = _release_id(instance)
    if release_id is None or release_id in getattr(_within, "release_ids", ()):
        return
    with transaction.atomic():
        # Signing holds this lock from snapshot to signature: a change either lands before the
        # snapshot, or waits and then sees the new signature and marks it stale.
        list(Release.objects.select_for_update().filter(pk=release_id).values_list("pk"))
        if not Signature.objects.filter(release_id=release_id, state=SignatureState.VALID).exists():
            return
        reason = _material_change(instance, history_instance)
        if reason:
            signatures_mark_stale(
                release_id=release_id, reason=reason, actor=history_instance.history_user
            )
