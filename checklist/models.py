"""Releases and their checklist: sections (a numbered tree) and items (a tree under a section)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from . import targets
from .choices import ItemKind, ItemStatus, ReleaseStatus, ReviewCadence, TargetOperator
from .querysets import ItemQuerySet, ReleaseQuerySet
from .validators import ITEM_TEXT, NOTE, bounded_text, validate_version


class Release(models.Model):
    """One release under go/no-go review, e.g. dCMMS Release 2 (v0.3.0).

    Status flow: draft → in review → decided. A decided release is frozen (signoffs.freeze);
    reopening it, with a reason, brings it back to in review.
    """

    ALLOWED_TRANSITIONS = {
        ReleaseStatus.DRAFT: {ReleaseStatus.IN_REVIEW},
        ReleaseStatus.IN_REVIEW: {ReleaseStatus.DRAFT, ReleaseStatus.DECIDED},
        ReleaseStatus.DECIDED: {ReleaseStatus.IN_REVIEW},
    }

    project = models.CharField(max_length=300)
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=50, unique=True, validators=[validate_version])
    sprint = models.CharField(max_length=200, blank=True)
    document_version = models.CharField(max_length=50, blank=True)
    go_no_go_date = models.DateField(null=True, blank=True)
    go_no_go_label = models.CharField(
        "go/no-go date as written",
        max_length=200,
        blank=True,
        help_text="The decision date as the document words it, e.g. 'Sprint 18 Day 14'.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_releases",
        help_text="The product manager who owns the release.",
    )
    owner_label = models.CharField("owner as written", max_length=200, blank=True)
    approvers_label = models.CharField("approvers as written", max_length=500, blank=True)
    review_frequency = models.CharField("review frequency as written", max_length=200, blank=True)
    review_cadence = models.CharField(
        max_length=10, choices=ReviewCadence.choices, default=ReviewCadence.DAILY
    )
    next_review = models.CharField("next review as written", max_length=200, blank=True)
    status = models.CharField(
        max_length=10, choices=ReleaseStatus.choices, default=ReleaseStatus.DRAFT
    )
    source_name = models.CharField("imported from", max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    objects = ReleaseQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "version"]

    def __str__(self) -> str:
        return f"{self.name} ({self.version})" if self.name else self.version

    def can_transition_to(self, status: str) -> bool:
        return status in self.ALLOWED_TRANSITIONS.get(ReleaseStatus(self.status), set())


class Section(models.Model):
    """A numbered part of the checklist: ``2`` (top level) or ``2.1`` (under its parent).

    ``category`` is the status-summary category the section counts under (the seed's summary
    table names section 2 'Performance'); blank means the section's title.
    """

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="sections")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    number = models.CharField(max_length=20, blank=True)
    title = models.CharField(max_length=300)
    category = models.CharField(max_length=200, blank=True)
    order = models.PositiveIntegerField(default=0)
    note = bounded_text(NOTE, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["release", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["release", "number"],
                condition=~Q(number=""),
                name="section_number_unique_per_release",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}".strip()

    @property
    def summary_category(self) -> str:
        return self.category or self.title


class Item(models.Model):
    """One line of the checklist: a task, a group heading, a check, a metric or a fill-in field.

    Status flow is free among the legend's five states (⚪ 🟡 ✅ ❌ ⚠️); a metric's pass/fail is
    computed from its target and actual, never typed.
    """

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="items")
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="items")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    order = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=ItemKind.choices, default=ItemKind.CHECK)
    text = bounded_text(ITEM_TEXT)
    key = models.CharField(max_length=50, blank=True, help_text="Task key, e.g. DCMMS-141.")
    points = models.PositiveSmallIntegerField("story points", null=True, blank=True)
    status = models.CharField(
        max_length=12, choices=ItemStatus.choices, default=ItemStatus.NOT_STARTED
    )
    checked = models.BooleanField(default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_items",
    )
    owner_label = models.CharField("owner as written", max_length=200, blank=True)
    due_date = models.DateField(null=True, blank=True)
    target_op = models.CharField(
        "target operator", max_length=2, choices=TargetOperator.choices, blank=True
    )
    target_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    target_unit = models.CharField(max_length=50, blank=True)
    actual_label = models.CharField(
        max_length=50,
        blank=True,
        help_text="How the document names the measured value: Actual, Validated, Status.",
    )
    actual_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    actual_text = models.CharField(max_length=500, blank=True)
    actual_unit = models.CharField(max_length=50, blank=True)
    target_met = models.BooleanField(
        null=True,
        editable=False,
        help_text="Computed from target and actual on every save; empty when not measured.",
    )
    evidence_link = models.URLField(max_length=500, blank=True)
    evidence_note = bounded_text(NOTE, blank=True)
    note = bounded_text(NOTE, blank=True)
    source_line = models.PositiveIntegerField(null=True, blank=True, editable=False)
    history = HistoricalRecords()

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["release", "section__order", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["release", "key"], condition=~Q(key=""), name="item_key_unique_per_release"
            ),
            models.CheckConstraint(
                condition=Q(target_op="") | Q(target_value__isnull=False),
                name="item_target_has_value",
            ),
        ]
        indexes = [models.Index(fields=["release", "status"]), models.Index(fields=["target_met"])]

    def __str__(self) -> str:
        label = f"{self.key}: {self.text}" if self.key else self.text
        return label if len(label) <= 80 else label[:79] + "…"

    def save(self, *args, **kwargs):
        # Derived, not a side effect: pass/fail always follows the row's own target and actual.
        self.target_met = self.compute_target_met()
        super().save(*args, **kwargs)

    def compute_target_met(self) -> bool | None:
        return targets.meets_target(
            op=self.target_op,
            target_value=self.target_value,
            target_unit=self.target_unit,
            actual_value=self.actual_value,
            actual_unit=self.actual_unit,
        )

    @property
    def target_display(self) -> str:
        if not self.target_op:
            return ""
        op = TargetOperator(self.target_op).label
        return f"{op} {targets.format_number(self.target_value)} {self.target_unit}".strip()

    @property
    def actual_display(self) -> str:
        if self.actual_value is None:
            return self.actual_text
        return f"{targets.format_number(self.actual_value)} {self.actual_unit}".strip()

    @property
    def target_value_decimal(self) -> Decimal | None:
        return None if self.target_value is None else Decimal(self.target_value)


from .models_audit import AuditChainEntry, AuditEvent, AuditKind  # noqa: E402,F401
from .models_import import ImportJob  # noqa: E402,F401
