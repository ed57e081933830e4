"""Digests whose worker died between claim and send: found, claimed again, sent once.

The rule, as an auditor reads it: a ``ReminderDispatch`` row still *claimed* more than
``REMINDER_CLAIM_STALE_MINUTES`` after its claim is stuck — the worker that claimed it stopped
before it recorded an outcome. Beat's sweep (``signoffs.retry_stuck_reminders``, every
``REMINDER_SWEEP_MINUTES``) takes each stuck row again under a row lock, on condition that it
is still the same stuck claim (claimed, same attempt number, claimed before the stale limit).
The one sweep that wins counts an attempt, records "claimed again" in the row's history and
sends; a second sweep, a redelivered task or the first worker coming back late finds the claim
taken and sends nothing, and records nothing over it. Every attempt of one dispatch carries the
same Message-ID (``reminder_services.dispatch_message_id``): if the dead worker's mail did reach
the mail server, a server or client that de-duplicates by Message-ID shows it once.

A stuck digest is not sent late: one whose day is before yesterday is closed as *failed* with
the reason. One with nothing left to send (the release no longer sends reminders; the person
has nothing to act on, is inactive or has no address) is closed as *nothing to send*. The stale
limit must stay well above ``EMAIL_TIMEOUT``, or a slow but living send would be taken for a
dead one."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .choices import DispatchStatus
from .models import ReminderDispatch
from .reminder_services import (
    SEND_ERRORS,
    DeliveryResult,
    Outcome,
    _save,
    digest_render,
    dispatch_mail,
)
from .reminders import digest_for, sends_for_status

logger = logging.getLogger(__name__)

LATE_DAYS = 1  # a digest of yesterday is still worth sending; an older one is closed
SWEEP_BATCH = 100  # stuck rows handled per sweep; the next sweep takes the rest


def stale_minutes() -> int:
    return max(1, int(settings.REMINDER_CLAIM_STALE_MINUTES))


def stale_cutoff(now: datetime.datetime | None = None) -> datetime.datetime:
    """A claim taken before this moment and still claimed is stuck."""
    return (now or timezone.now()) - datetime.timedelta(minutes=stale_minutes())


def stuck_dispatches(now: datetime.datetime | None = None) -> QuerySet[ReminderDispatch]:
    """Claimed rows whose claim is older than the stale limit, oldest claim first."""
    return ReminderDispatch.objects.filter(
        status=DispatchStatus.CLAIMED, claimed_at__lt=stale_cutoff(now)
    ).order_by("claimed_at", "pk")


def is_stuck(dispatch: ReminderDispatch, now: datetime.datetime | None = None) -> bool:
    return dispatch.status == DispatchStatus.CLAIMED and dispatch.claimed_at < stale_cutoff(now)


def _take(dispatch: ReminderDispatch, now: datetime.datetime) -> ReminderDispatch | None:
    """Lock the row if it is still the stuck claim we saw (None otherwise). Call inside an
    atomic block: on PostgreSQL a second sweep waits here, then finds the claim changed."""
    return (
        ReminderDispatch.objects.select_for_update()
        .filter(
            pk=dispatch.pk,
            status=DispatchStatus.CLAIMED,
            attempts=dispatch.attempts,
            claimed_at__lt=stale_cutoff(now),
        )
        .first()
    )


def _stuck_for(row: ReminderDispatch, now: datetime.datetime) -> str:
    return f"{int((now - row.claimed_at).total_seconds() // 60)} min"


def dispatch_retake(
    *,
    dispatch: ReminderDispatch,
    subject: str,
    summary: str,
    now: datetime.datetime | None = None,
    by: Any = None,
) -> ReminderDispatch | None:
    """Claim a stuck dispatch again, atomically: the row is locked and must still be the stuck
    claim (status, attempt number, age) that was seen. Returns the row, claimed anew (one more
    attempt, claimed now), or None when someone else took it first or it is no longer stuck."""
    now = now or timezone.now()
    with transaction.atomic():
        row = _take(dispatch, now)
        if row is None:
            return None
        reason = (
            f"Claimed again (attempt {row.attempts + 1}): the previous claim was stuck for "
            f"{_stuck_for(row, now)} with nothing recorded"
        )
        row.attempts += 1
        row.claimed_at = now
        row.subject = subject
        row.summary = summary
        _save(row, by=by, reason=reason)
        return row


def dispatch_close_stuck(
    *,
    dispatch: ReminderDispatch,
    status: str,
    why: str,
    now: datetime.datetime | None = None,
    by: Any = None,
) -> ReminderDispatch | None:
    """Close a stuck dispatch that will not be sent (failed, or nothing to send), under the
    same condition as ``dispatch_retake``. None when it is no longer the stuck claim seen."""
    now = now or timezone.now()
    with transaction.atomic():
        row = _take(dispatch, now)
        if row is None:
            return None
        row.status = status
        if status == DispatchStatus.FAILED:
            row.last_error = why[:2000]
        _save(row, by=by, reason=f"Stuck claim closed after {_stuck_for(row, now)}: {why}")
        return row


def stuck_dispatch_retry(
    *, dispatch: ReminderDispatch, now: datetime.datetime | None = None, by: Any = None
) -> DeliveryResult:
    """Send one stuck dispatch again (or close it), at most once whoever else tries. A refusal
    of the mail server is recorded on the row (failed) and raised again."""
    now = now or timezone.now()
    ids = (dispatch.recipient_id, dispatch.release_id)
    if dispatch.date < timezone.localdate(now) - datetime.timedelta(days=LATE_DAYS):
        why = f"not sent: the digest of {dispatch.date.isoformat()} is too old to send late"
        closed = dispatch_close_stuck(
            dispatch=dispatch, status=DispatchStatus.FAILED, why=why, now=now, by=by
        )
        return DeliveryResult(Outcome.NOT_DUE if closed else Outcome.ALREADY, *ids, closed)
    release = dispatch.release
    digest = None
    if sends_for_status(release.status):
        digest = digest_for(recipient_id=dispatch.recipient_id, release=release, date=dispatch.date)
    if digest is None:
        why = (
            "nothing to send: the person has nothing to act on"
            if sends_for_status(release.status)
            else "nothing to send: reminders are not sent for a release that is "
            f"{release.get_status_display()}"
        )
        closed = dispatch_close_stuck(
            dispatch=dispatch, status=DispatchStatus.EMPTY, why=why, now=now, by=by
        )
        return DeliveryResult(Outcome.NOTHING if closed else Outcome.ALREADY, *ids, closed)
    rendered = digest_render(digest)
    row = dispatch_retake(
        dispatch=dispatch, subject=rendered[0], summary=digest.summary, now=now, by=by
    )
    if row is None:
        return DeliveryResult(Outcome.ALREADY, *ids)
    logger.warning(
        "Dispatch %s (%s to user %s, release %s) was stuck in claimed: sending, attempt %d",
        row.pk,
        row.date,
        row.recipient_id,
        row.release_id,
        row.attempts,
    )
    return dispatch_mail(dispatch=row, digest=digest, rendered=rendered, by=by)


def stuck_dispatches_retry(
    *, now: datetime.datetime | None = None, by: Any = None
) -> list[DeliveryResult]:
    """Beat's sweep: every stuck dispatch sent again or closed, each at most once. A mail
    server refusal is recorded on its row and reported as failed, not raised."""
    results = []
    stuck = stuck_dispatches(now).select_related("release")[:SWEEP_BATCH]
    for dispatch in stuck:
        try:
            results.append(stuck_dispatch_retry(dispatch=dispatch, now=now, by=by))
        except SEND_ERRORS as error:
            results.append(
                DeliveryResult(
                    Outcome.FAILED,
                    dispatch.recipient_id,
                    dispatch.release_id,
                    dispatch,
                    error=f"{type(error).__name__}: {error}",
                )
            )
    return results
