"""The admin's upload page for a Markdown checklist: the same import as ``manage.py
import_checklist``, for a product manager in the browser.

Who may import: a staff user holding the model permission to add releases (the product managers'
group has it) or a superuser. Replacing the checklist of an existing version is allowed only to
someone who manages that release. The file is checked and written by
``signoffs.import_jobs.checklist_upload_import`` (all or nothing, every row with its history); a
refused file is shown as ``FILE:LINE: problem`` and nothing is written. The importer becomes the
owner of a release that has none, which grants them its management.

A large file (``upload_needs_worker``) is handed to the worker as an import job: the page then
shows the job's progress (``import_job_view``, polled by ``checklist/import_job.js``) and, when it
ends, the same result or errors a direct import shows. Only the uploader sees their job."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from dcmms_release.passive_session import mark_passive
from signoffs.import_jobs import (
    checklist_upload_import,
    import_job_create,
    import_job_status,
    import_summary,
    upload_needs_worker,
)

from .admin_base import forget_access
from .choices import ImportJobState
from .importers import ChecklistImportError
from .models import ImportJob, Release

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.core.files.uploadedfile import UploadedFile

IMPORT_TEMPLATE = "admin/checklist/release/import.html"
JOB_TEMPLATE = "admin/checklist/release/import_job.html"
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


def _show_errors(form: ImportForm, errors: list[str], *, replace: bool) -> None:
    for message in errors:
        form.add_error(None, message)
    if not replace and any("already exists" in m for m in errors):
        form.add_error(None, REPLACE_HINT)


def _start(request: HttpRequest, upload: UploadedFile, replace: bool) -> Release | ImportJob:
    """Import a small file now; keep a large one as a job for the worker."""
    data = _read(upload)
    if upload_needs_worker(data):
        return import_job_create(
            user=request.user, data=data, source_name=upload.name, replace=replace
        )
    return checklist_upload_import(
        user=request.user, data=data, source_name=upload.name, replace=replace
    )


def import_view(model_admin: ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Upload a checklist; on success go to the new release's page, or to the import job's
    page when the worker imports it."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied("Importing a checklist needs the permission to add releases.")
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["checklist"]
        replace = form.cleaned_data["replace"]
        try:
            with transaction.atomic():
                started = _start(request, upload, replace)
        except ValidationError as error:  # ChecklistImportError is one: FILE:LINE: problem
            _show_errors(form, error.messages, replace=replace)
        else:
            if isinstance(started, ImportJob):
                return HttpResponseRedirect(_job_url(started))
            forget_access(request)
            verb = "Replaced" if replace else "Imported"
            model_admin.log_addition(request, started, f"{verb} from {upload.name}.")
            summary = import_summary(started, source_name=upload.name, replace=replace)
            model_admin.message_user(request, summary, messages.SUCCESS)
            return HttpResponseRedirect(
                reverse("admin:checklist_release_change", args=[started.pk])
            )
    return _form_page(model_admin, request, form)


def _form_page(model_admin: ModelAdmin, request: HttpRequest, form: ImportForm) -> HttpResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Import a checklist",
        "opts": model_admin.model._meta,
        "form": form,
        "max_bytes": settings.CHECKLIST_IMPORT_MAX_BYTES,
        "max_items": f"{settings.CHECKLIST_IMPORT_MAX_ITEMS:,}",
        "async_items": f"{settings.CHECKLIST_IMPORT_ASYNC_ITEMS:,}",
    }
    return TemplateResponse(request, IMPORT_TEMPLATE, context)


# ---------------------------------------------------------------- the worker's import


def _job_url(job: ImportJob, name: str = "checklist_release_import_job") -> str:
    return reverse(f"admin:{name}", args=[job.pk])


def _own_job(model_admin: ModelAdmin, request: HttpRequest, job_id: int) -> ImportJob:
    """The uploader's own job: anyone else gets 404, as for a release they may not see."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied("Importing a checklist needs the permission to add releases.")
    job = ImportJob.objects.filter(pk=job_id, created_by=request.user).first()
    if job is None:
        raise Http404("No such import.")
    return job


def import_job_view(model_admin: ModelAdmin, request: HttpRequest, job_id: int) -> HttpResponse:
    """The job's progress while the worker imports; then what a direct import shows: the
    release's page with the summary, or the upload form with the errors."""
    job = _own_job(model_admin, request, job_id)
    if job.state == ImportJobState.DONE and job.imported_release_id is not None:
        forget_access(request)
        model_admin.message_user(request, job.summary, messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:checklist_release_change", args=[job.imported_release_id])
        )
    if job.state == ImportJobState.FAILED:
        form = ImportForm(initial={"replace": job.replace})
        form.cleaned_data = {}  # unbound, empty: it carries the job's errors, as a post would
        _show_errors(form, job.errors, replace=job.replace)
        return _form_page(model_admin, request, form)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Importing {job.source_name}",
        "opts": model_admin.model._meta,
        "job": job,
        "status": import_job_status(job),
        "status_url": _job_url(job, "checklist_release_import_job_status"),
    }
    return TemplateResponse(request, JOB_TEMPLATE, context)


def import_job_status_view(
    model_admin: ModelAdmin, request: HttpRequest, job_id: int
) -> JsonResponse:
    """The job's progress as JSON, for the page's script; the poll is not the person's activity
    (its session is not saved: on SQLite it would wait for the import's write lock)."""
    mark_passive(request)
    return JsonResponse(import_job_status(_own_job(model_admin, request, job_id)))
