"""Handing out a sealed decision record outside a request: ``manage.py export_record`` for
operators, and the certificate page's PEM for auditors. Each hand-out is an audit event of kind
``record_download``, like a download in the admin."""

from __future__ import annotations

import hashlib

from django.core.exceptions import ValidationError
from django.http import HttpRequest

from checklist.audit import audit_record
from checklist.models import Release
from checklist.models_audit import AuditEvent, AuditKind

from .cert_info import CertInfo
from .choices import RecordState
from .models import DecisionRecord


def record_for_export(*, version: str) -> DecisionRecord:
    """The release's newest sealed (ready) record; refused, saying why, when there is none."""
    release = Release.objects.filter(version=version).first()
    if release is None:
        raise ValidationError(f"No release has version {version!r}.")
    records = DecisionRecord.objects.filter(release=release).order_by("-created_at", "-pk")
    record = records.filter(state=RecordState.READY).first()
    if record is None:
        states = ", ".join(r.get_state_display().lower() for r in records) or "none"
        raise ValidationError(
            f"Release {version} has no sealed decision record (records: {states}); "
            "a record is sealed once the final decision is recorded and rendered."
        )
    return record


def record_export_audit(*, record: DecisionRecord, data: bytes, by: str) -> AuditEvent:
    """Record that ``data`` (the sealed PDF) left the portal through a command run by ``by``."""
    return audit_record(
        AuditKind.RECORD_DOWNLOAD,
        username=by,
        release=record.release,
        obj=record,
        detail={
            "what": "decision record (export_record)",
            "record": record.pk,
            "state": "sealed",
            "format": "pdf",
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "fingerprint": record.snapshot_sha256,
        },
    )


def certificate_download_audit(*, request: HttpRequest, certificate: CertInfo) -> AuditEvent:
    """Record that the signing certificate (public, but the trust anchor) was handed out."""
    return audit_record(
        AuditKind.RECORD_DOWNLOAD,
        request=request,
        detail={
            "what": "decision-record signing certificate",
            "state": "public",
            "format": "pem",
            "bytes": len(certificate.pem),
            "sha256": hashlib.sha256(certificate.pem).hexdigest(),
            "certificate_sha256": certificate.sha256,
        },
    )
