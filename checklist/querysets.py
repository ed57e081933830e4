from __future__ import annotations

from django.db import models

from .choices import ItemKind, ItemStatus


class ReleaseQuerySet(models.QuerySet):
    def visible_to(self, user) -> ReleaseQuerySet:
        """Only the releases granted to the user (404 for the rest); see checklist.permissions."""
        from .permissions import visible_releases

        return self.filter(pk__in=visible_releases(user).values("pk"))


class ItemQuerySet(models.QuerySet):
    def visible_to(self, user) -> ItemQuerySet:
        return visible_to(self, user)

    def countable(self) -> ItemQuerySet:
        """Items the status summary counts: everything but group headings."""
        return self.exclude(kind=ItemKind.GROUP)

    def failing(self) -> ItemQuerySet:
        """Metrics whose measured actual misses its target."""
        return self.filter(target_met=False)

    def passing(self) -> ItemQuerySet:
        """Metrics whose measured actual meets its target."""
        return self.filter(target_met=True)

    def unmeasured(self) -> ItemQuerySet:
        return self.filter(kind=ItemKind.METRIC, target_met__isnull=True)

    def open(self) -> ItemQuerySet:
        return self.exclude(status=ItemStatus.COMPLETE)


def visible_to(queryset: models.QuerySet, user, field: str = "release") -> models.QuerySet:
    """Rows of the releases the user may see: the one filter every release-owned model uses."""
    from .permissions import visible_releases

    return queryset.filter(**{f"{field}__in": visible_releases(user)})
