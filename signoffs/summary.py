"""The release's full status summary: the checklist categories plus the stakeholder sign-offs."""

from __future__ import annotations

from checklist.models import Release
from checklist.summary import Summary, SummaryRow, release_summary

from .models import SignoffRequirement

SIGNOFF_CATEGORY = "Stakeholder Sign-offs"


def release_full_summary(release: Release) -> Summary:
    """The checklist summary with a 'Stakeholder Sign-offs' row: one entry per requirement.

    Until signatures exist every requirement counts as not started."""
    summary = release_summary(release)
    required = SignoffRequirement.objects.filter(release=release).count()
    if required:
        row = SummaryRow(category=SIGNOFF_CATEGORY, total=required)
        row.counts["not_started"] = required
        summary.rows.append(row)
        summary.total.add(row)
    return summary
