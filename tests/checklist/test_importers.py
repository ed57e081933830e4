"""The checklist parser on the seed (mojibake and all) and on the second checklist (CRLF, ``*``
bullets, 4-space and tab indents, reordered table columns, filled actuals)."""

from decimal import Decimal
from pathlib import Path

import pytest

from checklist.importers import CHECKBOX_RE, ParsedChecklist, ParsedItem, parse_checklist

SECOND_PATH = Path(__file__).resolve().parent.parent / "data" / "second_checklist.md"
MOJIBAKE = ("‚", "ü", "Ô", "Ä", "√", "∏")


@pytest.fixture(scope="module")
def seed() -> ParsedChecklist:
    from tests.conftest import SEED_PATH

    return parse_checklist(SEED_PATH.read_bytes(), source_name="seed_checklist.md")


@pytest.fixture(scope="module")
def second() -> ParsedChecklist:
    return parse_checklist(SECOND_PATH.read_bytes(), source_name="second_checklist.md")


def _items(parsed: ParsedChecklist) -> list[ParsedItem]:
    return [item for _, _, item, _ in parsed.iter_items()]


def _by_text(parsed: ParsedChecklist, text: str) -> ParsedItem:
    (item,) = [i for i in _items(parsed) if i.text == text]
    return item


# ---------------------------------------------------------------- the seed


def test_parse_checklist_reads_release_metadata_when_given_the_seed(seed):
    release = seed.release
    assert release.project == "dCMMS (Distributed Computerized Maintenance Management System)"
    assert (release.name, release.version) == ("Release 2", "v0.3.0")
    assert release.sprint == "Sprint 18 - Production Readiness"
    assert release.document_version == "1.0"
    assert release.go_no_go_label == "Sprint 18 Day 14 (2 weeks from sprint start)"
    assert release.go_no_go_date is None
    assert release.owner_label == "Product Manager"
    assert release.approvers_label == "Tech Lead, QA Lead, Security Officer, DevOps Lead, CTO"
    assert release.review_frequency == "Daily during Sprint 18"
    assert release.review_cadence == "daily"
    assert release.next_review == "Sprint 18 Day 2"


def test_parse_checklist_finds_13_tasks_of_81_points_when_given_the_seed(seed):
    tasks = [i for i in _items(seed) if i.kind == "task"]
    assert len(tasks) == 13
    assert sum(t.points for t in tasks) == 81
    statuses = {t.key: t.status for t in tasks}
    assert statuses.pop("DCMMS-140") == "complete"
    assert statuses.pop("DCMMS-091") == "in_progress"
    assert set(statuses.values()) == {"not_started"}
    assert "DCMMS-144A" in statuses
    assert _by_text(seed, "Production Readiness Checklist").note == "THIS DOCUMENT"


def test_parse_checklist_keeps_checkbox_state_when_items_are_ticked(seed):
    checked = [i.text for i in _items(seed) if i.checked]
    assert checked == ["Production Readiness Checklist", "Checklist created"]
    assert _by_text(seed, "Checklist created").status == "complete"


def test_parse_checklist_reads_39_actual_and_2_validated_metrics_when_given_the_seed(seed):
    metrics = [i for i in _items(seed) if i.kind == "metric"]
    assert sum(1 for m in metrics if m.actual_label == "Actual") == 39
    assert sum(1 for m in metrics if m.actual_label == "Validated") == 2
    actual_lines = sum(1 for line in SEED_LINES() if "| Actual:" in line)
    assert actual_lines == 39
    assert all(m.actual_value is None for m in metrics)


def SEED_LINES() -> list[str]:  # noqa: N802 - reads like a constant in the assertions
    from tests.conftest import SEED_PATH

    return SEED_PATH.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize(
    ("text", "op", "value", "unit", "note", "actual_unit"),
    [
        ("p95 latency", "<", "200", "ms", "(Target)", "ms"),
        ("Events per second", ">=", "72000", "events/sec", "(Target)", "events/sec"),
        ("QuestDB write throughput", ">", "50000", "rows/sec", "", "rows/sec"),
        ("Slow query count", "<=", "0", "queries", "queries >2s", "queries"),
        ("Data loss rate", "<", "0.01", "%", "(Target)", "%"),
        ("Disk usage growth rate", "<", "1", "TB/month", "", "GB/month"),
        ("Total bundle size", "<", "500", "KB", "(gzipped)", "KB"),
        ("Battery drain", "<", "5", "%/hour", "active use", "%/hour"),
        ("Medium vulnerabilities", "<", "5", "", "(with risk acceptance)", ""),
        ("Lighthouse Performance Score", ">", "90", "", "", ""),
        ("RTO (Recovery Time Objective)", "<", "4", "hours", "", ""),
    ],
)
def test_parse_checklist_reads_typed_targets_when_given_the_seed(
    seed, text, op, value, unit, note, actual_unit
):
    item = _by_text(seed, text)
    assert item.kind == "metric"
    assert (item.target_op, item.target_value, item.target_unit) == (op, Decimal(value), unit)
    assert item.note == note
    assert item.actual_unit == actual_unit


