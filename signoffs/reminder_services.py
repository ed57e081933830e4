"""Sending the review digests, exactly once per person, release and day.

The rule, as an auditor reads it: before a digest is mailed, its ``ReminderDispatch`` row
(recipient, release, date — unique in the database) is claimed and committed. Whoever fails to
claim it — a second beat, a redelivered or concurrent task, a manual re-run, the PM's "send now"
— sends nothing. After the mail is handed to the mail server the row says *sent*; when the mail
server refuses it the row says *failed* with the error and the number of attempts, and only a
failed row can be claimed again (by the task's retry or a later run). A worker that dies between
claim and send leaves the row *claimed*; once the claim is older than
``REMINDER_CLAIM_STALE_MINUTES`` beat claims it again and sends it (``reminder_recovery``). Each
claim counts an attempt, and only the holder of the latest claim records the outcome, so a
worker that comes back late cannot overwrite what the retry did. Every attempt of one dispatch
carries the same Message-ID, so a mail that did reach the server before its worker died is shown
once by a server or client that de-duplicates by Message-ID.

Sending is deliberately not one transaction: the claim commits before the mail leaves, and the
outcome is a second, separate write. Every write is a ``save()`` of one row, so the dispatch's
history records each step (claimed, sent, failed, claimed again)."""

from __future__ import annotations

import datetime
import logging
import smtplib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from checklist.choices import ReleaseStatus
from checklist.models import Release
from checklist.permissions import require_manage

from .choices import DispatchStatus
from .models import ReminderDispatch
from .reminders import (
    Digest,
    cadence_due,
    digest_for,
    one_line,
    release_digests,
    sends_for_status,
)

logger = logging.getLogger(__name__)

# Errors of the mail server or the network: worth a retry. Anything else is a defect.
SEND_ERRORS: tuple[type[Exception], ...] = (smtplib.SMTPException, ConnectionError, TimeoutError)
SUBJECT_MAX = 300  # ReminderDispatch.subject


