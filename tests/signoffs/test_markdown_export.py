"""release_export_markdown: the seed's grammar with clean emoji and a computed summary, and the
round trip import(export(release)) → the same JSON snapshot."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from checklist.importers import CHECKBOX_RE
from checklist.models import Item, Release
from risks.models import ActionItem, Risk
from signoffs.documents import release_import
from signoffs.exports import release_snapshot
from signoffs.markdown_export import release_export_markdown
from signoffs.models import Criterion, SignoffRequirement
from signoffs.summary import release_full_summary
from tests.conftest import SEED_PATH
from tests.factories import (
    ActionItemFactory,
    AttestationFactory,
    CriterionFactory,
    ItemFactory,
    ReleaseFactory,
    RiskFactory,
    SectionFactory,
    SignoffRequirementFactory,
)

SECOND_PATH = Path(__file__).resolve().parent.parent / "data" / "second_checklist.md"


def _import(path: Path) -> Release:
    return release_import(text=path.read_bytes(), source_name=path.name)


def _round_trip(release: Release) -> tuple[dict, dict, str, str]:
    """Snapshot before, snapshot after re-importing the export over the same version, and the
    two exports."""
    before = release_snapshot(release)
    exported = release_export_markdown(release)
    again = release_import(text=exported, source_name="export.md", replace=True)
    return before, release_snapshot(again), exported, release_export_markdown(again)


def _json(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False)


@pytest.fixture
def seed(db) -> Release:
    return _import(SEED_PATH)


def test_release_export_markdown_writes_the_seed_grammar_when_given_the_seed(seed):
    text = release_export_markdown(seed)
    assert text.startswith("# dCMMS Production Readiness Checklist\n\n**Project:** dCMMS")
    assert "**Release:** Release 2 (v0.3.0)\n" in text
    assert "## Section 1: Sprint 18 Tasks Completion\n\n### 1.1 Production Readiness" in text
    assert (
        "- [x] **DCMMS-140: Production Readiness Checklist** (13 points) - ✅ Complete — "
        "THIS DOCUMENT\n  - [x] Checklist created\n"
    ) in text
    assert "- [ ] **DCMMS-091: Compliance Report UI** (8 points) - 🟡 In progress\n" in text
    assert "  - [ ] p95 latency: **<200 ms** (Target) | Actual: _____ ms\n" in text
    assert "  - [ ] Events per second: **≥72,000 events/sec** (Target) | Actual: _____" in text
    assert "  - [ ] Slow query count: **≤0** queries >2s | Actual: _____ queries\n" in text
    assert "  - [ ] RTO (Recovery Time Objective): **<4 hours** | Validated: _____\n" in text
    assert "  - [ ] 100 concurrent users: No degradation | Status: _____\n" in text
    assert "  - [ ] Production domain: _____\n" in text
    assert "- [ ] **CEO Approval (Final Go/No-Go)**\n  - [ ] Business readiness confirmed\n" in text
    assert text.count("  - Signature: _______________ Date: _______\n") == 8
    assert text.count("**DECISION: [ ] GO TO PRODUCTION  [ ] DEFER DEPLOYMENT**") == 1
    assert "### GO Criteria (ALL must be met)\n\n✅ **Functional Completeness**\n- [ ] All" in text
    assert "### NO-GO Criteria (ANY triggers delay)\n\n❌ **Blockers**\n" in text
    assert "| R-001 | DCMMS-091 (Compliance UI) not complete | HIGH | MEDIUM |" in text
    assert "| A-005 | Run k6 performance tests | QA / Backend | Day 3-4 | ⚪ Not started |" in text
    assert text.endswith("**Next Review:** Sprint 18 Day 2\n")
    assert sum(1 for line in text.splitlines() if CHECKBOX_RE.match(line)) == 496


def test_release_export_markdown_writes_clean_emoji_when_the_source_was_mojibake(seed):
    text = release_export_markdown(seed)
    assert not [m for m in ("‚", "üü", "Ô∏", "\uf8ff") if m in text]
    for emoji in ("✅", "🟡", "⚪", "❌", "⚠️"):
        assert emoji in text


def test_release_export_markdown_computes_the_summary_when_the_document_claimed_other_counts(
    seed,
):
    text = release_export_markdown(seed)
    summary = release_full_summary(seed)
    total = summary.total
    countable = Item.objects.filter(release=seed).countable().count()
    assert total.total == countable + 8 == 434 - 66 + 8  # groups are not counted; 8 sign-offs
    assert (
        f"| **TOTAL** |  | **{total.total}** | **2** | **1** | **{total.total - 3}** | **0** | "
        f"**0** | 🟡 **{total.percent_complete}% Complete** |"
    ) in text
    assert "| **Stakeholder Sign-offs** | 8 | 8 | 0 | 0 | 8 | 0 | 0 | ⚪ Not started |" in text
    assert "| **Sprint 18 Tasks** | 1 | 72 | 2 | 1 | 69 | 0 | 0 | 🟡 In progress |" in text
    assert "| 68 |" not in text and "**68**" not in text  # the document's own stale count


def test_release_export_markdown_round_trips_to_the_same_snapshot_when_given_the_seed(seed):
    before, after, exported, again = _round_trip(seed)
    assert _json(after) == _json(before)
    assert again == exported


def test_release_export_markdown_round_trips_to_the_same_snapshot_when_given_the_second(db):
    release = _import(SECOND_PATH)
    before, after, exported, again = _round_trip(release)
    assert _json(after) == _json(before)
    assert again == exported
    assert "- [ ] Archive growth: **<1,000 GB/month** | Actual: 0.9 TB/month\n" in exported
    assert "- [ ] Read replicas: _____ | Value: 2\n" in exported
    assert "| RISK-1 | Gateway sandbox unavailable | MEDIUM | HIGH |" in exported
    assert "| Trend: rising |" in exported


def test_release_export_markdown_round_trips_when_values_were_edited_in_the_portal(seed):
    """What the PM changes in the portal (actuals, field values, statuses, verdicts, notes)
    survives an export and re-import."""
    edits = {
        "p95 latency": {"actual_value": Decimal("180"), "actual_unit": "ms"},
        "Disk usage growth rate": {"actual_value": Decimal("0.9"), "actual_unit": "TB/month"},
        "Lighthouse Performance Score": {"actual_text": "not measured yet"},
        "Production domain": {"actual_text": "app.dcmms.io"},
        "100 concurrent users": {"actual_text": "No degradation seen"},
        "Checklist created": {"status": "at_risk"},
        "Backend API Response Times": {"status": "blocked", "checked": True},
        "Code coverage": {"actual_value": Decimal("91.5"), "actual_unit": "%"},
    }
    for text, values in edits.items():
        item = Item.objects.get(release=seed, text=text)
        for name, value in values.items():
            setattr(item, name, value)
        item.save()
    criterion = Criterion.objects.filter(release=seed).first()
    criterion.manual_verdict = True
    criterion.save()
    risk = Risk.objects.get(release=seed, key="R-002")
    risk.note = "Escalated | twice"
    risk.save()
    assert Item.objects.get(text="p95 latency").target_met is True

    before, after, exported, _ = _round_trip(seed)
    assert _json(after) == _json(before)
    assert "p95 latency: **<200 ms** (Target) | Actual: 180 ms" in exported
    assert "Production domain: _____ | Value: app.dcmms.io" in exported
    assert "  - [x] ⚠️ Checklist created\n" in exported
    assert "Escalated \\| twice" in exported


def test_release_export_markdown_keeps_every_block_when_no_section_title_fits(db):
    release = ReleaseFactory(version="v7.0.0", name="Seven")
    section = SectionFactory(release=release, number="1", title="Work")
    ItemFactory(section=section, text="Only check")
    requirement = SignoffRequirementFactory(release=release, role="QA Lead", tier="operations")
    AttestationFactory(requirement=requirement, text="Tests pass")
    SignoffRequirementFactory(release=release, role="CEO", tier="executive", final_decision=True)
    CriterionFactory(release=release, text="Everything green")
    CriterionFactory(release=release, kind="no_go", group="Blockers", text="Anything red")
    RiskFactory(release=release, key="R-9")
    ActionItemFactory(release=release, key="A-9")
    exported = release_export_markdown(release)
    assert "## Section 2: Stakeholder Sign-offs\n\n### 2.1 Operations Sign-offs" in exported

    Release.objects.all().delete()
    again = release_import(text=exported, source_name="export.md")
    requirements = list(SignoffRequirement.objects.filter(release=again))
    assert [(r.role, r.tier, r.final_decision) for r in requirements] == [
        ("QA Lead", "operations", False),
        ("CEO", "executive", True),
    ]
    assert list(requirements[0].attestations.values_list("text", flat=True)) == ["Tests pass"]
    assert list(Criterion.objects.values_list("kind", "text")) == [
        ("go", "Everything green"),
        ("no_go", "Anything red"),
    ]
    assert Risk.objects.get().key == "R-9" and ActionItem.objects.get().key == "A-9"
