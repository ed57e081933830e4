"""The worker's side of a large checklist upload (``signoffs.import_jobs``): import one job."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="signoffs.run_import_job", ignore_result=True)
def run_import_job(job_id: int) -> str:
    """Import the checklist kept by job ``job_id``. Not retried: a refused or failed import is
    the job's outcome, shown on its page. A job that vanished or has already ended (a
    redelivered task) is left alone. Returns the job's state (or "skipped")."""
    from .import_jobs import import_job_run

    job = import_job_run(job_id=job_id)
    if job is None:
        logger.info("Import job %s: nothing to do (vanished or already ended)", job_id)
        return "skipped"
    return job.state