def test_parse_checklist_reads_fill_in_fields_with_empty_values_when_given_the_seed(seed):
    fields = {i.text: i for i in _items(seed) if i.kind == "field"}
    assert fields["Production domain"].actual_label == "Value"
    assert fields["Cloud Provider Selected"].note == "(AWS / Azure / GCP)"
    assert fields["AWS/Azure/GCP selected"].note == ""
    assert fields["Backend API"].note == "instances (type: _____)"
    assert fields["100 concurrent users"].actual_label == "Status"
    assert fields["100 concurrent users"].note == "No degradation"
    assert "Monthly infrastructure cost: $_____ (estimated)" in fields
    assert all(f.actual_text == "" and f.actual_value is None for f in fields.values())


def test_parse_checklist_builds_sign_off_blocks_not_items_when_given_the_seed(seed):
    roles = [(s.role, s.tier, s.final_decision, len(s.attestations)) for s in seed.signoffs]
    assert roles == [
        ("Tech Lead", "technical", False, 3),
        ("QA Lead", "technical", False, 3),
        ("Security Officer", "technical", False, 3),
        ("DevOps Lead", "operations", False, 3),
        ("Operations Manager", "operations", False, 3),
        ("Product Owner", "executive", False, 3),
        ("CTO", "executive", False, 3),
        ("CEO", "executive", True, 2),
    ]
    assert seed.signoffs[-1].decision_line is not None
    assert not [i for i in _items(seed) if "Approval" in i.text or "Signature" in i.text]


def test_parse_checklist_reads_go_and_no_go_criteria_when_given_the_seed(seed):
    go = [c for c in seed.criteria if c.kind == "go"]
    no_go = [c for c in seed.criteria if c.kind == "no_go"]
    assert len(go) == 23
    assert len({c.group for c in go}) == 7
    assert go[0].group == "Functional Completeness"
    assert len(no_go) == 7
    assert {c.group for c in no_go} == {"Blockers"}


def test_parse_checklist_reads_risks_and_action_items_when_given_the_seed(seed):
    assert [r.key for r in seed.risks] == ["R-001", "R-002", "R-003", "R-004", "R-005"]
    first = seed.risks[0]
    assert (first.impact, first.probability, first.owner_label, first.status) == (
        "HIGH",
        "MEDIUM",
        "Frontend Lead",
        "in_progress",
    )
    assert len(seed.action_items) == 5
    assert seed.action_items[3].due_text == "Day 2"
    assert seed.action_items[3].due_date is None


def test_parse_checklist_maps_summary_rows_to_sections_when_given_the_seed(seed):
    tops = {s.number: s for s in seed.sections}
    assert tops["1"].category == "Sprint 18 Tasks"
    assert tops["2"].category == "Performance"
    assert tops["7"].category == "Operations"
    assert tops["8"].category == ""  # "Stakeholder Sign-offs" is its title: blank means title
    assert tops["9"].category == ""
    assert [s.number for s in tops["1"].children] == ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6"]
    assert len(seed.sections) == 12


def test_parse_checklist_reconciles_496_checkboxes_when_given_the_seed(seed):
    source = sum(1 for line in SEED_LINES() if CHECKBOX_RE.match(line))
    assert source == seed.checkbox_count == seed.imported_checkbox_count == 496


def test_parse_checklist_leaves_no_mojibake_when_given_the_seed(seed):
    texts = [seed.release.project, seed.release.name, seed.release.go_no_go_label]
    texts += [s.title for s in seed.iter_sections()]
    texts += [t for i in _items(seed) for t in (i.text, i.note, i.actual_unit)]
    texts += [a.text for s in seed.signoffs for a in s.attestations]
    texts += [c.text + c.group for c in seed.criteria]
    texts += [r.title + r.mitigation + r.owner_label for r in seed.risks]
    assert not [t for t in texts if any(m in t for m in MOJIBAKE)]
    assert any("create → assign → complete" in t for t in texts)


# ---------------------------------------------------------------- the second checklist


def test_parse_checklist_reads_the_second_checklist_when_written_with_crlf_and_tabs(second):
    assert SECOND_PATH.read_bytes().count(b"\r\n") > 100
    assert (second.release.name, second.release.version) == ("Billing Launch", "v2.0.0-rc.1")
    assert second.release.go_no_go_date.isoformat() == "2025-12-03"
    assert second.release.review_cadence == "weekdays"
    assert second.checkbox_count == second.imported_checkbox_count
    assert [s.number for s in second.iter_sections()] == [
        "1", "1.1", "1.2", "2", "2.1", "2.1.1", "2.2", "3", "3.1", "3.2", "3.3", "4", "5", "",
    ]  # fmt: skip
    assert second.sections[-1].title == "Appendix: Smoke Checks"
    assert [s.category for s in second.sections[:3]] == [
        "", "", "Approvals",
    ]  # fmt: skip


