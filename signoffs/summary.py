"""The release's full status summary: the checklist categories plus the stakeholder sign-offs."""

from __future__ import annotations

from checklist.models import Release
from checklist.summary import Summary, SummaryRow, release_summary

from .choices import SignatureMeaning, SignatureState
from .models import Signature, SignoffRequirement

SIGNOFF_CATEGORY = "Stakeholder Sign-offs"


def release_full_summary(release: Release) -> Summary:
    """The checklist summary with a 'Stakeholder Sign-offs' row, one entry per requirement:
    complete with a valid approval (or GO), blocked with a valid rejection (or DEFER), at risk
    when its last signature went stale, not started otherwise."""
    summary = release_summary(release)
    required = SignoffRequirement.objects.filter(release=release).count()
    if not required:
        return summary
    row = SummaryRow(category=SIGNOFF_CATEGORY, total=required)
    signatures = Signature.objects.filter(release=release).exclude(state=SignatureState.REVOKED)
    valid = {s.requirement_id: s.meaning for s in signatures if s.state == SignatureState.VALID}
    stale = {s.requirement_id for s in signatures if s.state == SignatureState.STALE} - set(valid)
    approving = (SignatureMeaning.APPROVED, SignatureMeaning.GO)
    row.counts["complete"] = sum(1 for m in valid.values() if m in approving)
    row.counts["blocked"] = len(valid) - row.counts["complete"]
    row.counts["at_risk"] = len(stale)
    row.counts["not_started"] = required - len(valid) - len(stale)
    summary.rows.append(row)
    summary.total.add(row)
    return summary
