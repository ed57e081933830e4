"""The decision record's background work: render and seal a record after its decision commits,
and (beat, every ``DECISION_RECORD_RETRY_SECONDS``) render again every record still pending
whose next attempt has come — the broker was down, a render failed, a task was lost."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError as DatabaseOperationalError

from .choices import RecordState
from .models import DecisionRecord

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    autoretry_for=(DatabaseOperationalError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def render_decision_record(self, record_id: int) -> str:
    """Render and seal one decision record by its ID; retried only when the database is
    momentarily unavailable. A record that vanished is logged and left alone. Returns the
    record's state (or "missing")."""
    from .records import record_render

    try:
        record = record_render(record_id=record_id)
    except DecisionRecord.DoesNotExist:
        logger.warning("Decision record %s no longer exists; nothing to render", record_id)
        return "missing"
    return record.state


@shared_task(name="signoffs.retry_decision_records", ignore_result=True)
def retry_decision_records() -> int:
    """Beat's task: render the pending records that are due (``records_retry_due``: bounded
    attempts with backoff, idempotent). Returns how many were tried."""
    from .records import records_retry_due

    records = records_retry_due()
    for record in records:
        if record.state != RecordState.READY:
            logger.warning("Decision record %s not sealed: %s", record.pk, record.failure_reason)
    return len(records)
