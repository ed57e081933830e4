"""Admin for the risk register and the action items: the risk score and the overdue flag are
computed, never typed."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from checklist.admin_base import EMPTY, AuditedAdmin, owner_display, status_badge
from checklist.admin_reason import ReasonForChangeAdmin

from .models import ActionItem, Risk

# Score 1–9 (impact × probability): green up to 2, amber 3–4, red 6 and 9.
_SCORE_COLOURS = ((2, "#15803d"), (4, "#b45309"), (9, "#b91c1c"))


@admin.register(Risk)
class RiskAdmin(ReasonForChangeAdmin, AuditedAdmin):
    """The risk register: score = impact × probability (LOW 1, MEDIUM 2, HIGH 3)."""

    list_display = (
        "key",
        "title_short",
        "release__version",
        "impact",
        "probability",
        "score_column",
        "status_badge",
        "owner_column",
    )
    list_display_links = ("key", "title_short")
    list_filter = (
        "release",
        "impact",
        "probability",
        "status",
        ("owner", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("key", "title", "mitigation", "note", "owner_label", "owner__username")
    list_select_related = ("release", "owner")
    autocomplete_fields = ("release", "owner")
    readonly_fields = ("score_column",)
    fields = (
        "release",
        "key",
        "order",
        "title",
        ("impact", "probability", "score_column"),
        "mitigation",
        ("owner", "owner_label"),
        "status",
        "note",
    )

    @admin.display(description="Risk", ordering="title")
    def title_short(self, obj: Risk) -> str:
        return Truncator(obj.title).chars(90)

    @admin.display(description="Score")
    def score_column(self, obj: Risk) -> SafeString | str:
        if not obj.impact or not obj.probability:
            return EMPTY
        score = obj.score
        colour = next(colour for limit, colour in _SCORE_COLOURS if score <= limit)
        return format_html(
            '<strong class="risk-score" style="color:{}">{}</strong> / 9', colour, score
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Risk) -> SafeString:
        return status_badge(obj.status)

    @admin.display(description="Owner", ordering="owner__username")
    def owner_column(self, obj: Risk) -> str:
        return owner_display(obj)


class OverdueFilter(admin.SimpleListFilter):
    """Overdue: a known due date in the past on an action that is not complete."""

    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> tuple:
        return (("yes", "Overdue"), ("no", "Not overdue"))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        overdue = ActionItem.objects.overdue().values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=overdue)
        if self.value() == "no":
            return queryset.exclude(pk__in=overdue)
        return queryset


@admin.register(ActionItem)
class ActionItemAdmin(ReasonForChangeAdmin, AuditedAdmin):
    """Action items; an overdue one is flagged in red with how many days it is late."""

    list_display = (
        "key",
        "action_short",
        "release__version",
        "owner_column",
        "due_text",
        "due_date",
        "overdue_column",
        "status_badge",
    )
    list_display_links = ("key", "action_short")
    list_filter = ("release", OverdueFilter, "status", ("owner", admin.RelatedOnlyFieldListFilter))
    search_fields = ("key", "action", "note", "owner_label", "owner__username", "due_text")
    list_select_related = ("release", "owner")
    autocomplete_fields = ("release", "owner")
    readonly_fields = ("overdue_column",)
    fields = (
        "release",
        "key",
        "order",
        "action",
        ("owner", "owner_label"),
        ("due_text", "due_date", "overdue_column"),
        "status",
        "note",
    )

    @admin.display(description="Action", ordering="action")
    def action_short(self, obj: ActionItem) -> str:
        return Truncator(obj.action).chars(90)

    @admin.display(description="Overdue", ordering="due_date")
    def overdue_column(self, obj: ActionItem) -> SafeString | str:
        if obj.pk is None:
            return EMPTY
        days = obj.days_overdue(timezone.localdate())
        if not days:
            return EMPTY
        return format_html(
            '<strong class="overdue" style="color:#b91c1c">Overdue by {} day{}</strong>',
            days,
            "" if days == 1 else "s",
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: ActionItem) -> SafeString:
        return status_badge(obj.status)

    @admin.display(description="Owner", ordering="owner__username")
    def owner_column(self, obj: ActionItem) -> str:
        return owner_display(obj)
