"""release_import: the seed and the second checklist as rows, with history; --replace; speed."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.db import models

from checklist.models import Item, Release, Section
from risks.models import ActionItem, Risk
from signoffs.choices import MemberRole
from signoffs.documents import release_import
from signoffs.models import Attestation, Criterion, SignoffRequirement
from signoffs.services import member_set
from tests.conftest import SEED_PATH

SECOND_PATH = Path(__file__).resolve().parent.parent / "data" / "second_checklist.md"
SEED_NAME = "fixtures/seed_checklist.md"
REASON = f"Imported from {SEED_NAME}"
IMPORTED = (Release, Section, Item, Risk, ActionItem, SignoffRequirement, Attestation, Criterion)


@pytest.fixture
def pm(django_user_model):
    return django_user_model.objects.create(username="pm")


@pytest.fixture
def seed_release(db, pm) -> Release:
    return release_import(text=SEED_PATH.read_bytes(), source_name=SEED_NAME, user=pm)


@pytest.fixture
def second_release(db) -> Release:
    return release_import(text=SECOND_PATH.read_bytes(), source_name="second_checklist.md")


def test_release_import_writes_the_release_when_given_the_seed(seed_release):
    release = Release.objects.get()
    assert release.pk == seed_release.pk
    assert (release.name, release.version, release.source_name) == (
        "Release 2",
        "v0.3.0",
        SEED_NAME,
    )
    assert release.go_no_go_label == "Sprint 18 Day 14 (2 weeks from sprint start)"
    assert (release.owner_label, release.review_cadence) == ("Product Manager", "daily")
    assert release.status == "draft"


def test_release_import_writes_13_tasks_of_81_points_when_given_the_seed(seed_release):
    tasks = Item.objects.filter(release=seed_release, kind="task")
    assert tasks.count() == 13
    assert sum(t.points for t in tasks) == 81
    assert tasks.get(key="DCMMS-140").status == "complete"
    assert tasks.get(key="DCMMS-091").status == "in_progress"
    assert set(
        tasks.exclude(key__in=["DCMMS-140", "DCMMS-091"]).values_list("status", flat=True)
    ) == {"not_started"}
    assert Item.objects.filter(release=seed_release, checked=True).count() == 2
    task = tasks.get(key="DCMMS-140")
    assert task.section.number == "1.1" and task.section.parent.number == "1"
    assert task.children.count() == 4
    assert task.source_line == 47  # the line in the seed file


def test_release_import_writes_typed_metrics_when_given_the_seed(seed_release):
    metrics = Item.objects.filter(release=seed_release, kind="metric")
    assert metrics.filter(actual_label="Actual").count() == 39
    assert metrics.filter(actual_label="Validated").count() == 2
    expected = {
        "p95 latency": ("<", Decimal("200"), "ms"),
        "Events per second": (">=", Decimal("72000"), "events/sec"),
        "QuestDB write throughput": (">", Decimal("50000"), "rows/sec"),
        "Slow query count": ("<=", Decimal("0"), "queries"),
    }
    for text, target in expected.items():
        item = metrics.get(text=text)
        assert (item.target_op, item.target_value, item.target_unit) == target
        assert (item.actual_value, item.target_met) == (None, None)
    assert metrics.get(text="p95 latency").target_display == "< 200 ms"
    blank = metrics.get(text="p50 (median) latency")
    assert (blank.actual_text, blank.actual_unit) == ("", "ms")


def test_release_import_writes_risks_and_action_items_when_given_the_seed(seed_release):
    risks = Risk.objects.filter(release=seed_release)
    assert risks.count() == 5
    first = risks.get(key="R-001")
    assert (first.impact, first.probability, first.owner_label, first.status) == (
        "HIGH",
        "MEDIUM",
        "Frontend Lead",
        "in_progress",
    )
    assert list(risks.values_list("key", flat=True)) == [f"R-00{n}" for n in range(1, 6)]
    assert ActionItem.objects.filter(release=seed_release).count() == 5


def test_release_import_writes_sign_off_requirements_when_given_the_seed(seed_release):
    requirements = list(SignoffRequirement.objects.filter(release=seed_release))
    assert [r.role for r in requirements] == [
        "Tech Lead", "QA Lead", "Security Officer", "DevOps Lead", "Operations Manager",
        "Product Owner", "CTO", "CEO",
    ]  # fmt: skip
    assert [r.tier for r in requirements] == ["technical"] * 3 + ["operations"] * 2 + [
        "executive"
    ] * 3
    assert [r.final_decision for r in requirements] == [False] * 7 + [True]
    assert [r.attestations.count() for r in requirements] == [3] * 7 + [2]
    assert [r.order for r in requirements] == list(range(8))
    assert list(requirements[-1].attestations.values_list("text", flat=True)) == [
        "Business readiness confirmed",
        "All stakeholder approvals obtained",
    ]


def test_release_import_writes_go_and_no_go_criteria_when_given_the_seed(seed_release):
    criteria = Criterion.objects.filter(release=seed_release)
    go = criteria.filter(kind="go")
    assert go.count() == 23
    assert go.values("group").distinct().count() == 7
    assert criteria.filter(kind="no_go", group="Blockers").count() == 7
    assert all(c.manual_verdict is None for c in criteria)


def test_release_import_reconciles_496_checkboxes_when_given_the_seed(seed_release):
    decision_lines = SignoffRequirement.objects.filter(final_decision=True).count()
    imported = (
        Item.objects.count()
        + SignoffRequirement.objects.count()
        + Attestation.objects.count()
        + decision_lines
        + Criterion.objects.count()
    )
    assert imported == 496


def test_release_import_leaves_no_mojibake_in_any_text_when_given_the_seed(seed_release):
    found = []
    for model in IMPORTED:
        fields = [
            f.name for f in model._meta.fields if isinstance(f, models.CharField | models.TextField)
        ]
        for row in model.objects.values(*fields):
            found += [v for v in row.values() if any(m in v for m in ("‚", "ü", "Ô", "Ä", "√"))]
    assert found == []
    assert Item.objects.filter(text__contains="create → assign → complete").exists()


def test_release_import_records_history_with_reason_and_user_when_importing(seed_release, pm):
    for model in IMPORTED:
        rows = model.objects.count()
        history = model.history.all()
        assert rows and history.count() == rows, model
        assert set(history.values_list("history_change_reason", flat=True)) == {REASON}, model
        assert set(history.values_list("history_user", flat=True)) == {pm.pk}, model
        assert set(history.values_list("history_type", flat=True)) == {"+"}, model


def test_release_import_computes_pass_fail_when_actuals_are_filled(second_release):
    met = dict(Item.objects.filter(kind="metric").values_list("text", "target_met"))
    assert met == {
        "p95 latency": True,
        "p99 latency": False,  # 720 ms against < 0.5 s
        "Webhook throughput": True,  # 2,300 msgs/sec against ≥ 1.5K
        "Ledger write rate": None,
        "Error budget burn": True,
        "Batch export": None,
        "Archive growth": True,  # 0.9 TB/month against < 1,000 GB/month
        "Backup size": False,
        "Availability": True,
        "Duplicate charges": None,
        "Recovery drill": True,
    }
    assert Item.objects.failing().count() == 2


def test_release_import_writes_the_second_checklist_when_written_differently(second_release):
    release = second_release
    assert (release.version, release.go_no_go_date.isoformat()) == ("v2.0.0-rc.1", "2025-12-03")
    assert release.review_cadence == "weekdays"
    assert Section.objects.get(number="2.1.1").parent.number == "2.1"
    assert Section.objects.get(number="", title="Appendix: Smoke Checks")
    assert Section.objects.get(number="3").summary_category == "Approvals"
    tasks = dict(Item.objects.filter(kind="task").values_list("key", "points"))
    assert tasks == {"BILL-7": 8, "BILL-9": 1, "BILL-12": 5, "BILL-13": 3, "BILL-14": None}
    requirement = SignoffRequirement.objects.get(final_decision=True)
    assert (requirement.role, requirement.tier) == ("COO", "executive")
    risk = Risk.objects.get(key="RISK-1")
    assert (risk.note, risk.status, risk.score) == ("Trend: rising", "blocked", 6)
    action = ActionItem.objects.get(key="ACT-1")
    assert (action.due_text, action.due_date.isoformat(), action.note) == (
        "2025-12-01",
        "2025-12-01",
        "Ticket: OPS-991",
    )


# ---------------------------------------------------------------- --replace


def test_release_import_keeps_the_release_row_when_replacing(seed_release, pm, django_user_model):
    owner = django_user_model.objects.create(username="owner")
    seed_release.owner = owner
    seed_release.status = "in_review"
    seed_release.save()
    qa = SignoffRequirement.objects.get(role="QA Lead")
    qa.assignee = owner
    qa.save()
    member_set(release=seed_release, user=pm, role=MemberRole.PRODUCT_MANAGER, by=None)
    old_items = set(Item.objects.values_list("pk", flat=True))
    edited = SEED_PATH.read_text(encoding="utf-8").replace(
        "**Sprint:** Sprint 18", "**Sprint:** S19"
    )
    edited = edited.replace("- [ ] **QA Lead Approval**", "- [ ] **Release Manager Approval**")
    release = release_import(text=edited, source_name="v2.md", replace=True, user=pm)

    assert release.pk == seed_release.pk and Release.objects.count() == 1
    release.refresh_from_db()
    assert (release.owner, release.status, release.source_name) == (owner, "in_review", "v2.md")
    assert release.sprint.startswith("S19")
    assert release.history.first().history_change_reason == "Imported from v2.md"
    assert Item.objects.count() == 434
    assert not old_items & set(Item.objects.values_list("pk", flat=True))
    deleted = Item.history.filter(history_type="-")
    assert deleted.count() == 434
    assert set(deleted.values_list("history_change_reason", "history_user")) == {
        ("Imported from v2.md", pm.pk)
    }
    assert Section.history.filter(history_type="-").count() == Section.objects.count()
    roles = list(SignoffRequirement.objects.values_list("role", flat=True))
    assert "QA Lead" not in roles and roles[1] == "Release Manager"
    assert SignoffRequirement.history.filter(history_type="-").count() == 1


def test_release_import_keeps_a_role_and_its_assignee_when_the_role_is_still_there(
    seed_release, django_user_model
):
    signer = django_user_model.objects.create(username="cto")
    cto = SignoffRequirement.objects.get(role="CTO")
    cto.assignee = signer
    cto.save()
    release_import(text=SEED_PATH.read_bytes(), source_name=SEED_NAME, replace=True)
    kept = SignoffRequirement.objects.get(role="CTO")
    assert (kept.pk, kept.assignee) == (cto.pk, signer)
    assert kept.attestations.count() == 3
    assert SignoffRequirement.objects.count() == 8


def test_release_import_makes_signatures_stale_when_replacing_a_signed_release(seed_release, pm):
    from django.utils import timezone

    from signoffs.models import Signature

    seed_release.owner = pm
    seed_release.save()
    signature = Signature.objects.create(
        requirement=SignoffRequirement.objects.get(role="CTO"), release=seed_release, signer=pm,
        printed_name="C. T. O.", printed_role="CTO", meaning="approved",
        signed_at=timezone.now(), snapshot_sha256="0" * 64,
    )  # fmt: skip
    release_import(text=SEED_PATH.read_bytes(), source_name="again.md", replace=True, user=pm)
    signature.refresh_from_db()
    assert signature.state == "stale"
    assert signature.requirement == SignoffRequirement.objects.get(role="CTO")


def test_release_import_creates_the_release_when_replace_finds_no_version(db):
    release = release_import(text=SECOND_PATH.read_bytes(), source_name="s.md", replace=True)
    assert release.version == "v2.0.0-rc.1"


# ---------------------------------------------------------------- speed


def _big_checklist(sections: int = 50) -> str:
    lines = ["**Project:** Big", "**Release:** Big (v10.0.0)", ""]
    for s in range(1, sections + 1):
        lines += [f"## Section {s}: Part {s}", ""]
        for sub in range(1, 11):
            lines += [f"### {s}.{sub} Area {sub}", "", f"- [ ] **Group {s}.{sub}**"]
            lines += [
                f"  - [ ] p95 latency {n}: **<200ms** | Actual: {n * 100} ms" for n in range(4)
            ]
            lines += [f"  - [ ] Check {n}" for n in range(5)]
            lines += [""]
    return "\n".join(lines)


def test_release_import_writes_in_bulk_when_the_checklist_has_5000_items(db):
    """Times are measured by `make bench`; here the number of queries must not follow the number
    of items (bulk writes with history, level by level)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        release_import(text=_big_checklist(), source_name="big.md")
    assert Item.objects.count() == 5000
    assert Item.history.count() == 5000
    assert Item.objects.filter(target_met=False).count() == 1000  # 200 and 300 ms, per group
    assert len(queries.captured_queries) < 500, len(queries.captured_queries)


def test_release_import_runs_a_bounded_number_of_queries_when_given_the_seed(
    db, django_assert_max_num_queries
):
    with django_assert_max_num_queries(60):
        release_import(text=SEED_PATH.read_bytes(), source_name=SEED_NAME)
