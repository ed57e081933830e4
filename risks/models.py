"""The release's risk register and its action items."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from checklist.choices import ItemStatus
from checklist.models import Release
from checklist.validators import NOTE, RISK_TITLE, STATEMENT, bounded_text

from .choices import LEVEL_WEIGHT, Level
from .querysets import ActionItemQuerySet, RiskQuerySet


class Risk(models.Model):
    """One row of the risk register (R-001 …). Score and heat-map cell are computed from impact
    and probability; status follows the checklist legend."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="risks")
    key = models.CharField(max_length=30)
    title = bounded_text(RISK_TITLE)
    impact = models.CharField(max_length=6, choices=Level.choices)
    probability = models.CharField(max_length=6, choices=Level.choices)
    mitigation = bounded_text(NOTE, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_risks",
    )
    owner_label = models.CharField("owner as written", max_length=200, blank=True)
    status = models.CharField(
        max_length=12, choices=ItemStatus.choices, default=ItemStatus.NOT_STARTED
    )
    note = bounded_text(NOTE, blank=True, help_text="Extra columns of the register, kept as text.")
    order = models.PositiveIntegerField(default=0)
    history = HistoricalRecords()

    objects = RiskQuerySet.as_manager()

    class Meta:
        ordering = ["release", "order", "key"]
        constraints = [
            models.UniqueConstraint(fields=["release", "key"], name="risk_key_unique_per_release"),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.title}"

    @property
    def score(self) -> int:
        """Impact × probability, each LOW=1, MEDIUM=2, HIGH=3 (1 … 9)."""
        return LEVEL_WEIGHT[Level(self.impact)] * LEVEL_WEIGHT[Level(self.probability)]

    @property
    def heat_cell(self) -> tuple[str, str]:
        return (self.impact, self.probability)


class ActionItem(models.Model):
    """One action item (A-001 …): due as written, plus a real date when one is known.
    Overdue is computed: a known due date in the past on an item that is not complete."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="action_items")
    key = models.CharField(max_length=30)
    action = bounded_text(STATEMENT)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_action_items",
    )
    owner_label = models.CharField("owner as written", max_length=200, blank=True)
    due_text = models.CharField("due as written", max_length=200, blank=True)
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=12, choices=ItemStatus.choices, default=ItemStatus.NOT_STARTED
    )
    note = bounded_text(NOTE, blank=True, help_text="Extra columns of the table, kept as text.")
    order = models.PositiveIntegerField(default=0)
    history = HistoricalRecords()

    objects = ActionItemQuerySet.as_manager()

    class Meta:
        ordering = ["release", "order", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["release", "key"], name="action_item_key_unique_per_release"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.action}"

    def is_overdue(self, today: datetime.date | None = None) -> bool:
        today = today or timezone.localdate()
        return (
            self.due_date is not None
            and self.due_date < today
            and self.status != ItemStatus.COMPLETE
        )

    @property
    def overdue(self) -> bool:
        return self.is_overdue()

    def days_overdue(self, today: datetime.date | None = None) -> int:
        today = today or timezone.localdate()
        return (today - self.due_date).days if self.is_overdue(today) else 0


__all__ = ["Risk", "ActionItem"]
