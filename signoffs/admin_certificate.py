"""The signing certificate page in the admin: the certificate that seals decision records, its
SHA-256 fingerprint (the one every record's pages print) and a PEM download, for whoever may
view decision records (auditors, the releases' product managers, stakeholders, signers). The
download is an audit event (``record_download``), like a record's."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from checklist.downloads import attachment_response

from .cert_info import CertInfo, sha256_colons
from .record_export import certificate_download_audit
from .signing_cert import SealError, configured_certificate
from .verify import sealing_certificate

TEMPLATE = "admin/signoffs/decisionrecord/certificate.html"
PEM_NAME = "dcmms-decision-record-signing-cert.pem"


def _require_view(model_admin, request: HttpRequest) -> None:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied("Only those who may view decision records see the certificate.")


def certificate_page(model_admin, request: HttpRequest) -> TemplateResponse:
    """Subject, validity and SHA-256 of the configured signing certificate."""
    _require_view(model_admin, request)
    certificate: CertInfo | None = None
    problem = ""
    try:
        certificate = configured_certificate()
    except SealError as exc:
        problem = str(exc)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Decision-record signing certificate",
        "opts": model_admin.opts,
        "certificate": certificate,
        "colons": sha256_colons(certificate.sha256) if certificate else "",
        "filename": PEM_NAME,
        "problem": problem,
    }
    return TemplateResponse(request, TEMPLATE, context)


def certificate_pem(model_admin, request: HttpRequest) -> HttpResponse:
    """The certificate as PEM (public: never the key), recorded as a download."""
    _require_view(model_admin, request)
    try:
        certificate = configured_certificate()
    except SealError as exc:
        raise Http404(str(exc)) from exc
    certificate_download_audit(request=request, certificate=certificate)
    return attachment_response(
        certificate.pem, filename=PEM_NAME, content_type="application/x-pem-file"
    )


def sealing_certificate_html(record) -> str:
    """The record page's line: the SHA-256 and subject of the certificate in the stored PDF's
    seal, whether it is the one configured now, and a link to the certificate page."""
    if not record.pdf:
        return "— (not sealed yet)"
    sealed_by = sealing_certificate(bytes(record.pdf))
    if sealed_by is None:
        return "— (the stored PDF carries no readable seal)"
    try:
        current = configured_certificate().sha256
    except SealError:
        current = ""
    verdict = (
        "the configured signing certificate"
        if sealed_by.sha256 == current
        else "NOT the certificate configured now"
    )
    url = reverse("admin:signoffs_decisionrecord_certificate")
    return format_html(
        '<code>{}</code><br>{} — {} (<a href="{}">signing certificate</a>)',
        sealed_by.sha256,
        sealed_by.subject,
        verdict,
        url,
    )
