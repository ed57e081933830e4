"""The daily reminder run on Celery.

``send_daily_reminders`` is the one beat task (``CELERY_BEAT_SCHEDULE``, at ``REMINDER_HOUR``
o'clock in ``TIME_ZONE``; exactly one beat runs). It computes who is due and, once its reads are
committed, queues one ``send_review_digest`` per recipient and release, by ID. The per-recipient
task claims the dispatch row before mailing (``signoffs.reminder_services``), so a redelivered
or repeated message sends nothing new; it retries only on mail-server and network errors, with
exponential backoff and a maximum. ``retry_stuck_reminders`` (beat, every
``REMINDER_SWEEP_MINUTES``) sends again the digests whose worker died between claim and send
(``signoffs.reminder_recovery``).

``enqueue`` is how anything is queued from a request: a broker that is down is logged, never
raised, so a user's save or signature never fails because a reminder could not be queued."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from celery import shared_task
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from dcmms_release.broker import publish

from .reminder_recovery import stuck_dispatches_retry
from .reminder_services import SEND_ERRORS, Outcome, digest_deliver
from .reminders import digests_due

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
RETRY_BASE_SECONDS = 60  # 1, 2, 4, 8, 16 minutes


def enqueue(task: Any, *args: Any) -> bool:
    """Queue ``task(*args)``; False (and a warning in the log) when the broker is unreachable."""
    try:
        publish(task, *args)  # bounded in time (dcmms_release.broker)
    except OperationalError as error:
        logger.warning("Broker unavailable, %s%r not queued: %s", task.name, args, error)
        return False
    return True


def enqueue_on_commit(task: Any, *args: Any) -> None:
    """Queue ``task(*args)`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: enqueue(task, *args))


def retry_countdown(retries: int) -> int:
    """Seconds before retry number ``retries + 1``: 60, 120, 240, …"""
    return RETRY_BASE_SECONDS * 2**retries


def _date(date_iso: str | None) -> datetime.date:
    return datetime.date.fromisoformat(date_iso) if date_iso else timezone.localdate()


def _fan_out(pairs: list[tuple[int, int]], date_iso: str) -> None:
    queued = 0
    for recipient_id, release_id in pairs:
        if not enqueue(send_review_digest, recipient_id, release_id, date_iso):
            # The broker is down: the rest would fail the same way, each after a timeout.
            logger.error(
                "Reminders for %s: %d of %d digests not queued (broker unavailable)",
                date_iso,
                len(pairs) - queued,
                len(pairs),
            )
            return
        queued += 1


@shared_task(name="signoffs.send_daily_reminders")
def send_daily_reminders(date_iso: str | None = None) -> int:
    """Queue one digest task per person and release due on the day (today in ``TIME_ZONE``
    by default). Returns how many were queued for."""
    date = _date(date_iso)
    pairs = [(d.recipient_id, d.release_id) for d in digests_due(date)]
    iso = date.isoformat()
    transaction.on_commit(lambda: _fan_out(pairs, iso))
    logger.info("Reminders for %s: %d digest(s) due", iso, len(pairs))
    return len(pairs)


@shared_task(
    bind=True,
    name="signoffs.send_review_digest",
    max_retries=MAX_RETRIES,
    acks_late=True,
)
def send_review_digest(self: Any, recipient_id: int, release_id: int, date_iso: str) -> str:
    """Send one person's digest about one release for one day, at most once (the dispatch
    row decides). Retries on mail-server and network errors only; a release or person that
    vanished is skipped. Returns the outcome."""
    try:
        result = digest_deliver(
            recipient_id=recipient_id, release_id=release_id, date=_date(date_iso)
        )
    except SEND_ERRORS as error:
        logger.warning(
            "Digest to user %s for release %s (%s) failed, attempt %d: %s",
            recipient_id,
            release_id,
            date_iso,
            self.request.retries + 1,
            error,
        )
        raise self.retry(exc=error, countdown=retry_countdown(self.request.retries)) from error
    return result.outcome


@shared_task(name="signoffs.retry_stuck_reminders", ignore_result=True)
def retry_stuck_reminders() -> int:
    """Beat's sweep: send again every digest stuck in *claimed* past the stale limit (each at
    most once, whatever runs beside it). One the mail server refused is handed to
    ``send_review_digest``, which retries it with backoff. Returns how many were handled."""
    results = stuck_dispatches_retry()
    for result in results:
        if result.outcome == Outcome.FAILED and result.dispatch is not None:
            logger.warning("Stuck digest %s failed again: %s", result.dispatch.pk, result.error)
            enqueue(
                send_review_digest,
                result.recipient_id,
                result.release_id,
                result.dispatch.date.isoformat(),
            )
    if results:
        outcomes = ", ".join(sorted({r.outcome for r in results}))
        logger.warning("Stuck reminder claims: %d handled (%s)", len(results), outcomes)
    return len(results)
