"""The decision record: what is frozen when the final decision is recorded, and the services
that render, seal, retry and hand it out.

The record's document is a JSON dict holding the release snapshot (signoffs.exports), the
decision, the evaluated GO criteria and NO-GO blockers, readiness, every signature with its
state and reason, and the audit excerpt since the review opened. It is stored as canonical JSON
with the decision, in the same transaction, and its SHA-256 is the record's fingerprint. The
PDF is rendered only from that stored JSON, so it re-renders to the same bytes, then sealed
(PAdES) and stored once with its SHA-256: a ready record never changes. A reopen and a new
decision make a new record.

Format 2 adds the audit chain head (``audit_chain_head``: the last link's seq and MAC, after
everything up to the decision was linked), so each record is an anchor of the audit hash chain
kept outside the chain's table; format-1 documents have no head and still load and render.
Every hand-out of a record (sealed or DRAFT) and of a release export is an ``AuditEvent`` of
kind ``record_download`` (``download_audit``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DatabaseError, models, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from reportlab.platypus.doctemplate import LayoutError

from checklist.audit import audit_record
from checklist.chain import chain_flush, chain_head
from checklist.models import Release
from checklist.models_audit import AuditEvent, AuditKind
from checklist.permissions import require_manage

from .changes import release_changes_since, review_opened_at
from .choices import RecordState
from .exports import canonical_json, release_snapshot, snapshot_sha256
from .gates import criteria_evaluate, go_refusals
from .models import DecisionRecord, Signature, SignoffRequirement
from .pdf import render_record_pdf
from .record_status import failure_note, first_check_delay
from .signing_cert import SealError, configured_certificate, seal_pdf

logger = logging.getLogger(__name__)

DOCUMENT_FORMAT = 2  # 2: the audit chain head at the decision (format 1 had none)
AUDIT_LIMIT = 500
# What a render can fail with: recorded on the record as its failure reason (and retried from
# the admin). Database errors are not caught here: the task retries on those.
RENDER_ERRORS = (SealError, ImproperlyConfigured, LayoutError, OSError, ValueError, KeyError)
RETRY_BATCH = 10  # records beat renders per run; the rest wait for the next run


# ---------------------------------------------------------------- the frozen document
def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.astimezone(datetime.UTC).isoformat() if moment else None


def utc_text(moment: datetime.datetime | None) -> str:
    """'2026-11-29 08:44:36 UTC (+00:00)': UTC, with the offset written out."""
    if moment is None:
        return "—"
    moment = moment.astimezone(datetime.UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({moment.isoformat()[-6:]})"


def _person(user) -> str:
    if user is None:
        return "system"
    name = user.get_full_name()
    return f"{name} ({user.get_username()})" if name else user.get_username()


def _signoffs(release: Release) -> list[dict[str, Any]]:
    """Each requirement with every signature ever given on it and its current state's reason."""
    requirements = SignoffRequirement.objects.filter(release=release).select_related("assignee")
    signatures = (
        Signature.objects.filter(release=release)
        .select_related("signer")
        .prefetch_related("events")
        .order_by("signed_at", "pk")
    )
    by_requirement: dict[int, list[dict]] = {}
    for signature in signatures:
        events = list(signature.events.all())
        current = [e for e in events if e.to_state == signature.state]
        last = current[-1] if current else None
        by_requirement.setdefault(signature.requirement_id, []).append(
            {
                "name": signature.printed_name,
                "username": signature.signer.get_username(),
                "role": signature.printed_role,
                "meaning": signature.meaning,
                "meaning_label": signature.get_meaning_display(),
                "comment": signature.comment,
                "signed_at": _iso(signature.signed_at),
                "at_display": utc_text(signature.signed_at),
                "snapshot_sha256": signature.snapshot_sha256,
                "state": signature.state,
                "state_reason": last.reason if last and signature.state != "valid" else "",
                "state_at": _iso(last.at) if last else None,
                "events": [
                    {
                        "from": e.from_state,
                        "to": e.to_state,
                        "at": _iso(e.at),
                        "by": _person(e.actor),
                        "reason": e.reason,
                    }
                    for e in events
                ],
            }
        )
    return [
        {
            "role": requirement.role,
            "tier": requirement.tier,
            "final": requirement.final_decision,
            "assignee": _person(requirement.assignee) if requirement.assignee else None,
            "signatures": by_requirement.get(requirement.pk, []),
        }
        for requirement in requirements.order_by("order", "pk")
    ]


