from __future__ import annotations

import datetime

from django.db import models
from django.utils import timezone

from checklist.choices import ItemStatus
from checklist.querysets import visible_to


class RiskQuerySet(models.QuerySet):
    def visible_to(self, user) -> RiskQuerySet:
        return visible_to(self, user)

    def open(self) -> RiskQuerySet:
        return self.exclude(status=ItemStatus.COMPLETE)


class ActionItemQuerySet(models.QuerySet):
    def visible_to(self, user) -> ActionItemQuerySet:
        return visible_to(self, user)

    def overdue(self, today: datetime.date | None = None) -> ActionItemQuerySet:
        today = today or timezone.localdate()
        return self.filter(due_date__lt=today).exclude(status=ItemStatus.COMPLETE)
