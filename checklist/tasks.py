"""Celery tasks of the checklist app (autodiscovered by ``dcmms_release.celery``).

``chain_sweep`` is the audit chain's full sweep (``checklist.chain``), on beat every
``AUDIT_CHAIN_SWEEP_MINUTES``: it links every protected row that no transaction marked for the
sweep after its commit, so an unmarked row waits at most that long for its link."""

from __future__ import annotations

import logging

from celery import shared_task

from .chain import chain_pending

logger = logging.getLogger(__name__)


@shared_task(name="checklist.chain_sweep", ignore_result=True)
def chain_sweep() -> int:
    linked = chain_pending()
    if linked:
        logger.info("Audit chain full sweep linked %s unmarked rows", linked)
    return linked
