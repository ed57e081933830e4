"""The decision record, the reminder dispatches and the per-person "last seen" marks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from checklist.models import Release

from .choices import DispatchStatus, RecordState
from .querysets import ReleaseOwnedQuerySet


class DecisionRecord(models.Model):
    """The release's final decision as a document an auditor can verify: the canonical snapshot
    (JSON) and its SHA-256 (the fingerprint) are written with the decision and never change; the
    sealed PDF and its SHA-256 are added once when rendered (pending → ready). A render or a
    queuing that fails keeps the record pending with its reason and the time of the next
    automatic attempt (beat retries it, with backoff); after the last attempt, or a failure no
    retry can mend, it is failed until a product manager retries it. A reopen and a new
    decision make a new record; both stay."""

    # The only columns written after the row is created (signoffs.records saves exactly these;
    # the append-only triggers refuse a change to any other, and the runtime role may UPDATE
    # only these): every other column, including any added later, is frozen.
    LATER_FILLED = (
        "state",
        "failure_reason",
        "failed_at",
        "attempts",
        "next_attempt_at",
        "pdf",
        "pdf_sha256",
        "rendered_at",
    )

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="records")
    signature = models.OneToOneField(
        "signoffs.Signature",
        on_delete=models.PROTECT,
        related_name="record",
        help_text="The final decision (GO or DEFER) this record documents.",
    )
    snapshot_json = models.TextField(help_text="Canonical JSON of the release as decided.")
    snapshot_sha256 = models.CharField("fingerprint (SHA-256 of the snapshot)", max_length=64)
    state = models.CharField(
        max_length=10, choices=RecordState.choices, default=RecordState.PENDING
    )
    failure_reason = models.TextField(blank=True, help_text="Why the last attempt failed.")
    failed_at = models.DateTimeField(null=True, blank=True, help_text="When it failed.")
    attempts = models.PositiveIntegerField(
        default=0, help_text="Renders tried, and queuings the broker refused."
    )
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="When beat renders it if it is still pending; empty: no automatic attempt.",
    )
    pdf = models.BinaryField(null=True, blank=True, editable=False)
    pdf_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rendered_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["pdf"])

    objects = ReleaseOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["release", "-created_at"]

    def __str__(self) -> str:
        return f"Decision record {self.release.version} ({self.get_state_display()})"


class ReminderDispatch(models.Model):
    """One review digest for one person about one release on one day. The row is claimed
    (created under its unique constraint) before the mail is sent, so a second beat, a
    redelivered message or a re-run sends nothing new; it then records the outcome. Status:
    claimed → sent | failed | empty; failed → claimed again; a claim left open past
    ``REMINDER_CLAIM_STALE_MINUTES`` → claimed again by beat. ``claimed_at`` is the latest
    claim, ``attempts`` counts claims."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reminder_dispatches"
    )
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="dispatches")
    date = models.DateField()
    status = models.CharField(
        max_length=10, choices=DispatchStatus.choices, default=DispatchStatus.CLAIMED
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    subject = models.CharField(max_length=300, blank=True)
    summary = models.TextField(blank=True, help_text="What the digest said, in short.")
    claimed_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    objects = ReleaseOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "release", "recipient"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "release", "date"], name="one_digest_per_person_release_day"
            ),
        ]

    def __str__(self) -> str:
        return f"Digest {self.date} to {self.recipient} ({self.release.version})"


class ReleaseVisit(models.Model):
    """When a person last looked at a release's dashboard: "what changed since your last visit"
    is measured from here."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="release_visits"
    )
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="visits")
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "release"], name="one_visit_mark_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} saw {self.release.version} at {self.seen_at:%Y-%m-%d %H:%M}"
