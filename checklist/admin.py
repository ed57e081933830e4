"""Admin for the product manager: releases (with their computed status summary), sections and
checklist items. Writes that carry a rule go through a service (bulk status changes:
``checklist.services``; opening the review: ``signoffs.services``); every save, on every path,
is recorded in the history with the request's user."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from signoffs.admin_views import gate_html, signoff_matrix_html
from signoffs.dashboard_views import dashboard_view
from signoffs.freeze import decision_annotations, decision_from_row
from signoffs.models import SignoffRequirement
from signoffs.record_status import release_record_html
from signoffs.services import release_access_refresh, release_open_review
from signoffs.summary import release_full_summary

from . import admin_import, admin_views
from .admin_base import (
    EMPTY,
    AuditedAdmin,
    ReleaseScopedInline,
    forget_access,
    owner_display,
    pass_fail,
    status_badge,
)
from .admin_filters import OwnerFilter, SectionTreeFilter, TargetFilter, chosen_release
from .admin_freeze import decision_html
from .admin_reason import ReasonForChangeAdmin
from .choices import ItemKind, ItemStatus
from .models import Item, Release, Section
from .permissions import item_editable_fields
from .services import items_set_status
from .summary import SummaryRow

SUMMARY_COLUMNS = (
    "Category",
    "Total",
    "✅ Complete",
    "🟡 In progress",
    "⚪ Not started",
    "❌ Blocked",
    "⚠️ At risk",
    "% complete (items)",
    "Story points complete",
    "% complete (points)",
)


def _summary_cells(row: SummaryRow) -> SafeString:
    points = f"{row.points_complete} / {row.points_total}" if row.points_total else EMPTY
    points_percent = f"{row.points_percent_complete}%" if row.points_total else EMPTY
    category = f"{row.section} {row.category}".strip() if row.section else row.category
    values = (
        category,
        row.total,
        row.counts[ItemStatus.COMPLETE],
        row.counts[ItemStatus.IN_PROGRESS],
        row.counts[ItemStatus.NOT_STARTED],
        row.counts[ItemStatus.BLOCKED],
        row.counts[ItemStatus.AT_RISK],
        f"{row.percent_complete}%",
        points,
        points_percent,
    )
    return format_html_join("", "<td>{}</td>", ((value,) for value in values))


def _changelist_link(viewname: str, query: str, label: str) -> SafeString:
    return format_html('<a href="{}?{}">{}</a>', reverse(viewname), query, label)


# ---------------------------------------------------------------- release
class SectionInline(ReleaseScopedInline, admin.TabularInline):
    model = Section
    release_path = ""
    fields = ("number", "title", "category", "order", "parent")
    readonly_fields = ("parent",)
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("parent")


class SignoffRequirementInline(ReleaseScopedInline, admin.TabularInline):
    """The roles that sign; who holds each is set on the requirement's own page (assigning a
    signer grants access and makes a previous holder's signature stale)."""

    model = SignoffRequirement
    release_path = ""
    fields = ("role", "tier", "order", "final_decision", "assignee")
    readonly_fields = ("assignee",)
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The row's label names the release: fetch it with the rows, not once per row.
        return super().get_queryset(request).select_related("release", "assignee")


