"""Celery tasks of the sign-off app (autodiscovered by ``dcmms_release.celery``)."""

from .record_tasks import render_decision_record, retry_decision_records  # noqa: F401
from .reminder_tasks import send_daily_reminders, send_review_digest  # noqa: F401
