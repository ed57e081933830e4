"""The decision record's background work: render and seal a record after its decision commits."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError as DatabaseOperationalError

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