@admin.register(Release)
class ReleaseAdmin(AuditedAdmin):
    """A release's page shows its status summary computed from the items (the document's own
    table is not trusted). Its status is never typed: the review is opened by the action, and
    a release is decided only by its final sign-off."""

    release_path = ""
    list_display = (
        "version",
        "name",
        "project",
        "status",
        "decision",
        "go_no_go_date",
        "owner",
        "readiness",
        "failing_targets",
        "created_at",
    )
    list_display_links = ("version", "name")
    list_filter = ("status", "review_cadence")
    search_fields = ("version", "name", "project", "sprint", "owner_label")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    readonly_fields = (
        "status",
        "status_summary",
        "related_links",
        "gate_panel",
        "signoff_matrix",
        "decision_record",
        "source_name",
        "created_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("project", "name", "version"),
                    ("sprint", "document_version"),
                    "status",
                    ("owner", "owner_label"),
                    "approvers_label",
                )
            },
        ),
        (
            "Go/no-go",
            {
                "fields": (
                    ("go_no_go_date", "go_no_go_label"),
                    ("review_cadence", "review_frequency", "next_review"),
                )
            },
        ),
        ("Status summary", {"fields": ("status_summary", "related_links")}),
        (
            "Sign-offs and the go/no-go decision",
            {"fields": ("signoff_matrix", "gate_panel", "decision_record")},
        ),
        ("Source", {"classes": ("collapse",), "fields": ("source_name", "created_at")}),
    )
    inlines = (SectionInline, SignoffRequirementInline)
    actions = ("open_review",)
    # Opening the review refuses a decided release itself; digests write nothing of a release.
    freeze_exempt_actions = ("open_review", "send_digests_now")

    # A product manager who may create releases but has none yet still needs the release list
    # (empty) to reach "Import a checklist…" and "Add release" from the menu.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self.has_add_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None and self.has_add_permission(request):
            return True
        return super().has_view_permission(request, obj)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view

        def wrap(function):
            return view(lambda request, *args, **kwargs: function(self, request, *args, **kwargs))

        return [
            path(
                "import/",
                wrap(admin_import.import_view),
                name="checklist_release_import",
            ),
            path(
                "import/<int:job_id>/",
                wrap(admin_import.import_job_view),
                name="checklist_release_import_job",
            ),
            path(
                "import/<int:job_id>/status/",
                wrap(admin_import.import_job_status_view),
                name="checklist_release_import_job_status",
            ),
            path(
                "<path:object_id>/roles/",
                wrap(admin_views.roles_view),
                name="checklist_release_roles",
            ),
            path(
                "<path:object_id>/reopen/",
                wrap(admin_views.reopen_view),
                name="checklist_release_reopen",
            ),
            path(
                "<path:object_id>/export/<str:fmt>/",
                wrap(admin_views.export_view),
                name="checklist_release_export",
            ),
            path(
                "<path:object_id>/dashboard/",
                wrap(dashboard_view),
                name="checklist_release_dashboard",
            ),
            *super().get_urls(),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Release | None = None) -> tuple:
        # Who creates a release owns it; the owner changes on the roles page (release_set_owner:
        # it grants and removes access, checks the account and separation of duties, audits).
        return (*self.readonly_fields, "owner")

    def save_model(self, request: HttpRequest, obj: Release, form, change: bool) -> None:
        if not change:
            obj.owner = request.user
        super().save_model(request, obj, form, change)
        if not change:
            release_access_refresh(release=obj, user=obj.owner)
            forget_access(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        countable = ~Q(items__kind=ItemKind.GROUP)
        return (
            super()
            .get_queryset(request)
            .annotate(
                items_total=Count("items", filter=countable),
                items_complete=Count(
                    "items", filter=countable & Q(items__status=ItemStatus.COMPLETE)
                ),
                items_failing=Count("items", filter=Q(items__target_met=False)),
                **decision_annotations(),
            )
        )

    @admin.display(description="Decision")
    def decision(self, obj: Release) -> SafeString | str:
        """GO / DEFER, when and by whom; a warning once that signature is stale (reopened)."""
        return decision_html(decision_from_row(obj))

    @admin.display(description="Complete", ordering="items_complete")
    def readiness(self, obj: Release) -> str:
        total = getattr(obj, "items_total", 0)
        done = getattr(obj, "items_complete", 0)
        percent = round(100 * done / total) if total else 0
        return f"{done} / {total} ({percent}%)"

    @admin.display(description="Failing targets", ordering="items_failing")
    def failing_targets(self, obj: Release) -> SafeString | int:
        failing = getattr(obj, "items_failing", 0)
        if not failing:
            return 0
        return format_html(
            '<a href="{}?release__id__exact={}&amp;target=failing" style="color:#b91c1c">✘ {}</a>',
            reverse("admin:checklist_item_changelist"),
            obj.pk,
            failing,
        )

    @admin.display(description="Status summary (computed from the items)")
    def status_summary(self, obj: Release) -> SafeString | str:
        if obj.pk is None:
            return "Shown once the release is saved."
        summary = release_full_summary(obj)
        if not summary.rows:
            return "No items yet."
        header = format_html_join("", "<th>{}</th>", ((column,) for column in SUMMARY_COLUMNS))
        body = format_html_join("", "<tr>{}</tr>", ((_summary_cells(r),) for r in summary.rows))
        return format_html(
            '<table class="release-summary"><thead><tr>{}</tr></thead><tbody>{}'
            '<tr class="release-summary-total" style="font-weight:bold">{}</tr>'
            "</tbody></table>",
            header,
            body,
            _summary_cells(summary.total),
        )

    @admin.display(description="Sign-off matrix")
    def signoff_matrix(self, obj: Release) -> SafeString | str:
        return signoff_matrix_html(obj) if obj.pk else EMPTY

    @admin.display(description="Decision gate")
    def gate_panel(self, obj: Release) -> SafeString | str:
        return gate_html(obj) if obj.pk else EMPTY

    @admin.display(description="Decision record")
    def decision_record(self, obj: Release) -> SafeString | str:
        """Sealed, or pending / failed with the reason and the next automatic attempt."""
        return release_record_html(obj.pk) if obj.pk else EMPTY

    @admin.display(description="Open")
    def related_links(self, obj: Release) -> SafeString | str:
        if obj.pk is None:
            return EMPTY
        release = f"release__id__exact={obj.pk}"
        links = (
            ("admin:checklist_item_changelist", release, "Items"),
            ("admin:checklist_item_changelist", f"{release}&target=failing", "Failing targets"),
            ("admin:checklist_item_changelist", f"{release}&status__exact=blocked", "Blocked"),
            ("admin:checklist_section_changelist", release, "Sections"),
            ("admin:risks_risk_changelist", release, "Risks"),
            ("admin:risks_actionitem_changelist", release, "Action items"),
            ("admin:risks_actionitem_changelist", f"{release}&overdue=yes", "Overdue actions"),
            ("admin:signoffs_signoffrequirement_changelist", release, "Sign-off requirements"),
            ("admin:signoffs_criterion_changelist", release, "GO / NO-GO criteria"),
            ("admin:signoffs_decisionrecord_changelist", release, "Decision records"),
        )
        pages = [
            ("admin:checklist_release_dashboard", "Dashboard"),
            ("admin:checklist_release_roles", "Roles and access"),
            ("admin:checklist_release_export", "Export JSON", "json"),
            ("admin:checklist_release_export", "Export Markdown", "md"),
            ("admin:checklist_release_export", "Export CSV (items)", "csv"),
            ("admin:signoffs_decisionrecord_draft", "Draft record (PDF)"),
        ]
        # A decided release's Reopen… link is in the banner at the top (admin_freeze).
        page_links = format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            ((reverse(name, args=[obj.pk, *extra]), label) for name, label, *extra in pages),
        )
        lists = format_html_join(" · ", "{}", ((_changelist_link(*link),) for link in links))
        return format_html("{}<br>{}", lists, page_links)

    @admin.action(description="Open the review (draft → in review)", permissions=["change"])
    def open_review(self, request: HttpRequest, queryset: QuerySet) -> None:
        opened = 0
        for release in queryset:
            try:
                release_open_review(release=release, by=request.user)
            except PermissionDenied as error:
                self.report_denied(request, error, prefix=f"{release}: ", release=release)
            except ValidationError as error:
                self.report_validation_error(request, error, prefix=f"{release}: ")
            else:
                opened += 1
        if opened:
            self.message_user(request, f"Review opened for {opened} release(s).", messages.SUCCESS)


