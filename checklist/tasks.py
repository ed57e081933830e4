"""Celery tasks of the checklist app (autodiscovered by ``dcmms_release.celery``).

``chain_anchor``, on beat every ``AUDIT_ANCHOR_MINUTES``: appends the audit chain's head to the
anchor log outside the database (``checklist.anchors``) and reports, in the log, any row of a
chained table that has no link — a row the portal did not write (``checklist.chain_checks``).

``send_security_alert``, queued when an account is under attack (``dcmms_release.account_alerts``):
mails the ``account_attack`` audit event to ``SECURITY_ALERT_EMAIL``."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from dcmms_release.account_alerts import MAIL_ERRORS, attack_alert_send

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


@shared_task(
    name="checklist.send_security_alert",
    ignore_result=True,
    autoretry_for=MAIL_ERRORS,
    retry_backoff=60,
    retry_backoff_max=900,
    max_retries=5,
)
def send_security_alert(event_id: int) -> bool:
    """Mail the ``account_attack`` audit event ``event_id`` to ``SECURITY_ALERT_EMAIL``
    (``dcmms_release.account_alerts``); retried on mail-server and network errors."""
    return attack_alert_send(event_id)
