"""The line grammar: targets, actuals, statuses, fields, dates, mojibake, and the variants of
the list syntax (bullets, indents, line endings) a checklist may be written in."""

import datetime
from decimal import Decimal

import pytest

from checklist import markdown_grammar as g
from checklist.importers import parse_checklist

HEADER = "**Project:** Demo\n**Release:** Demo (v9.9.9)\n\n## Section 1: Work\n\n### 1.1 Tasks\n\n"


def _parse(body: str, header: str = HEADER):
    return parse_checklist(header + body, source_name="demo.md")


def _tree(parsed) -> list:
    def node(item):
        return (item.text, item.checked, [node(c) for c in item.children])

    return [node(i) for s in parsed.iter_sections() for i in s.items]


@pytest.mark.parametrize(
    ("written", "op", "value", "unit"),
    [
        ("<200ms", "<", "200", "ms"),
        ("<= 5 min", "<=", "5", "min"),
        ("≤250 ms", "<=", "250", "ms"),
        (">90", ">", "90", ""),
        (">=1,000 invoices/min", ">=", "1000", "invoices/min"),
        ("≥99.9%", ">=", "99.9", "%"),
        ("=0", "=", "0", ""),
        (">50K rows/sec", ">", "50000", "rows/sec"),
        (">2M rows/hour", ">", "2000000", "rows/hour"),
        ("≥1.5K msgs/sec", ">=", "1500", "msgs/sec"),
        ("<500KB", "<", "500", "KB"),
        ("<150MB", "<", "150", "MB"),
        ("<1000 messages", "<", "1000", "messages"),
        ("<0.01%", "<", "0.01", "%"),
        ("72,000 events/sec", ">=", "72000", "events/sec"),
        ("0", "<=", "0", ""),
        ("99.95%", ">=", "99.95", "%"),
    ],
)
def test_parse_target_reads_operator_value_and_unit_when_written_as_in_checklists(
    written, op, value, unit
):
    assert g.parse_target(written) == g.Target(op=op, value=Decimal(value), unit=unit)


@pytest.mark.parametrize("written", ["p95 <200ms", "___", "TBD", "2025-12-03", "<", ""])
def test_parse_target_returns_none_when_the_bold_text_is_not_a_target(written):
    assert g.parse_target(written) is None


@pytest.mark.parametrize(
    ("written", "value", "text", "unit"),
    [
        ("_____ ms", None, "", "ms"),
        ("_____", None, "", ""),
        (" _____ events/sec", None, "", "events/sec"),
        ("23,400 msgs/sec", "23400", "", "msgs/sec"),
        ("0.9 TB/month", "0.9", "", "TB/month"),
        ("1.2K rows/sec", "1200", "", "rows/sec"),
        ("180ms", "180", "", "ms"),
        ("N/A (not measured)", None, "N/A (not measured)", ""),
        ("", None, "", ""),
    ],
)
def test_parse_actual_reads_blanks_values_and_text_when_written_after_actual(
    written, value, text, unit
):
    expected = g.Actual(value=None if value is None else Decimal(value), text=text, unit=unit)
    assert g.parse_actual(written) == expected


@pytest.mark.parametrize(
    ("written", "status", "rest"),
    [
        ("✅ THIS DOCUMENT", "complete", "THIS DOCUMENT"),
        ("⚪ Not Started", "not_started", ""),
        ("🟡 In Progress", "in_progress", ""),
        ("❌ Blocked", "blocked", ""),
        ("⚠️ At risk", "at_risk", ""),
        ("⚠ vendor late", "at_risk", "vendor late"),
        ("⚠ needs attention", "at_risk", ""),
        ("Complete", "complete", ""),
        ("in progress", "in_progress", ""),
        ("Not started", "not_started", ""),
        ("At Risk", "at_risk", ""),
        ("✅ Complete — THIS DOCUMENT", "complete", "THIS DOCUMENT"),
        ("🟡 Blocked by the vendor", "in_progress", "Blocked by the vendor"),
        ("whenever", None, "whenever"),
    ],
)
def test_status_vocabulary_splits_symbol_words_and_note_when_a_status_is_written(
    written, status, rest
):
    assert g.StatusVocabulary().split(written) == (status, rest)


def test_status_vocabulary_learns_a_symbol_when_the_legend_names_it():
    vocabulary = g.StatusVocabulary()
    assert vocabulary.split("🔴 late") == (None, "🔴 late")
    assert vocabulary.learn("🔴 Blocked or failed")
    assert vocabulary.split("🔴 late") == ("blocked", "late")
    assert not vocabulary.learn("Complete and verified")  # no symbol


@pytest.mark.parametrize("clean", ["✅", "🟡", "⚪", "❌", "⚠️", "create → assign", "≤ 5 µs"])
def test_repair_mojibake_restores_text_when_utf8_was_read_as_mac_roman(clean):
    mojibake = clean.encode("utf-8").decode("mac_roman")
    assert mojibake != clean
    assert g.repair_mojibake(f"- {mojibake} Complete\n") == f"- {clean} Complete\n"


def test_repair_mojibake_restores_the_seed_symbols_when_written_as_in_the_seed():
    assert g.repair_mojibake("‚úÖ ‚ö™ ‚ùå ‚ö†Ô∏è \uf8ffüü°") == "✅ ⚪ ❌ ⚠️ 🟡"


def test_repair_mojibake_repairs_runs_when_clean_emoji_and_mojibake_are_mixed():
    assert g.repair_mojibake("✅ done, ‚ö™ open") == "✅ done, ⚪ open"


