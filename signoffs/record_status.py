"""A decision record that is not sealed yet: the retry policy and what the CEO and the PM read.

A record is rendered and sealed by the worker right after the decision commits. When that does
not happen — the broker refused the task, the render or the seal failed, the task was lost —
the record stays *pending* with the reason and when it happened, and beat renders it again at
``next_attempt_at``: first two minutes after the decision (a task that never ran), after a
failure with exponential backoff (``DECISION_RECORD_RETRY_SECONDS`` doubled per attempt, at most
an hour), for at most ``DECISION_RECORD_RETRY_ATTEMPTS`` attempts. After the last one, or a
failure no retry can mend (the stored snapshot no longer matches its fingerprint), it is
*failed* and waits for a product manager's retry. The same sentence says so on the decision
record list, the release page and the dashboard:

    Pending: the broker was unreachable at 2026-11-29 14:02 UTC; retrying automatically
    (attempt 2) from 14:03 UTC.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .choices import RecordState
from .models import DecisionRecord

BACKOFF_CAP = datetime.timedelta(hours=1)
STATE_COLOURS = {
    RecordState.PENDING: "#713f12",
    RecordState.READY: "#14532d",
    RecordState.FAILED: "#7f1d1d",
}


# ---------------------------------------------------------------- the policy
def retry_attempts() -> int:
    """How many attempts (renders, and queuings the broker refused) before a person must act."""
    return max(1, int(getattr(settings, "DECISION_RECORD_RETRY_ATTEMPTS", 8)))


def retry_base() -> datetime.timedelta:
    return datetime.timedelta(seconds=int(getattr(settings, "DECISION_RECORD_RETRY_SECONDS", 60)))


def first_check_delay() -> datetime.timedelta:
    """How long a new record may stay pending before beat renders it itself."""
    return 2 * retry_base()


def retry_delay(attempts: int) -> datetime.timedelta:
    """The wait after failed attempt number ``attempts``: 1, 2, 4, … minutes, at most an hour."""
    return min(retry_base() * 2 ** max(0, attempts - 1), BACKOFF_CAP)


def failure_note(
    record: DecisionRecord, *, reason: str, at: datetime.datetime, final: bool = False
) -> None:
    """Set (not save) a failed attempt on the record: its reason and time, and either the next
    automatic attempt (pending) or none (failed: no attempt left, or ``final``)."""
    record.failure_reason = reason[:2000]
    record.failed_at = at
    if final or record.attempts >= retry_attempts():
        record.state = RecordState.FAILED
        record.next_attempt_at = None
    else:
        record.state = RecordState.PENDING
        record.next_attempt_at = at + retry_delay(record.attempts)


# ---------------------------------------------------------------- what people read
def _at(moment: datetime.datetime | None) -> str:
    if moment is None:
        return "an unknown time"
    return f"{moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC"


def _next(record: DecisionRecord) -> str:
    if record.next_attempt_at is None:  # a record from before retries were scheduled
        return "at beat's next run"
    return f"from {record.next_attempt_at.astimezone(datetime.UTC):%H:%M} UTC"


def _status(record: DecisionRecord) -> tuple[str, str]:
    """(state label, what it means now)."""
    label = record.get_state_display()
    if record.state == RecordState.READY:
        return label, f"sealed at {_at(record.rendered_at)}."
    if record.state == RecordState.FAILED:
        reason = record.failure_reason or "no reason was recorded"
        plural = "s" if record.attempts != 1 else ""
        return label, (
            f"{reason} at {_at(record.failed_at)}; no automatic retry is left "
            f"({record.attempts} attempt{plural}). A product manager can retry it from the "
            "decision records list."
        )
    if not record.failure_reason:
        return label, (
            f"rendering and sealing since {_at(record.created_at)}; checked again "
            f"automatically {_next(record)}."
        )
    return label, (
        f"{record.failure_reason} at {_at(record.failed_at)}; retrying automatically "
        f"(attempt {record.attempts + 1}) {_next(record)}."
    )


def record_status_text(record: DecisionRecord) -> str:
    """One sentence: the record's state and, for one not sealed yet, why, since when, and what
    happens next ("Pending: the broker was unreachable at …; retrying automatically …")."""
    return "{}: {}".format(*_status(record))


def record_status_html(record: DecisionRecord) -> SafeString:
    """The state in its colour, then the sentence (escaped: a reason can quote anything)."""
    label, detail = _status(record)
    colour = STATE_COLOURS.get(record.state, "#374151")
    return format_html('<strong style="color:{}">{}</strong>: {}', colour, label, detail)


def latest_record(release_id: int) -> DecisionRecord | None:
    """The release's newest decision record (a reopen and a new decision add one), or None."""
    return (
        DecisionRecord.objects.filter(release_id=release_id)
        .defer("pdf", "snapshot_json")
        .order_by("-created_at", "-pk")
        .first()
    )


def release_record_html(release_id: int) -> SafeString:
    """The release's newest decision record as the release page and the dashboard show it: its
    state and sentence, and a link to the decision record list (download, retry)."""
    record = latest_record(release_id)
    if record is None:
        return format_html("{}", "No decision recorded yet.")
    url = reverse("admin:signoffs_decisionrecord_changelist")
    return format_html(
        '<span class="record-status">{}</span> <a href="{}?release__id__exact={}">Decision '
        "records</a>",
        record_status_html(record),
        url,
        release_id,
    )