def _audit(release: Release, opened: datetime.datetime | None) -> tuple[list[dict], bool]:
    changes = release_changes_since(release, opened, limit=AUDIT_LIMIT + 1)
    rows = [
        {
            "when": utc_text(change.when).split(" (")[0],
            "who": change.who,
            "model": change.model,
            "label": change.label,
            "kind": change.kind,
            "fields": [list(f) for f in change.fields],
            "reason": change.reason,
        }
        for change in changes[:AUDIT_LIMIT]
    ]
    return rows, len(changes) > AUDIT_LIMIT


def record_document(
    *,
    release: Release,
    decision: Signature | None,
    as_of: datetime.datetime,
    chain: dict | None = None,
) -> dict[str, Any]:
    """The release as the record freezes it. Every time in it comes from stored data: the
    decision's own time for a record, the moment of the request for a draft. ``chain`` is the
    audit chain head ({"seq", "mac"}) at the decision; a draft has none."""
    snapshot = release_snapshot(release)
    opened = review_opened_at(release)
    audit, truncated = _audit(release, opened)
    criteria = [
        {
            "kind": result.criterion.kind,
            "group": result.criterion.group,
            "text": result.criterion.text,
            "holds": result.holds,
            "why": result.why,
            "decided_by": result.decided_by,
            "blocks_go": result.blocks_go,
        }
        for result in criteria_evaluate(release)
    ]
    failing = 0
    stack = [item for section in snapshot["sections"] for item in section["items"]]
    while stack:
        item = stack.pop()
        failing += item.get("meets_target") is False
        stack.extend(item.get("children", []))
    readiness = {
        "go_refusals": go_refusals(release),
        "failing_targets": failing,
        "overdue_actions": sum(1 for a in snapshot["action_items"] if a["overdue"]),
        "open_high_risks": sum(
            1 for r in snapshot["risks"] if r["impact"] == "HIGH" and r["status"] != "complete"
        ),
    }
    return {
        "format": DOCUMENT_FORMAT,
        "kind": "decision" if decision else "draft",
        "snapshot": snapshot,
        "release_snapshot_sha256": snapshot_sha256(snapshot),
        "release_status_label": release.get_status_display(),
        "decision": (
            {
                "meaning": decision.meaning,
                "meaning_label": decision.get_meaning_display(),
                "name": decision.printed_name,
                "username": decision.signer.get_username(),
                "role": decision.printed_role,
                "at": _iso(decision.signed_at),
                "at_display": utc_text(decision.signed_at),
                "comment": decision.comment,
                "signed_snapshot_sha256": decision.snapshot_sha256,
            }
            if decision
            else None
        ),
        "as_of": _iso(as_of),
        "as_of_display": utc_text(as_of),
        "review_opened_at": _iso(opened),
        "review_opened_display": utc_text(opened) if opened else None,
        "criteria": criteria,
        "readiness": readiness,
        "signoffs": _signoffs(release),
        "audit": audit,
        "audit_truncated": truncated,
        "audit_chain_head": chain,
    }


def _save(record: DecisionRecord, *, user, reason: str) -> None:
    record._history_user = user
    record._change_reason = reason
    record.full_clean()
    if record._state.adding:
        record.save()
    else:  # only what may change: the runtime role may UPDATE nothing else (grant_runtime_role)
        record.save(update_fields=DecisionRecord.LATER_FILLED)


# ---------------------------------------------------------------- services
@transaction.atomic
def record_create(*, release: Release, signature: Signature, by) -> DecisionRecord:
    """Freeze the decided release as the record's document and fingerprint, in the caller's
    transaction (the decision's), and queue its rendering once that transaction commits. A
    broker that is down does not undo the decision: the record stays pending with the reason,
    and beat renders it (``records_retry_due``); so it does if it is still pending two minutes
    on, whatever happened to the task.

    First the decision's own audit rows so far (the signature, its event, the release's history)
    are linked into the audit hash chain — every earlier row was linked when it was committed —
    and the chain's head goes into the document: the sealed record then anchors the chain, so a
    chain rewritten or truncated before the decision is detected without an anchor file. On
    PostgreSQL the chain's advisory lock is then held until the decision commits, so nobody
    appends meanwhile (decisions are rare)."""
    chain_flush()
    document = record_document(
        release=release, decision=signature, as_of=signature.signed_at, chain=chain_head()
    )
    record = DecisionRecord(
        release=release,
        signature=signature,
        snapshot_json=canonical_json(document),
        snapshot_sha256=snapshot_sha256(document),
        state=RecordState.PENDING,
        next_attempt_at=timezone.now() + first_check_delay(),
    )
    _save(
        record,
        user=by,
        reason=f"Decision record created: {signature.get_meaning_display()}; rendering queued",
    )
    record_id = record.pk
    transaction.on_commit(lambda: record_enqueue(record_id=record_id))
    return record