class Outcome:
    SENT = "sent"
    ALREADY = "already claimed"
    FAILED = "failed"
    NOTHING = "nothing to send"
    NOT_DUE = "not due"
    VANISHED = "vanished"


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one digest: the outcome, the dispatch row when there is one, and the
    error when the mail server refused it."""

    outcome: str
    recipient_id: int
    release_id: int
    dispatch: ReminderDispatch | None = None
    error: str = ""


# ---------------------------------------------------------------- rendering
def digest_subject(digest: Digest) -> str:
    """One header line: no CR/LF from any title can reach the mail headers."""
    todo = len(digest.items) + len(digest.actions) + len(digest.signoffs) + len(digest.stale)
    subject = f"[dCMMS] {digest.release_label}: review digest {digest.date.isoformat()}"
    subject += f" — {todo} to do"
    if digest.escalation:
        subject += ", escalations"
    subject = one_line(subject)
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1] + "…"


def digest_render(digest: Digest) -> tuple[str, str, str]:
    """Subject, plain text and HTML (autoescaped) of a digest."""
    subject = digest_subject(digest)
    context = {
        "digest": digest,
        "subject": subject,
        "overdue_days": settings.REMINDER_ESCALATE_OVERDUE_DAYS,
    }
    text = render_to_string("signoffs/email/digest.txt", context)
    html = render_to_string("signoffs/email/digest.html", context)
    return subject, text, html


# ---------------------------------------------------------------- the dispatch row
def _save(dispatch: ReminderDispatch, *, by: Any, reason: str) -> None:
    dispatch._history_user = by
    dispatch._change_reason = reason
    dispatch.full_clean(validate_unique=False, validate_constraints=False)
    dispatch.save()


def dispatch_claim(*, digest: Digest, subject: str, by: Any = None) -> ReminderDispatch | None:
    """Claim the digest's dispatch row, committed before anything is sent. Returns the row, or
    None when it is already sent or being sent (claimed by someone else). A row whose last
    send failed is claimed again, its attempts counted."""
    try:
        with transaction.atomic():
            dispatch = ReminderDispatch(
                recipient_id=digest.recipient_id,
                release_id=digest.release_id,
                date=digest.date,
                status=DispatchStatus.CLAIMED,
                attempts=1,
                subject=subject,
                summary=digest.summary,
            )
            _save(dispatch, by=by, reason="Claimed for sending")
            return dispatch
    except IntegrityError:
        pass  # the unique constraint: someone has the row already
    with transaction.atomic():
        dispatch = (
            ReminderDispatch.objects.select_for_update()
            .filter(
                recipient_id=digest.recipient_id, release_id=digest.release_id, date=digest.date
            )
            .first()
        )
        if dispatch is None or dispatch.status != DispatchStatus.FAILED:
            return None
        dispatch.status = DispatchStatus.CLAIMED
        dispatch.attempts += 1
        dispatch.claimed_at = timezone.now()  # the age of this claim, not of the first one
        dispatch.subject = subject
        dispatch.summary = digest.summary
        _save(
            dispatch,
            by=by,
            reason=f"Claimed again after a failed send (attempt {dispatch.attempts})",
        )
        return dispatch


def dispatch_message_id(dispatch: ReminderDispatch) -> str:
    """The Message-ID of every attempt at one dispatch: the same for a retry, so a copy that
    did reach the mail server is not shown twice; the day keeps it apart from another database's
    row with the same ID."""
    host = urlsplit(settings.PORTAL_BASE_URL).hostname or "localhost"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"<dispatch-{dispatch.pk}.{dispatch.date:%Y%m%d}@{host}>"


def _record(dispatch: ReminderDispatch, *, by: Any, error: str = "") -> bool:
    """Record the outcome of this claim; nothing when the claim was taken over meanwhile (the
    row is no longer claimed, or claimed again: another attempt number). False then."""
    with transaction.atomic():
        current = ReminderDispatch.objects.select_for_update().filter(pk=dispatch.pk).first()
        if (
            current is None
            or current.status != DispatchStatus.CLAIMED
            or current.attempts != dispatch.attempts
        ):
            logger.warning(
                "Dispatch %s: attempt %d not recorded (%s), the claim was taken over",
                dispatch.pk,
                dispatch.attempts,
                f"failed: {one_line(error)[:200]}" if error else "sent",
            )
            return False
        _record_outcome(dispatch, by=by, error=error)
    return True


def _record_outcome(dispatch: ReminderDispatch, *, by: Any, error: str) -> None:
    if error:
        dispatch.status = DispatchStatus.FAILED
        dispatch.last_error = error[:2000]
        _save(dispatch, by=by, reason=f"Send failed: {one_line(error)[:200]}")
    else:
        dispatch.status = DispatchStatus.SENT
        dispatch.sent_at = timezone.now()
        _save(dispatch, by=by, reason="Sent")


# ---------------------------------------------------------------- sending
def digest_send(*, digest: Digest, by: Any = None, connection: Any = None) -> DeliveryResult:
    """Claim, send, record. Sends nothing when the row is already claimed or sent. A refusal
    of the mail server is recorded on the row (failed, with the error) and raised again, so
    the caller decides whether to retry."""
    subject, text, html = digest_render(digest)
    dispatch = dispatch_claim(digest=digest, subject=subject, by=by)
    if dispatch is None:
        return DeliveryResult(Outcome.ALREADY, digest.recipient_id, digest.release_id)
    return dispatch_mail(
        dispatch=dispatch,
        digest=digest,
        rendered=(subject, text, html),
        by=by,
        connection=connection,
    )


def dispatch_mail(
    *,
    dispatch: ReminderDispatch,
    digest: Digest,
    rendered: tuple[str, str, str],
    by: Any = None,
    connection: Any = None,
) -> DeliveryResult:
    """Mail a claimed dispatch (its stable Message-ID) and record the outcome. A refusal of the
    mail server is recorded on the row (failed, with the error) and raised again."""
    subject, text, html = rendered
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[digest.recipient_email],
        connection=connection,
        headers={"Message-ID": dispatch_message_id(dispatch)},
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send(fail_silently=False)
    except Exception as error:
        _record(dispatch, by=by, error=f"{type(error).__name__}: {error}")
        raise
    _record(dispatch, by=by)
    return DeliveryResult(Outcome.SENT, digest.recipient_id, digest.release_id, dispatch)


def digest_deliver(
    *, recipient_id: int, release_id: int, date: datetime.date, by: Any = None
) -> DeliveryResult:
    """Deliver one person's digest about one release for one day, as the daily run does: the
    release must still send reminders (status and cadence), the person must still have
    something to act on; a release or person that vanished is skipped."""
    release = Release.objects.filter(pk=release_id).select_related("owner").first()
    if release is None:
        return DeliveryResult(Outcome.VANISHED, recipient_id, release_id)
    if not (sends_for_status(release.status) and cadence_due(release.review_cadence, date)):
        return DeliveryResult(Outcome.NOT_DUE, recipient_id, release_id)
    digest = digest_for(recipient_id=recipient_id, release=release, date=date)
    if digest is None:
        return DeliveryResult(Outcome.NOTHING, recipient_id, release_id)
    return digest_send(digest=digest, by=by)


def release_digests_send(*, release: Release, date: datetime.date, by: Any) -> list[DeliveryResult]:
    """The PM's "send this release's digests now": every digest the release has for the day,
    sent in this process whatever its cadence; a digest already sent today is not sent again;
    a mail server refusal is recorded and reported, not raised. Refused for a release whose
    status sends no reminders, and for anyone but a manager of the release (``by`` None: the
    system)."""
    require_manage(by, release, action="Send the digests now")
    if not sends_for_status(release.status):
        allowed = ", ".join(
            str(ReleaseStatus(s).label) for s in settings.REMINDER_SEND_FOR_STATUSES
        )
        raise ValidationError(
            f"{release} is {release.get_status_display()}: reminders are sent only for "
            f"releases that are {allowed or 'nothing'}."
        )
    results = []
    for digest in release_digests(release, date):
        try:
            results.append(digest_send(digest=digest, by=by))
        except SEND_ERRORS as error:
            results.append(
                DeliveryResult(
                    Outcome.FAILED, digest.recipient_id, digest.release_id, error=str(error)
                )
            )
    return results