def test_parse_checklist_reads_tasks_and_statuses_when_written_like_the_second_checklist(second):
    tasks = {i.key: i for i in _items(second) if i.kind == "task"}
    assert (tasks["BILL-7"].status, tasks["BILL-7"].checked) == ("complete", True)
    assert (tasks["BILL-9"].points, tasks["BILL-9"].status) == (1, "in_progress")
    assert (tasks["BILL-12"].status, tasks["BILL-12"].note) == (
        "blocked",
        "waiting on the gateway sandbox",
    )  # 🔴 is blocked because the document's legend says so
    assert tasks["BILL-13"].status == "blocked"
    assert (tasks["BILL-14"].points, tasks["BILL-14"].status) == (None, "at_risk")
    assert _by_text(second, "Flaky test quarantine reviewed").status == "at_risk"


def test_parse_checklist_nests_by_tabs_and_four_spaces_when_mixed(second):
    group = _by_text(second, "Dependency upgrades")
    assert group.kind == "group" and group.note == "(if time allows)"
    assert [c.text for c in group.children] == ["Django upgraded", "Celery upgraded"]
    assert [c.text for c in group.children[1].children] == ["Worker restarted on staging"]
    task = next(i for i in _items(second) if i.key == "BILL-7")
    assert [c.checked for c in task.children] == [True, True]


@pytest.mark.parametrize(
    ("text", "op", "value", "unit", "actual", "actual_unit"),
    [
        ("p95 latency", "<=", "250", "ms", "180", "ms"),
        ("p99 latency", "<", "0.5", "s", "720", "ms"),
        ("Webhook throughput", ">=", "1500", "msgs/sec", "2300", "msgs/sec"),
        ("Ledger write rate", ">", "2000000", "rows/hour", None, "rows/hour"),
        ("Error budget burn", "=", "0", "", "0", ""),
        ("Batch export", ">=", "1000", "invoices/min", None, "invoices/min"),
        ("Archive growth", "<", "1000", "GB/month", "0.9", "TB/month"),
        ("Backup size", "<=", "2", "TB", "2.5", "TB"),
        ("Availability", ">=", "99.95", "%", "99.97", "%"),
        ("Duplicate charges", "<=", "0", "charges", None, "charges"),
        ("Recovery drill", "<", "30", "min", "25", "min"),
    ],
)
def test_parse_checklist_reads_filled_actuals_when_written_like_the_second_checklist(
    second, text, op, value, unit, actual, actual_unit
):
    item = _by_text(second, text)
    assert (item.target_op, item.target_value, item.target_unit) == (op, Decimal(value), unit)
    assert item.actual_value == (None if actual is None else Decimal(actual))
    assert item.actual_unit == actual_unit


def test_parse_checklist_reads_filled_fields_when_written_like_the_second_checklist(second):
    load = _by_text(second, "Load test (500 users)")
    assert (load.kind, load.note, load.actual_label, load.actual_text) == (
        "field",
        "Sustained 10 min",
        "Status",
        "Passed",
    )
    replicas = _by_text(second, "Read replicas")
    assert (replicas.actual_label, replicas.actual_text, replicas.actual_value) == (
        "Value",
        "2",
        None,
    )
    assert _by_text(second, "Database tier").actual_text == ""
    assert _by_text(second, "Chaos test").actual_label == "Status"


def test_parse_checklist_reads_sign_offs_and_criteria_when_written_like_the_second(second):
    assert [(s.role, s.tier, s.final_decision) for s in second.signoffs] == [
        ("Staff Engineer", "technical", False),
        ("Security Reviewer", "technical", False),
        ("SRE Lead", "operations", False),
        ("COO", "executive", True),  # final because of its DECISION line alone
    ]
    assert [(c.kind, c.group, c.checked) for c in second.criteria] == [
        ("go", "Quality", True),
        ("go", "Quality", False),
        ("go", "Approvals", False),
        ("no_go", "Blockers", False),
        ("no_go", "Blockers", False),
    ]


def test_parse_checklist_reads_reordered_tables_with_extra_columns_when_given_the_second(second):
    risk = second.risks[0]
    assert (risk.key, risk.title, risk.impact, risk.probability) == (
        "RISK-1",
        "Gateway sandbox unavailable",
        "MEDIUM",
        "HIGH",
    )
    assert (risk.owner_label, risk.status, risk.note) == (
        "Payments Lead",
        "blocked",
        "Trend: rising",
    )
    assert second.risks[1].impact == "HIGH" and second.risks[1].probability == "LOW"
    actions = {a.key: a for a in second.action_items}
    assert actions["ACT-1"].due_date.isoformat() == "2025-12-01"
    assert actions["ACT-1"].note == "Ticket: OPS-991"
    assert actions["ACT-2"].due_date.isoformat() == "2025-12-05"
    assert actions["ACT-2"].note == ""
    assert (actions["ACT-3"].due_text, actions["ACT-3"].due_date) == ("Sprint 8 Day 2", None)
    assert actions["ACT-3"].status == "complete"
