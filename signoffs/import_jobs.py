"""Checklist uploads from the admin (issue #14, point 10): a small file is imported in the
request; a large one is kept as an ``ImportJob`` and imported by the worker, whose progress the
page shows. Both run ``checklist_upload_import``, so the result and the refusals are the same.

Progress is written to a small file per job under ``CHECKLIST_IMPORT_JOB_DIR`` (the var
folder), not to the database: the import is one transaction (all or nothing), and on SQLite a
second writer would wait for it to end. The job row itself moves queued → running → done |
failed in transactions of its own, before and after the import's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from checklist.audit import audit_denied
from checklist.choices import ImportJobState
from checklist.importers import checkbox_lines_estimate, parse_checklist
from checklist.models import ImportJob, Release
from checklist.permissions import may_manage, require_import
from dcmms_release.broker import publish

from .documents import Progress, release_import_parsed
from .import_tasks import run_import_job
from .services import release_access_refresh, release_set_owner

logger = logging.getLogger(__name__)

# A task redelivered after its worker died runs the job again (the lost attempt wrote nothing);
# after this many starts the job is failed instead of being tried forever.
MAX_ATTEMPTS = 3
PROGRESS_EVERY_SECONDS = 0.5
CHECKING, WRITING = "checking", "writing"
NOT_QUEUED = (
    "The import could not be queued: the worker's queue did not answer. Nothing was imported; "
    "upload the file again in a moment."
)


# ---------------------------------------------------------------- the import, for a person


def upload_needs_worker(data: bytes) -> bool:
    """A file past CHECKLIST_IMPORT_ASYNC_BYTES or with more checkbox lines than
    CHECKLIST_IMPORT_ASYNC_ITEMS is imported by the worker, not in the request."""
    return (
        len(data) > settings.CHECKLIST_IMPORT_ASYNC_BYTES
        or checkbox_lines_estimate(data) > settings.CHECKLIST_IMPORT_ASYNC_ITEMS
    )


def import_summary(release: Release, *, source_name: str, replace: bool) -> str:
    """What the page says after an import, direct or by the worker."""
    verb = "Replaced" if replace else "Imported"
    return (
        f"{verb} {release} from {source_name}: {release.items.count()} items, "
        f"{release.signoff_requirements.count()} sign-off roles, "
        f"{release.criteria.count()} GO / NO-GO criteria."
    )


def checklist_upload_import(
    *,
    user: AbstractBaseUser,
    data: bytes,
    source_name: str,
    replace: bool,
    progress: Progress | None = None,
) -> Release:
    """Import an uploaded checklist for a person, all or nothing.

    The rule, as an auditor reads it: only someone who may add releases imports
    (``require_import``); replacing the checklist of an existing version is refused, with a
    ``permission_denied`` event, unless they manage that release; every row written carries the
    history entry "Imported from <file>" by them; the importer becomes the owner of a release
    that has none, which grants them its management. Bad input raises ChecklistImportError
    (``FILE:LINE: problem``), the file's bounds included (``ImportLimits``), and nothing is
    written. ``progress`` is told the rows written (see ``signoffs.documents.Progress``).
    """
    require_import(user)
    # Read before the transaction: on SQLite the database is locked for writes from its start.
    parsed = parse_checklist(data, source_name=source_name)
    with transaction.atomic():
        if replace:
            version = parsed.release.version
            existing = Release.objects.filter(version=version).first()
            if existing is not None and not may_manage(user, existing):
                message = (
                    f"{source_name}: release {version} exists and you do not manage it; "
                    "only its product managers can replace its checklist."
                )
                audit_denied(user, reason=message, release=existing)
                raise ValidationError(message)
        release = release_import_parsed(
            parsed=parsed, replace=replace, user=user, progress=progress
        )
        if release.owner_id is None:
            release = release_set_owner(release=release, owner=user, by=user)
        release_access_refresh(release=release, user=release.owner)
        return release


# ---------------------------------------------------------------- jobs


def import_job_create(
    *, user: AbstractBaseUser, data: bytes, source_name: str, replace: bool
) -> ImportJob:
    """Keep an upload for the worker and queue it once this transaction commits. Only someone
    who may import creates a job; the worker asks again when it runs the job."""
    require_import(user)
    job = ImportJob(
        created_by=user,
        source_name=source_name[:255],
        replace=replace,
        data=data,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    job.full_clean(exclude=["data", "created_by", "imported_release"])
    job.save()
    transaction.on_commit(partial(_enqueue, job.pk))
    return job


def _enqueue(job_id: int) -> None:
    try:
        publish(run_import_job, job_id)
    except OperationalError:  # logged by publish; the job says so instead of waiting forever
        import_job_fail(job_id=job_id, message=NOT_QUEUED)


@transaction.atomic
def _claim(job_id: int) -> ImportJob | None:
    """The job, now running; None when it vanished, has ended, or was started too often."""
    job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.finished:
        return None
    if job.attempts >= MAX_ATTEMPTS:
        message = (
            f"{job.source_name}: the worker stopped {job.attempts} times while importing this "
            "file; nothing was imported. Ask an administrator to look at the worker's log."
        )
        _finish(job, state=ImportJobState.FAILED, errors=[message])
        return None
    job.state = ImportJobState.RUNNING
    job.attempts += 1
    job.started_at = timezone.now()
    job.save(update_fields=["state", "attempts", "started_at"])
    return job


def _finish(job: ImportJob, **fields: Any) -> ImportJob:
    """End the job: its outcome saved, the file dropped (its SHA-256 stays), no progress."""
    for name, value in fields.items():
        setattr(job, name, value)
    job.data = b""
    job.finished_at = timezone.now()
    job.save(update_fields=[*fields, "data", "finished_at"])
    progress_forget(job.pk)
    return job


def import_job_run(*, job_id: int) -> ImportJob | None:
    """The worker's import of one job, as the page would have run it (``checklist_upload_import``
    as the uploader). The outcome is saved on the job: done with the release and the page's
    summary (and the uploader's admin log entry), or failed with the messages the page shows.
    None when the job vanished or has already ended (a redelivered task)."""
    job = _claim(job_id)
    if job is None:
        return None
    report = ProgressFile(job.pk)
    report.phase(CHECKING)
    try:
        release = checklist_upload_import(
            user=job.created_by,
            data=bytes(job.data),
            source_name=job.source_name,
            replace=job.replace,
            progress=report.rows,
        )
    except ValidationError as error:  # ChecklistImportError is one: FILE:LINE: problem
        return _finish(job, state=ImportJobState.FAILED, errors=list(error.messages))
    except PermissionDenied as error:
        return _finish(job, state=ImportJobState.FAILED, errors=[str(error)])
    except Exception:
        logger.exception("Import job %s (%s) failed", job.pk, job.source_name)
        message = (
            f"{job.source_name}: the import stopped on an unexpected error; nothing was "
            f"written. Ask an administrator to look at the worker's log (import job {job.pk})."
        )
        return _finish(job, state=ImportJobState.FAILED, errors=[message])
    summary = import_summary(release, source_name=job.source_name, replace=job.replace)
    verb = "Replaced" if job.replace else "Imported"
    LogEntry.objects.log_actions(
        user_id=job.created_by_id,
        queryset=[release],
        action_flag=ADDITION,
        change_message=f"{verb} from {job.source_name}.",
        single_object=True,
    )
    return _finish(job, state=ImportJobState.DONE, imported_release=release, summary=summary)


def import_job_fail(*, job_id: int, message: str) -> ImportJob | None:
    """End a job that will not run (it could not be queued) with ``message``."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.finished:
            return job
        return _finish(job, state=ImportJobState.FAILED, errors=[message])


# ---------------------------------------------------------------- progress


def _progress_path(job_id: int) -> Path:
    return Path(settings.CHECKLIST_IMPORT_JOB_DIR) / f"job-{job_id}.json"


class ProgressFile:
    """The worker's progress on one job, in a small JSON file replaced atomically, at most every
    PROGRESS_EVERY_SECONDS (and always at the end). A file that cannot be written costs the
    page its progress bar, never the import."""

    def __init__(self, job_id: int) -> None:
        self.path = _progress_path(job_id)
        self.state = {"phase": CHECKING, "done": 0, "total": 0}
        self.last = 0.0

    def phase(self, name: str) -> None:
        self.state["phase"] = name
        self._write()

    def rows(self, done: int, total: int) -> None:
        self.state.update(phase=WRITING, done=done, total=total)
        if done >= total or time.monotonic() - self.last >= PROGRESS_EVERY_SECONDS:
            self._write()

    def _write(self) -> None:
        self.last = time.monotonic()
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(self.state), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as error:
            logger.warning("Import progress not written to %s: %s", self.path, error)


def progress_forget(job_id: int) -> None:
    try:
        _progress_path(job_id).unlink(missing_ok=True)
    except OSError as error:
        logger.warning("Import progress file of job %s not removed: %s", job_id, error)


def _progress_read(job_id: int) -> dict[str, Any]:
    try:
        state = json.loads(_progress_path(job_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def import_job_status(job: ImportJob) -> dict[str, Any]:
    """What the page shows of a job: its state, what it is doing in words, rows written of
    rows to write (0 and 0 when not known), and whether it has ended."""
    status: dict[str, Any] = {
        "state": job.state,
        "state_label": job.get_state_display(),
        "finished": job.finished,
        "done": 0,
        "total": 0,
    }
    if job.state == ImportJobState.QUEUED:
        waited = int((timezone.now() - job.created_at).total_seconds())
        status["phase"] = f"Waiting for the worker (queued {waited} s ago)."
    elif job.state == ImportJobState.RUNNING:
        progress = _progress_read(job.pk)
        done, total = int(progress.get("done", 0)), int(progress.get("total", 0))
        if progress.get("phase") == WRITING and total:
            status.update(done=min(done, total), total=total)
            status["phase"] = (
                f"Writing: {done:,} of {total:,} rows."
                if done < total
                else f"Saving {total:,} rows and linking their audit trail."
            )
        else:
            status["phase"] = "Checking the file."
    elif job.state == ImportJobState.DONE:
        status["phase"] = job.summary
    else:
        status["phase"] = "The import failed; nothing was written."
    return status
