"""Decision records in the admin: the list (state pending / ready / failed; one not sealed yet
with its reason, its time and the next automatic attempt), the download of a sealed record, a
retry for a failed or stuck render, and a DRAFT record of any release at any time.

Who may download: whoever may see the release (its auditors, product managers, stakeholders
and signers); everyone else gets 404, as if the record did not exist, and nothing is recorded.
Every download is an audit event (``record_download``: who, when, from where, which record,
sealed or DRAFT, and the SHA-256 of the bytes handed out). Records are never added, changed or
deleted here.
"""

from __future__ import annotations

import datetime
from functools import partial
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from checklist.admin_base import EMPTY, AuditedAdmin, managed_ids
from checklist.downloads import attachment_response, download_filename
from checklist.permissions import visible_releases

from .admin_certificate import certificate_page, certificate_pem, sealing_certificate_html
from .choices import RecordState
from .models import DecisionRecord
from .record_status import record_status_html
from .records import download_audit, draft_pdf, record_retry


def _pdf_response(data: bytes, *parts: object) -> HttpResponse:
    filename = download_filename(*parts, extension="pdf")
    return attachment_response(data, filename=filename, content_type="application/pdf")


@admin.register(DecisionRecord)
class DecisionRecordAdmin(AuditedAdmin):
    """One row per final decision; a reopen and a new decision add a row, never replace one."""

    # Five columns, so the download link fits beside the menu and the filters at 1280 px: the
    # decision column carries its time, the state column when the record was sealed.
    list_display = ("release", "decision", "state_display", "fingerprint", "download")
    list_filter = ("state", "release")
    list_select_related = ("release", "signature")
    search_fields = ("release__version", "release__name", "snapshot_sha256", "pdf_sha256")
    fields = (
        "release",
        "decision",
        "state_display",
        "attempts",
        "failed_at",
        "next_attempt_at",
        "snapshot_sha256",
        "pdf_sha256",
        "sealing_certificate",
        "created_at",
        "rendered_at",
        "download",
    )
    readonly_fields = fields
    actions = ("retry_rendering",)

    # ------------------------------------------------ records are the record: no edits
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """The release's product managers (or a superuser) may queue a render again."""
        return request.user.is_superuser or bool(managed_ids(request))

    # ------------------------------------------------ columns
    @admin.display(description="decision", ordering="signature__signed_at")
    def decision(self, obj: DecisionRecord) -> str:
        signature = obj.signature
        return format_html(
            "{} by {}<br><small>{}</small>",
            signature.get_meaning_display(),
            signature.printed_name,
            f"{signature.signed_at.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        )

    @admin.display(description="state", ordering="state")
    def state_display(self, obj: DecisionRecord) -> str:
        # Not sealed yet: why, since when, and the next automatic attempt (signoffs.record_status)
        return record_status_html(obj)

    @admin.display(description="fingerprint (SHA-256)")
    def fingerprint(self, obj: DecisionRecord) -> str:
        return obj.snapshot_sha256[:16] + "…" if obj.snapshot_sha256 else EMPTY

    @admin.display(description="PDF")
    def download(self, obj: DecisionRecord) -> str:
        if obj.pk is None or obj.state != RecordState.READY:
            return EMPTY
        url = reverse("admin:signoffs_decisionrecord_download", args=[obj.pk])
        return format_html('<a href="{}">Download (sealed PDF)</a>', url)

    @admin.display(description="sealing certificate (SHA-256)")
    def sealing_certificate(self, obj: DecisionRecord) -> str:
        # The certificate in the stored PDF's seal, compared with the one configured now
        return sealing_certificate_html(obj)

    # ------------------------------------------------ views
    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "certificate/",
                view(partial(certificate_page, self)),
                name="signoffs_decisionrecord_certificate",
            ),
            path(
                "certificate/pem/",
                view(partial(certificate_pem, self)),
                name="signoffs_decisionrecord_certificate_pem",
            ),
            path(
                "<path:object_id>/download/",
                view(self.download_view),
                name="signoffs_decisionrecord_download",
            ),
            path(
                "draft/<path:release_id>/",
                view(self.draft_view),
                name="signoffs_decisionrecord_draft",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The sealed PDF, as stored; 404 unless the user may see the record's release."""
        record = get_object_or_404(
            DecisionRecord.objects.visible_to(request.user).select_related("release"),
            pk=object_id,
        )
        if record.state != RecordState.READY:
            raise Http404("This record has not been rendered yet.")
        data = bytes(record.pdf)
        download_audit(
            request=request,
            release=record.release,
            obj=record,
            data=data,
            what="decision record",
            state="sealed",
            fmt="pdf",
            record=record,
        )
        return _pdf_response(data, "decision-record", record.release.version, record.pk)

    def draft_view(self, request: HttpRequest, release_id: str) -> HttpResponse:
        """A DRAFT record of the release as it is now; 404 unless the user may see it."""
        release = get_object_or_404(visible_releases(request.user), pk=release_id)
        data = draft_pdf(release=release)
        download_audit(
            request=request,
            release=release,
            obj=release,
            data=data,
            what="DRAFT decision record",
            state="draft",
            fmt="pdf",
        )
        return _pdf_response(data, "draft-record", release.version)

    # ------------------------------------------------ actions
    @admin.action(description="Retry rendering of the selected records", permissions=["retry"])
    def retry_rendering(self, request: HttpRequest, queryset: QuerySet) -> None:
        managed = managed_ids(request)
        queued = 0
        for record in queryset.select_related("release"):
            if not request.user.is_superuser and record.release_id not in managed:
                refusal = PermissionDenied("only the release's product managers retry a render.")
                self.report_denied(request, refusal, prefix=f"{record}: ", release=record.release)
                continue
            try:
                record_retry(record=record, by=request.user)
            except PermissionDenied as error:
                self.report_denied(request, error, prefix=f"{record}: ", release=record.release)
            except ValidationError as error:
                self.report_validation_error(request, error, prefix=f"{record}: ")
            else:
                queued += 1
        if queued:
            self.message_user(request, f"Rendering queued again for {queued} record(s).")
