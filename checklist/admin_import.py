"""The admin's upload page for a Markdown checklist: the same import as ``manage.py
import_checklist``, for a product manager in the browser.

Who may import: a staff user holding the model permission to add releases (the product managers'
group has it) or a superuser. Replacing the checklist of an existing version is allowed only to
someone who manages that release. The file is checked and written by
``signoffs.documents.release_import`` (all or nothing, every row with its history); a refused
file is shown as ``FILE:LINE: problem`` and nothing is written. The importer becomes the owner of
a release that has none, which grants them its management."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from signoffs.documents import release_import
from signoffs.services import release_access_refresh, release_set_owner

from .admin_base import forget_access
from .audit import audit_denied
from .importers import ChecklistImportError, parse_checklist
from .models import Release
from .permissions import can_manage_release

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.core.files.uploadedfile import UploadedFile

IMPORT_TEMPLATE = "admin/checklist/release/import.html"
# The importer's refusal names the command's --replace flag; on this page it is a checkbox.
REPLACE_HINT = (
    "To replace that release's checklist, tick “Replace the existing version” "
    "(only for a release you manage)."
)


class ImportForm(forms.Form):
    checklist = forms.FileField(
        label="Markdown checklist",
        help_text="A UTF-8 Markdown file in the checklist format (see the import format guide).",
        widget=forms.ClearableFileInput(attrs={"accept": ".md,.markdown,.txt,text/markdown"}),
    )
    replace = forms.BooleanField(
        required=False,
        label="Replace the existing version",
        help_text=(
            "Only for a release you manage: its content is replaced by the file's, signing "
            "roles still in the file keep their signer and signatures."
        ),
    )


def _read(upload: UploadedFile) -> bytes:
    """The uploaded bytes; a file over the limit is refused before it is read."""
    limit = settings.CHECKLIST_IMPORT_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise ChecklistImportError(
            f"the file is {upload.size:,} bytes; the limit is {limit:,} bytes "
            "(CHECKLIST_IMPORT_MAX_BYTES)",
            source_name=upload.name,
        )
    return upload.read()


def _refuse_replace_unless_managed(request: HttpRequest, data: bytes, source_name: str) -> None:
    """Replacing rewrites a release's content: only its managers may do it."""
    version = parse_checklist(data, source_name=source_name).release.version
    existing = Release.objects.filter(version=version).first()
    if existing is not None and not can_manage_release(request.user, existing):
        message = (
            f"{source_name}: release {version} exists and you do not manage it; "
            "only its product managers can replace its checklist."
        )
        audit_denied(request, reason=message, release=existing)
        raise ValidationError(message)


@transaction.atomic
def _import(request: HttpRequest, upload: UploadedFile, replace: bool) -> Release:
    data = _read(upload)
    if replace:
        _refuse_replace_unless_managed(request, data, upload.name)
    release = release_import(text=data, source_name=upload.name, replace=replace, user=request.user)
    if release.owner_id is None:
        release = release_set_owner(release=release, owner=request.user, by=request.user)
    release_access_refresh(release=release, user=release.owner)
    return release


def import_view(model_admin: ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Upload a checklist; on success go to the new release's page."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied("Importing a checklist needs the permission to add releases.")
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["checklist"]
        replace = form.cleaned_data["replace"]
        try:
            release = _import(request, upload, replace)
        except ValidationError as error:  # ChecklistImportError is one: FILE:LINE: problem
            for message in error.messages:
                form.add_error(None, message)
            if not replace and any("already exists" in m for m in error.messages):
                form.add_error(None, REPLACE_HINT)
        else:
            forget_access(request)
            verb = "Replaced" if replace else "Imported"
            model_admin.log_addition(request, release, f"{verb} from {upload.name}.")
            model_admin.message_user(
                request,
                f"{verb} {release} from {upload.name}: {release.items.count()} items, "
                f"{release.signoff_requirements.count()} sign-off roles, "
                f"{release.criteria.count()} GO / NO-GO criteria.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(
                reverse("admin:checklist_release_change", args=[release.pk])
            )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Import a checklist",
        "opts": model_admin.model._meta,
        "form": form,
        "max_bytes": settings.CHECKLIST_IMPORT_MAX_BYTES,
    }
    return TemplateResponse(request, IMPORT_TEMPLATE, context)
