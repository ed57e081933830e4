"""The item list's filters: a section with everything under it, the owners of the chosen
release's items, and pass/fail of measured targets. Each asks only about the releases the user
may see (``visible_ids``, once per request), and about the chosen release when there is one."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from .admin_base import visible_ids
from .models import Item, Section


def id_param(value: str | None) -> int | None:
    """An id from the query string: ASCII digits within a 64-bit integer, else None (``²`` is
    a digit to ``str.isdigit`` and not to ``int``; twenty digits overflow SQLite)."""
    if value and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def chosen_release(request: HttpRequest) -> int | None:
    """The release the item list is filtered to, if one is (a bad value is the release
    filter's to refuse: 400, see AuditedAdmin.get_changelist_instance)."""
    return id_param(request.GET.get("release__id__exact"))


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
        if not self.value():
            return queryset
        section = id_param(self.value())
        if section is None:  # answered 400 (AuditedAdmin.get_changelist_instance)
            raise IncorrectLookupParameters("section_tree is not a section id")
        return queryset.filter(Q(section_id=section) | Q(section__parent_id=section))


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
