from __future__ import annotations

from django.db import models

from .choices import ItemKind, ItemStatus


class ReleaseQuerySet(models.QuerySet):
    pass


class ItemQuerySet(models.QuerySet):
    def countable(self) -> ItemQuerySet:
        """Items the status summary counts: everything but group headings."""
        return self.exclude(kind=ItemKind.GROUP)

    def failing(self) -> ItemQuerySet:
        """Metrics whose measured actual misses its target."""
        return self.filter(target_met=False)

    def unmeasured(self) -> ItemQuerySet:
        return self.filter(kind=ItemKind.METRIC, target_met__isnull=True)

    def open(self) -> ItemQuerySet:
        return self.exclude(status=ItemStatus.COMPLETE)