# ---------------------------------------------------------------- section
@admin.register(Section)
class SectionAdmin(AuditedAdmin):
    list_display = (
        "number",
        "title",
        "release__version",
        "parent",
        "category",
        "order",
        "item_count",
    )
    list_display_links = ("number", "title")
    list_filter = ("release",)
    search_fields = ("number", "title", "category", "release__version")
    list_select_related = ("release", "parent")
    autocomplete_fields = ("release", "parent")
    readonly_fields = ("items_link",)
    fields = ("release", "parent", "number", "title", "category", "order", "note", "items_link")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(items_count=Count("items"))

    @admin.display(description="Items", ordering="items_count")
    def item_count(self, obj: Section) -> int:
        return getattr(obj, "items_count", 0)

    @admin.display(description="Items")
    def items_link(self, obj: Section) -> SafeString | str:
        if obj.pk is None:
            return EMPTY
        return _changelist_link(
            "admin:checklist_item_changelist",
            f"release__id__exact={obj.release_id}&section_tree={obj.pk}",
            f"{getattr(obj, 'items_count', obj.items.count())} item(s) in this section",
        )


# ---------------------------------------------------------------- item
@admin.register(Item)
class ItemAdmin(ReasonForChangeAdmin, AuditedAdmin):
    """The checklist, one row per item, in the columns its readers use: the item, its section,
    status, owner, due date, target, actual and pass/fail (and the release while the list is
    not filtered to one). Statuses change in bulk through the actions (each item saved, so each
    gets its own history entry); status, actual and evidence on the item's page. Pass/fail is
    computed from target and actual, never typed."""

    list_display = (
        "item_text",
        "release__version",
        "section_column",
        "status_badge",
        "owner_column",
        "due_date",
        "target_column",
        "actual_column",
        "pass_fail_column",
    )
    list_display_links = ("item_text",)
    list_filter = (
        "release",
        SectionTreeFilter,
        "status",
        "kind",
        ("owner", OwnerFilter),
        TargetFilter,
    )
    search_fields = (
        "text",
        "key",
        "owner_label",
        "owner__username",
        "owner__first_name",
        "owner__last_name",
        "actual_text",
        "note",
        "section__title",
    )
    list_select_related = ("release", "section", "owner")
    # The unfiltered total would be a second count over every item the user may see.
    show_full_result_count = False
    autocomplete_fields = ("release", "section", "parent", "owner")
    readonly_fields = ("pass_fail_column", "source_line")
    fieldsets = (
        (None, {"fields": ("release", "section", "parent", "order", "kind", "key", "text")}),
        ("Status", {"fields": ("status", "checked", ("owner", "owner_label"), "due_date")}),
        (
            "Target and actual",
            {
                "fields": (
                    ("target_op", "target_value", "target_unit"),
                    "actual_label",
                    ("actual_value", "actual_unit"),
                    "actual_text",
                    "pass_fail_column",
                )
            },
        ),
        ("Evidence", {"fields": ("evidence_link", "evidence_note", "note")}),
        ("Task", {"fields": ("points",)}),
        ("Source", {"classes": ("collapse",), "fields": ("source_line",)}),
    )
    actions = ("mark_complete", "mark_in_progress", "mark_blocked", "mark_at_risk")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_list_display(self, request: HttpRequest) -> tuple:
        # Filtered to one release, a release column would repeat the same version on every row.
        if chosen_release(request) is not None:
            return tuple(name for name in self.list_display if name != "release__version")
        return self.list_display

    def get_list_select_related(self, request: HttpRequest) -> tuple:
        if chosen_release(request) is not None:
            return ("section", "owner")
        return self.list_select_related

    def _editable_fields(self, request: HttpRequest, obj: Item) -> tuple[str, ...] | None:
        """item_editable_fields, asked once per item and request: the admin asks the same
        permission question several times while rendering one page."""
        cache = request.__dict__.setdefault("_item_editable_fields", {})
        if obj.pk not in cache:
            cache[obj.pk] = item_editable_fields(request.user, obj)
        return cache[obj.pk]

    def has_change_permission(self, request: HttpRequest, obj: Item | None = None) -> bool:
        """Managers change any item of their releases; an item's owner changes their own
        item's status, actual and evidence (on its page)."""
        if super().has_change_permission(request, obj):
            return True
        if self.frozen(request, obj):  # the owner's fields too: a decided release is read-only
            return False
        return obj is not None and bool(self._editable_fields(request, obj))

    def get_readonly_fields(self, request: HttpRequest, obj: Item | None = None) -> tuple:
        editable = self._editable_fields(request, obj) if obj is not None else None
        if request.user.is_superuser or editable is None:
            return self.readonly_fields
        every = [f.name for f in Item._meta.fields if f.editable and f.name != "id"]
        return (*self.readonly_fields, *(name for name in every if name not in editable))

    @admin.display(description="Item", ordering="text")
    def item_text(self, obj: Item) -> str:
        label = f"{obj.key}: {obj.text}" if obj.key else obj.text
        if len(label) > 90:
            label = label[:89] + "…"
        return ("↳ " if obj.parent_id else "") + label

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Item) -> SafeString:
        return status_badge(obj.status)

    @admin.display(description="Section", ordering="section__order")
    def section_column(self, obj: Item) -> SafeString:
        """The section's number, its title on hover: the full title ("1.1 Production Readiness &
        Validation (34 points)") would take a third of the row; the section filter names it."""
        section = obj.section
        return format_html(
            '<span title="{}">{}</span>', section.title, section.number or section.title
        )

    @admin.display(description="Owner", ordering="owner__username")
    def owner_column(self, obj: Item) -> str:
        return owner_display(obj)

    @admin.display(description="Target")
    def target_column(self, obj: Item) -> str:
        return obj.target_display or EMPTY

    @admin.display(description="Actual")
    def actual_column(self, obj: Item) -> str:
        return obj.actual_display or EMPTY

    @admin.display(description="Pass/fail", ordering="target_met")
    def pass_fail_column(self, obj: Item) -> SafeString:
        return pass_fail(obj.target_met)

    def _set_status(self, request: HttpRequest, queryset: QuerySet, status: str) -> None:
        label = ItemStatus(status).label
        try:
            changed = items_set_status(items=queryset, status=status, user=request.user)
        except PermissionDenied as error:
            self.report_denied(request, error)
            return
        except ValidationError as error:
            self.report_validation_error(request, error)
            return
        self.message_user(request, f"{len(changed)} item(s) marked {label}.", messages.SUCCESS)

    @admin.action(description="Mark selected items ✅ complete", permissions=["change"])
    def mark_complete(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, ItemStatus.COMPLETE)

    @admin.action(description="Mark selected items 🟡 in progress", permissions=["change"])
    def mark_in_progress(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, ItemStatus.IN_PROGRESS)

    @admin.action(description="Mark selected items ❌ blocked", permissions=["change"])
    def mark_blocked(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, ItemStatus.BLOCKED)

    @admin.action(description="Mark selected items ⚠️ at risk", permissions=["change"])
    def mark_at_risk(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, ItemStatus.AT_RISK)


from . import admin_audit  # noqa: E402,F401