def record_enqueue(*, record_id: int) -> bool:
    """Queue the rendering; False when the broker cannot be reached, which is logged and kept
    on the record as a failed attempt (the reason shown, beat retries it)."""
    from kombu.exceptions import OperationalError

    from dcmms_release.broker import publish

    from .record_tasks import render_decision_record

    try:
        publish(render_decision_record, record_id)  # bounded: BROKER_TIMEOUT, one retry
    except OperationalError as exc:
        logger.warning("Decision record %s stays pending: broker unreachable (%s)", record_id, exc)
        try:
            record_enqueue_failed(record_id=record_id, reason="the broker was unreachable")
        except DatabaseError:  # after the decision's commit: never fail the request for it
            logger.exception("Decision record %s: the failed queuing was not recorded", record_id)
        return False
    return True


@transaction.atomic
def record_enqueue_failed(*, record_id: int, reason: str) -> DecisionRecord | None:
    """A queuing the broker refused is a failed attempt: the record stays pending with the
    reason and the time, and beat renders it after the backoff (failed after the last
    attempt). A record that is ready, or gone, is left alone."""
    record = DecisionRecord.objects.select_for_update().filter(pk=record_id).first()
    if record is None or record.state == RecordState.READY:
        return record
    record.attempts += 1
    failure_note(record, reason=reason, at=timezone.now())
    _save(record, user=None, reason=f"Rendering not queued: {reason}"[:100])
    return record


class FingerprintMismatch(ValueError):
    """The stored snapshot no longer hashes to the record's fingerprint: no retry mends it."""


def record_document_load(record: DecisionRecord) -> dict[str, Any]:
    """The stored document, refused when it no longer hashes to the record's fingerprint."""
    if stored_fingerprint(record) != record.snapshot_sha256:
        raise FingerprintMismatch("the stored snapshot does not match the record's fingerprint")
    return json.loads(record.snapshot_json)


def stored_fingerprint(record: DecisionRecord) -> str:
    """The SHA-256 of the stored canonical JSON, byte for byte as stored."""
    return hashlib.sha256(record.snapshot_json.encode("utf-8")).hexdigest()


def record_pdf_unsealed(record: DecisionRecord) -> bytes:
    """The record's PDF before sealing: the same stored snapshot (and signing certificate,
    whose SHA-256 every page prints) gives the same bytes."""
    document = record_document_load(record)
    certificate = configured_certificate().sha256
    return render_record_pdf(
        dict(document, fingerprint=record.snapshot_sha256, seal_certificate_sha256=certificate)
    )


def record_render(
    *, record_id: int, due_at: datetime.datetime | None = None
) -> DecisionRecord | None:
    """Render the record from its stored snapshot, seal it, and store the PDF and its SHA-256
    once (pending/failed → ready). A ready record is returned unchanged. A failure is kept on
    the record with its reason and time: pending with the next automatic attempt after the
    backoff, or failed after the last attempt (or when the stored snapshot no longer matches its
    fingerprint), for a product manager to retry.

    ``due_at`` (beat's retry): only a record still due at that moment is rendered, and one that
    another worker is rendering right now is skipped, so overlapping runs render it once (None:
    the record vanished)."""
    with transaction.atomic():
        # Only the record's row is locked (of self), not its release's.
        if due_at is None:
            record = (
                DecisionRecord.objects.select_for_update(of=("self",))
                .select_related("release")
                .get(pk=record_id)
            )
        else:
            record = (
                DecisionRecord.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("release")
                .filter(_due(due_at), pk=record_id)
                .first()
            )
            if record is None:  # sealed, rescheduled, being rendered or gone meanwhile
                return DecisionRecord.objects.filter(pk=record_id).first()
        if record.state == RecordState.READY:
            return record
        record.attempts += 1
        try:
            unsealed = record_pdf_unsealed(record)
            sealed = seal_pdf(
                unsealed,
                reason=f"Decision record of {record.release}; fingerprint {record.snapshot_sha256}",
                snapshot=record.snapshot_json.encode("utf-8"),  # under the seal
            )
        except RENDER_ERRORS as exc:
            failure_note(
                record,
                reason=f"rendering failed ({type(exc).__name__}: {exc})",
                at=timezone.now(),
                final=isinstance(exc, FingerprintMismatch),
            )
            _save(record, user=None, reason=f"Rendering failed: {record.failure_reason}"[:100])
            logger.error("Decision record %s failed to render: %s", record_id, exc)
            return record
        record.pdf = sealed
        record.pdf_sha256 = hashlib.sha256(sealed).hexdigest()
        record.state = RecordState.READY
        record.failure_reason = ""
        record.next_attempt_at = None
        record.rendered_at = timezone.now()
        _save(record, user=None, reason="Rendered and sealed")
        return record


