"""Celery tasks of the checklist app (autodiscovered by ``dcmms_release.celery``).

``chain_anchor``, on beat every ``AUDIT_ANCHOR_MINUTES``: appends the audit chain's head to the
anchor log outside the database (``checklist.anchors``) and reports, in the log, any row of a
chained table that has no link — a row the portal did not write (``checklist.chain_checks``)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from .anchors import anchor_append
from .chain_checks import unlinked_problem

logger = logging.getLogger(__name__)


@shared_task(name="checklist.chain_anchor", ignore_result=True)
def chain_anchor() -> int | None:
    problem = unlinked_problem()
    if problem is not None:
        logger.error("Audit chain: %s (run verify_audit)", problem)
    head = anchor_append(settings.AUDIT_ANCHOR_LOG)
    return None if head is None else head["seq"]
