"""The item list's filters: a section with everything under it, the owners of the chosen
release's items, and pass/fail of measured targets. Each asks only about the releases the user
may see (``visible_ids``, once per request), and about the chosen release when there is one."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from .admin_base import visible_ids
from .models import Item, Section


def chosen_release(request: HttpRequest) -> int | None:
    """The release the item list is filtered to, if one is."""
    value = request.GET.get("release__id__exact", "")
    return int(value) if value.isdigit() else None


class SectionTreeFilter(admin.SimpleListFilter):
    """A section and everything under it (choosing '2' also shows 2.1, 2.2 …). With a release
    chosen, only that release's sections are offered."""

    title = "section"
    parameter_name = "section_tree"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        sections = Section.objects.filter(release_id__in=visible_ids(request)).order_by(
            "release", "order"
        )
        release = chosen_release(request)
        if release is not None:
            rows = sections.filter(release_id=release).values_list("pk", "number", "title")
            return [(pk, f"{number} {title}".strip()) for pk, number, title in rows]
        rows = sections.values_list("pk", "number", "title", "release__version")
        return [
            (pk, f"{version} · {f'{number} {title}'.strip()}")
            for pk, number, title, version in rows
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value or not value.isdigit():
            return queryset
        return queryset.filter(Q(section_id=value) | Q(section__parent_id=value))


class OwnerFilter(admin.RelatedOnlyFieldListFilter):
    """The people who own items of the chosen release (of every release the user may see when
    none is chosen): asked of one release's items, not of every item the user may see."""

    def field_choices(self, field, request: HttpRequest, model_admin) -> list[tuple]:
        items = Item.objects.filter(release_id__in=visible_ids(request))
        release = chosen_release(request)
        if release is not None:
            items = items.filter(release_id=release)
        owners = items.filter(owner__isnull=False).values("owner_id").distinct()
        return field.get_choices(
            include_blank=False,
            limit_choices_to={"pk__in": owners},
            ordering=self.field_admin_ordering(field, request, model_admin),
        )


class TargetFilter(admin.SimpleListFilter):
    """Pass/fail of measured targets, as computed from target and actual."""

    title = "target"
    parameter_name = "target"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> tuple:
        return (
            ("failing", "✘ failing"),
            ("passing", "✔ passing"),
            ("unmeasured", "— metric not measured"),
        )

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        match self.value():
            case "failing":
                return queryset.failing()
            case "passing":
                return queryset.passing()
            case "unmeasured":
                return queryset.unmeasured()
        return queryset
