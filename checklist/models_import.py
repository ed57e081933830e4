"""A checklist upload imported by the worker (issue #14, point 10): the admin import page hands a
large file to a Celery task and shows this row's progress and result."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .choices import ImportJobState


class ImportJob(models.Model):
    """One uploaded checklist waiting for, or imported by, the worker.

    Status flow: queued → running → done | failed (a redelivered task may run a job that is
    still "running" again: the import is one transaction, so nothing of the lost attempt
    stayed). The file is kept in ``data`` until the job ends, then dropped (its SHA-256 stays);
    the rows imported carry their own history. Not an audit record: it tells the uploader how
    the import went.
    """

    TERMINAL = (ImportJobState.DONE, ImportJobState.FAILED)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    source_name = models.CharField("file name", max_length=255)
    replace = models.BooleanField(default=False)
    data = models.BinaryField(blank=True, editable=False)
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    state = models.CharField(
        max_length=10, choices=ImportJobState.choices, default=ImportJobState.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Not named "release": the job is the uploader's, not a row of the release; it goes with the
    # release all the same (CASCADE: the retention purge follows it, checklist.retention_rows).
    imported_release = models.ForeignKey(
        "checklist.Release", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    summary = models.CharField(max_length=500, blank=True)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=ImportJobState.values), name="import_job_state_valid"
            )
        ]

    def __str__(self) -> str:
        return f"Import of {self.source_name} ({self.get_state_display()})"

    @property
    def finished(self) -> bool:
        return self.state in self.TERMINAL