def test_repair_mojibake_leaves_text_alone_when_it_is_clean():
    text = "café ≤ 5 ms, “École” — naïve → ✅ 🟡 ⚪ ❌ ⚠️ Ω"
    assert g.repair_mojibake(text) == text


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2025-12-03", datetime.date(2025, 12, 3)),
        ("December 3, 2025", datetime.date(2025, 12, 3)),
        ("Dec 5, 2025", datetime.date(2025, 12, 5)),
        ("3 December 2025", datetime.date(2025, 12, 3)),
        ("Sprint 18 Day 14 (2025-12-03)", datetime.date(2025, 12, 3)),
        ("Sprint 18 Day 14", None),
        ("2025-02-30", None),
    ],
)
def test_find_date_reads_real_dates_when_written_in_text(written, expected):
    assert g.find_date(written) == expected


@pytest.mark.parametrize(
    ("line", "kind", "text", "note"),
    [
        ("**KEY-1: Title** (1 point) - Complete", "task", "Title", ""),
        ("**Group heading**", "group", "Group heading", ""),
        ("**Regulatory Compliance** (if applicable)", "group", "Regulatory Compliance",
         "(if applicable)"),
        ("Latency: **<5s** (Target) | Actual: _____ s", "metric", "Latency", "(Target)"),
        ("SLO: **99.9%** (43.2 min/month)", "metric", "SLO", "(43.2 min/month)"),
        ("Production domain: _______________", "field", "Production domain", ""),
        ("**Cloud Provider Selected:** ____ (AWS / GCP)", "field", "Cloud Provider Selected",
         "(AWS / GCP)"),
        ("Auto-scaling (min: ___, max: ___)", "field", "Auto-scaling (min: ___, max: ___)", ""),
        ("Smoke test | Status: _____", "field", "Smoke test", ""),
        ("API latency SLO: **p95 <200ms**", "check", "API latency SLO: **p95 <200ms**", ""),
        ("Scan report: `docs/report.html`", "check", "Scan report: `docs/report.html`", ""),
    ],
)  # fmt: skip
def test_classify_item_names_the_kind_when_given_each_line_form(line, kind, text, note):
    facts = g.classify_item(line, g.StatusVocabulary())
    assert (facts.kind, facts.text, facts.note) == (kind, text, note)


def test_classify_item_takes_the_actual_unit_when_the_note_starts_with_it():
    facts = g.classify_item("Slow: **0** queries >2s | Actual: _____ queries", g.StatusVocabulary())
    assert (facts.target.unit, facts.note) == ("queries", "queries >2s")
    facts = g.classify_item("Count: **0** per day | Actual: _____ queries", g.StatusVocabulary())
    assert facts.target.unit == ""  # the note does not say what is counted


# ---------------------------------------------------------------- list syntax variants


def test_parse_checklist_builds_the_same_tree_when_nested_by_2_or_4_spaces_or_tabs():
    two = "- [ ] **A**\n  - [ ] b\n    - [x] c\n  - [ ] d\n- [ ] e\n"
    four = "* [ ] **A**\n    * [ ] b\n        * [X] c\n    * [ ] d\n* [ ] e\n"
    tabs = "- [ ] **A**\n\t- [ ] b\n\t\t- [x] c\n\t- [ ] d\n- [ ] e\n"
    trees = [_tree(_parse(body)) for body in (two, four, tabs)]
    assert trees[0] == trees[1] == trees[2]
    assert trees[0] == [("A", False, [("b", False, [("c", True, [])]), ("d", False, [])]),
                        ("e", False, [])]  # fmt: skip


def test_parse_checklist_gives_the_same_result_when_line_endings_are_crlf():
    body = "- [ ] **A**\n  - [x] b | Status: done\n"
    lf = _parse(body)
    crlf = parse_checklist((HEADER + body).replace("\n", "\r\n").encode(), source_name="demo.md")
    assert _tree(lf) == _tree(crlf)
    assert lf.release == crlf.release


def test_parse_checklist_keeps_text_after_status_as_note_when_a_task_has_one():
    parsed = _parse("- [ ] **OPS-9: Rotate keys** (2 points) - ⚠️ At risk, vendor late\n")
    (task,) = parsed.sections[0].children[0].items
    assert (task.key, task.points, task.status, task.note) == (
        "OPS-9",
        2,
        "at_risk",
        "vendor late",
    )


def test_parse_checklist_uses_the_checkbox_when_a_task_has_no_status():
    parsed = _parse("- [x] **OPS-1: Done thing** (3 points)\n- [ ] **OPS-2: Open thing**\n")
    done, open_ = parsed.sections[0].children[0].items
    assert (done.status, done.checked, done.points) == ("complete", True, 3)
    assert (open_.status, open_.checked, open_.points) == ("not_started", False, None)


def test_parse_checklist_makes_an_unnumbered_section_when_a_heading_has_checkboxes():
    parsed = _parse("- [ ] a\n\n## Appendix\n\nSome text.\n\n- [ ] b\n\n## Notes\n\n- plain\n")
    assert [(s.number, s.title) for s in parsed.sections] == [("1", "Work"), ("", "Appendix")]


def test_parse_checklist_ignores_checkboxes_when_inside_a_code_fence():
    parsed = _parse("- [ ] a\n\n```\n- [ ] not an item\n```\n")
    assert parsed.checkbox_count == parsed.imported_checkbox_count == 1
