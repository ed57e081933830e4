"""Sign-off requirements (who must sign the release, affirming what) and the go/no-go criteria."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from checklist.models import Item, Release
from risks.models import Risk

from .choices import CriterionKind, Tier


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
    history = HistoricalRecords()

    class Meta:
        ordering = ["release", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["release", "role"], name="signoff_role_unique_per_release"
            ),
            models.UniqueConstraint(
                fields=["release"], condition=Q(final_decision=True),
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
    text = models.TextField()
    order = models.PositiveIntegerField(default=0)
    history = HistoricalRecords()

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
    text = models.TextField()
    order = models.PositiveIntegerField(default=0)
    items = models.ManyToManyField(Item, blank=True, related_name="criteria")
    risks = models.ManyToManyField(Risk, blank=True, related_name="criteria")
    requirements = models.ManyToManyField(
        SignoffRequirement, blank=True, related_name="criteria"
    )
    manual_verdict = models.BooleanField(
        null=True, blank=True,
        help_text="Only for a criterion with nothing linked: met (GO) or firing (NO-GO).",
    )
    history = HistoricalRecords(m2m_fields=[items, risks, requirements])

    class Meta:
        ordering = ["release", "kind", "order"]
        verbose_name_plural = "criteria"

    def __str__(self) -> str:
        return self.text
