"""Celery tasks of the sign-off app (autodiscovered by ``dcmms_release.celery``)."""

from .import_tasks import run_import_job  # noqa: F401
from .record_tasks import render_decision_record, retry_decision_records  # noqa: F401
from .reminder_tasks import (  # noqa: F401
    retry_stuck_reminders,
    send_daily_reminders,
    send_review_digest,
)
