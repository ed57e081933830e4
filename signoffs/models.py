"""Sign-off requirements (who must sign the release, affirming what) and the go/no-go criteria."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from checklist.models import Item, Release
from checklist.validators import COMMENT, EVENT_REASON, STATEMENT, bounded_text
from risks.models import Risk

from .choices import CriterionKind, MemberRole, SignatureMeaning, SignatureState, Tier
from .querysets import AttestationQuerySet, ReleaseOwnedQuerySet, SignatureQuerySet


class SignoffRequirement(models.Model):
    """One role's sign-off block on a release (e.g. 'Security Officer Approval'): its tier, the
    attestation statements the signer affirms, its order, and whether it records the final
    GO/DEFER decision (at most one per release, signed last)."""

    release = models.ForeignKey(
        Release, on_delete=models.CASCADE, related_name="signoff_requirements"
    )
    role = models.CharField(max_length=100)
    tier = models.CharField(max_length=12, choices=Tier.choices)
    order = models.PositiveIntegerField(default=0)
    final_decision = models.BooleanField(
        default=False, help_text="This role records GO or DEFER, after every other sign-off."
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="signoff_requirements",
        help_text="The one person who signs this role's block on this release.",
    )
    history = HistoricalRecords()

    objects = ReleaseOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["release", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["release", "role"], name="signoff_role_unique_per_release"
            ),
            models.UniqueConstraint(
                fields=["release"],
                condition=Q(final_decision=True),
                name="one_final_decision_per_release",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} ({self.release.version})"


class Attestation(models.Model):
    """One statement the signer of a requirement affirms, e.g. 'All tests passing'."""

    requirement = models.ForeignKey(
        SignoffRequirement, on_delete=models.CASCADE, related_name="attestations"
    )
    text = bounded_text(STATEMENT)
    order = models.PositiveIntegerField(default=0)
    history = HistoricalRecords()

    objects = AttestationQuerySet.as_manager()

    class Meta:
        ordering = ["requirement", "order"]

    def __str__(self) -> str:
        return self.text


class Criterion(models.Model):
    """A GO criterion (all must be met) or a NO-GO blocker (any one delays the release), as
    grouped in the document. Linked items, risks or sign-offs decide it; an unlinked one carries
    the PM's manual verdict (met, for a GO criterion; firing, for a blocker)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="criteria")
    kind = models.CharField(max_length=6, choices=CriterionKind.choices)
    group = models.CharField(max_length=200, blank=True)
    text = bounded_text(STATEMENT)
    order = models.PositiveIntegerField(default=0)
    items = models.ManyToManyField(Item, blank=True, related_name="criteria")
    risks = models.ManyToManyField(Risk, blank=True, related_name="criteria")
    requirements = models.ManyToManyField(SignoffRequirement, blank=True, related_name="criteria")
    manual_verdict = models.BooleanField(
        null=True,
        blank=True,
        help_text="Only for a criterion with nothing linked: met (GO) or firing (NO-GO).",
    )
    history = HistoricalRecords(m2m_fields=[items, risks, requirements])

    objects = ReleaseOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["release", "kind", "order"]
        verbose_name_plural = "criteria"

    def __str__(self) -> str:
        return self.text


class ReleaseMember(models.Model):
    """A person's access to a release beyond a signing role: the product managers who curate it,
    stakeholders who follow it, auditors who read it. Signers are members through their
    requirement's assignee; access is granted and removed through checklist.permissions."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="release_memberships"
    )
    role = models.CharField(max_length=12, choices=MemberRole.choices)
    history = HistoricalRecords()

    objects = ReleaseOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["release", "role", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["release", "user"], name="one_membership_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} on {self.release.version}"


class Signature(models.Model):
    """One electronic signature of a requirement's block (21 CFR Part 11 §11.50): who signed,
    their printed name and role at that moment, what it means, when (server UTC), and the
    SHA-256 of the canonical release snapshot they signed. Never edited or deleted: only its
    state moves, valid → stale (the release changed) or valid/stale → revoked (by the signer),
    each move appended as a SignatureEvent with who, when and why."""

    requirement = models.ForeignKey(
        SignoffRequirement, on_delete=models.PROTECT, related_name="signatures"
    )
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="signatures")
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures"
    )
    printed_name = models.CharField(max_length=300)
    printed_role = models.CharField(max_length=100)
    meaning = models.CharField(max_length=10, choices=SignatureMeaning.choices)
    comment = bounded_text(COMMENT, blank=True)
    signed_at = models.DateTimeField(help_text="Server time, UTC.")
    snapshot_sha256 = models.CharField("SHA-256 of the signed snapshot", max_length=64)
    state = models.CharField(
        max_length=10, choices=SignatureState.choices, default=SignatureState.VALID
    )
    history = HistoricalRecords()

    objects = SignatureQuerySet.as_manager()

    class Meta:
        ordering = ["release", "requirement__order", "-signed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["requirement"],
                condition=Q(state="valid"),
                name="one_valid_signature_per_requirement",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.printed_role}: {self.get_meaning_display()} by {self.printed_name} "
            f"({self.get_state_display()})"
        )

    @property
    def is_valid(self) -> bool:
        return self.state == SignatureState.VALID


class SignatureEvent(models.Model):
    """One change of a signature's state, appended, never edited: from → to, who (empty for the
    system, e.g. a change to the release), when and why."""

    signature = models.ForeignKey(Signature, on_delete=models.PROTECT, related_name="events")
    from_state = models.CharField(max_length=10, choices=SignatureState.choices, blank=True)
    to_state = models.CharField(max_length=10, choices=SignatureState.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField()
    reason = bounded_text(EVENT_REASON)

    class Meta:
        ordering = ["signature", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_state or '—'} → {self.to_state}: {self.reason}"


from .models_records import DecisionRecord, ReleaseVisit, ReminderDispatch  # noqa: E402

__all__ = [
    "Attestation",
    "Criterion",
    "DecisionRecord",
    "ReleaseMember",
    "ReleaseVisit",
    "ReminderDispatch",
    "Signature",
    "SignatureEvent",
    "SignoffRequirement",
]