@transaction.atomic
def record_retry(*, record: DecisionRecord, by) -> DecisionRecord:
    """Queue a failed (or still pending) record's rendering again. A ready record is final.
    Only a manager of the release may ask (``by`` None: the system)."""
    record = DecisionRecord.objects.select_for_update().get(pk=record.pk)
    require_manage(by, record.release, action="Retry a decision record")
    if record.state == RecordState.READY:
        raise ValidationError("This record is ready; a ready record never changes.")
    record.state = RecordState.PENDING
    record.failure_reason = ""
    record.next_attempt_at = timezone.now() + first_check_delay()  # beat's net if it is lost
    who = by.get_username() if by is not None else "the system"
    _save(record, user=by, reason=f"Rendering retried by {who}")
    record_id = record.pk
    transaction.on_commit(lambda: record_enqueue(record_id=record_id))
    return record


def _due(now: datetime.datetime) -> Q:
    """Pending and due: its next attempt has come, or (a record from before attempts were
    scheduled) it has been pending longer than the first check's delay."""
    return Q(state=RecordState.PENDING) & (
        Q(next_attempt_at__lte=now)
        | Q(next_attempt_at__isnull=True, created_at__lte=now - first_check_delay())
    )


def records_retry_due(
    *, now: datetime.datetime | None = None, limit: int = RETRY_BATCH
) -> list[DecisionRecord]:
    """Render every pending record whose next attempt has come (beat's task, on the worker: the
    broker is up when it runs), oldest due first, at most ``limit`` per run. Idempotent: a
    record sealed, rescheduled or being rendered meanwhile is left as it is. Returns the
    records as they are now."""
    now = now or timezone.now()
    due = (
        DecisionRecord.objects.filter(_due(now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)
    )
    tried = (record_render(record_id=pk, due_at=now) for pk in list(due[:limit]))
    return [record for record in tried if record is not None]


def draft_pdf(*, release: Release) -> bytes:
    """A DRAFT record of the release as it is now (any status), watermarked on every page,
    never sealed or stored."""
    document = record_document(release=release, decision=None, as_of=timezone.now())
    return render_record_pdf(dict(document, fingerprint=snapshot_sha256(document)), draft=True)


def record_chain_head(record: DecisionRecord) -> dict | None:
    """The audit chain head the record's stored document keeps; None for a format-1 document
    (written before heads were embedded). Refused when the document no longer matches the
    record's fingerprint: a head read from an altered document would prove nothing."""
    head = record_document_load(record).get("audit_chain_head")
    return {"seq": int(head["seq"]), "mac": str(head["mac"])} if head else None


def download_audit(
    *,
    request: HttpRequest,
    release: Release,
    obj: models.Model,
    data: bytes,
    what: str,
    state: str,
    fmt: str,
    record: DecisionRecord | None = None,
) -> AuditEvent:
    """Record that a decision record or an export was handed out: who (the request's user),
    when, from where, which release, and what exactly: the record (if any), its state
    (``sealed``, ``draft`` or ``live`` for an export of the release as it is), the format, the
    size and the SHA-256 of the bytes handed out, so a copy can be matched to its download."""
    detail = {
        "what": what,
        "record": record.pk if record is not None else None,
        "state": state,
        "format": fmt,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),  # of the bytes handed out, not as stored
    }
    if record is not None:
        detail["fingerprint"] = record.snapshot_sha256
    return audit_record(
        AuditKind.RECORD_DOWNLOAD, request=request, release=release, obj=obj, detail=detail
    )
