"""The release's governance dashboard, an admin page: readiness per category, the go/no-go
gate, the sign-off matrix, failing and missing measurements, the risk heat map with the open
action items, the readiness trend and burndown, and the signed-in person's own work.

Access follows the rest of the admin: a release the user may not see is a 404 (never a 403
that confirms it exists). Opening the page records the visit ("what changed since your last
visit" is measured from it); nothing else is written. Every user string is escaped."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.admin.utils import unquote
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from checklist.admin_base import pass_fail, status_badge, visible_ids
from checklist.choices import ReleaseStatus
from checklist.models import Release

from . import charts
from .admin_views import criterion_verdict, signoff_matrix_html, utc_display
from .choices import CriterionKind
from .dashboard import Dashboard, release_dashboard
from .gates import CriterionResult
from .models import ReleaseVisit
from .record_status import release_record_html

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

TEMPLATE = "admin/signoffs/dashboard.html"


@transaction.atomic
def release_visit_mark(
    *, release: Release, user: Any, at: datetime.datetime
) -> datetime.datetime | None:
    """Record that ``user`` looked at ``release``'s dashboard at ``at``; return when they had
    looked before (None: never). One mark per person and release, moved forward by save()."""
    visit, created = ReleaseVisit.objects.select_for_update().get_or_create(
        release=release, user=user, defaults={"seen_at": at}
    )
    if created:
        return None
    previous = visit.seen_at
    visit.seen_at = at
    visit.save(update_fields=["seen_at"])
    return previous


def _release(request: HttpRequest, object_id: str) -> Release:
    object_id = unquote(object_id)
    if not object_id.isdigit():
        raise Http404("No release with this ID.")
    # The ids the admin already asked for this request (its menu needs them), not a new query.
    if int(object_id) not in visible_ids(request):
        raise Http404("No release with this ID.")
    release = Release.objects.filter(pk=object_id).select_related("owner").first()
    if release is None:
        raise Http404("No release with this ID.")
    return release


def _changelist(viewname: str, **query: Any) -> str:
    return f"{reverse(viewname)}?{urlencode(query)}"


def _deciders(result: CriterionResult) -> SafeString:
    """Links to what decides a criterion: its items, risks and sign-offs (prefetched by the
    gate), or the criterion itself when a manual verdict decides it."""
    criterion = result.criterion
    links = [
        (reverse("admin:checklist_item_change", args=[item.pk]), f"item {item}")
        for item in criterion.items.all()
    ]
    links += [
        (reverse("admin:risks_risk_change", args=[risk.pk]), f"risk {risk.key}")
        for risk in criterion.risks.all()
    ]
    links += [
        (
            reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk]),
            f"sign-off {requirement.role}",
        )
        for requirement in criterion.requirements.all()
    ]
    if not links:
        label = "manual verdict" if criterion.manual_verdict is not None else "set a verdict"
        links = [(reverse("admin:signoffs_criterion_change", args=[criterion.pk]), label)]
    return format_html_join(" · ", '<a href="{}">{}</a>', links)


def _criteria_rows(results: list[CriterionResult]) -> list[dict[str, Any]]:
    return [
        {
            "result": result,
            "go": result.criterion.kind == CriterionKind.GO,
            "verdict": criterion_verdict(result),
            "deciders": _deciders(result),
        }
        for result in results
    ]


def _context(dashboard: Dashboard, today: datetime.date) -> dict[str, Any]:
    release = dashboard.release
    by_release = {"release__id__exact": release.pk}
    summary_rows = [
        {
            "row": row,
            "bar": charts.progress_bar(row.percent_complete, label=f"{row.category} items"),
            "points_bar": (
                charts.progress_bar(row.points_percent_complete, label=f"{row.category} points")
                if row.points_total
                else ""
            ),
        }
        for row in dashboard.summary.rows
    ]
    gate = dashboard.gate
    measurements = dashboard.measurements
    return {
        "release": release,
        "dash": dashboard,
        "summary_rows": summary_rows,
        "total_bar": charts.progress_bar(
            dashboard.summary.total.percent_complete, label="All items"
        ),
        "checklist_bar": charts.progress_bar(
            dashboard.checklist.percent_complete, label="Checklist items"
        ),
        "tasks_bar": charts.progress_bar(
            dashboard.tasks.points_percent_complete, label="Story points"
        ),
        "go_criteria": _criteria_rows(
            [r for r in gate.results if r.criterion.kind == CriterionKind.GO]
        ),
        "no_go_criteria": _criteria_rows(
            [r for r in gate.results if r.criterion.kind != CriterionKind.GO]
        ),
        "matrix": signoff_matrix_html(release),
        "record_status": (
            release_record_html(release.pk) if release.status == ReleaseStatus.DECIDED else ""
        ),
        "metric_rows": [
            {"item": item, "pass_fail": pass_fail(item.target_met)} for item in measurements.rows
        ],
        "heat_map": charts.heat_map(
            dashboard.heat_map,
            url=lambda impact, probability: _changelist(
                "admin:risks_risk_changelist",
                **by_release,
                impact__exact=impact,
                probability__exact=probability,
            ),
        ),
        "trend_chart": charts.trend_chart(dashboard.trend),
        "burndown_chart": charts.burndown_chart(dashboard.burndown, today=today),
        "my_items": [
            {"item": item, "badge": status_badge(item.status)} for item in dashboard.my_work.items
        ],
        "my_since": utc_display(dashboard.my_work.since),
        "my_changes": [
            {"change": change, "when": utc_display(change.when)}
            for change in dashboard.my_work.changes
        ],
        "links": {
            "release": reverse("admin:checklist_release_change", args=[release.pk]),
            "items": _changelist("admin:checklist_item_changelist", **by_release),
            "failing": _changelist(
                "admin:checklist_item_changelist", **by_release, target="failing"
            ),
            "unmeasured": _changelist(
                "admin:checklist_item_changelist", **by_release, target="unmeasured"
            ),
            "risks": _changelist("admin:risks_risk_changelist", **by_release),
            "actions": _changelist("admin:risks_actionitem_changelist", **by_release),
            "overdue": _changelist(
                "admin:risks_actionitem_changelist", **by_release, overdue="yes"
            ),
            "criteria": _changelist("admin:signoffs_criterion_changelist", **by_release),
            "requirements": _changelist(
                "admin:signoffs_signoffrequirement_changelist", **by_release
            ),
            "history": reverse("admin:checklist_release_history", args=[release.pk]),
        },
    }


def dashboard_view(model_admin: ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """The dashboard of one release the user may see (404 otherwise); marks their visit."""
    release = _release(request, object_id)
    now = timezone.now()
    today = timezone.localdate(now)
    since = release_visit_mark(release=release, user=request.user, at=now)
    dashboard = release_dashboard(release, request.user, since=since, today=today)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Dashboard — {release}",
        "opts": model_admin.model._meta,
        "original": release,
        "today": today,
        **_context(dashboard, today),
    }
    return TemplateResponse(request, TEMPLATE, context)
