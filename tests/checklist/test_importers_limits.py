"""How much one checklist may hold (checklist.importers.ImportLimits, issue #14 point 10): the
parser counts while it reads and refuses the first line past a bound, naming the file, the line
and the setting, before the rest of the file is parsed."""

from __future__ import annotations

import time
import tracemalloc
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from checklist.importers import ChecklistImportError, ImportLimits, parse_checklist
from checklist.models import Item, Release

HEAD = """# Flood

**Project:** dCMMS
**Release:** Flood (v9.9.9)

## Section 1: Flood

"""
HEAD_LINES = HEAD.count("\n")  # the first item is on line HEAD_LINES + 1
ROOMY = ImportLimits(items=100, sections=100, criteria=100, table_rows=100)


def hostile(size: int = 2 * 1024 * 1024) -> bytes:
    """The attack of issue #14: a 2 MB checklist of one repeated item line (262,131 items)."""
    line = "- [ ] x\n"
    return (HEAD + line * ((size - len(HEAD)) // len(line))).encode()


def _refusal(data: bytes | str, limits: ImportLimits, name: str = "flood.md") -> str:
    with pytest.raises(ChecklistImportError) as caught:
        parse_checklist(data, source_name=name, limits=limits)
    return str(caught.value)


def test_parse_refuses_the_2mb_hostile_file_fast_at_the_first_item_past_the_limit():
    data = hostile()
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ChecklistImportError) as caught:
            parse_checklist(data, source_name="hostile.md")
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    line = HEAD_LINES + 20_001
    assert str(caught.value) == (
        f"hostile.md:{line}: the checklist has more than 20,000 checkbox items; the limit is "
        "20,000 (CHECKLIST_IMPORT_MAX_ITEMS) and this is number 20,001: split the file or raise "
        "the limit"
    )
    # Without the bound: 262,131 items parsed in 3.4 s (16 s traced), 197 MiB at the peak.
    assert elapsed < 5
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_parse_accepts_exactly_the_item_limit_and_refuses_one_more():
    items = "".join(f"- [ ] item {n}\n" for n in range(1, 6))
    limits = ImportLimits(items=5, sections=10, criteria=10, table_rows=10)

    parsed = parse_checklist(HEAD + items, source_name="five.md", limits=limits)

    assert sum(1 for _ in parsed.iter_items()) == 5
    message = _refusal(HEAD + items + "  - [ ] a sub-item\n", limits, "six.md")
    assert message.startswith(
        f"six.md:{HEAD_LINES + 6}: the checklist has more than 5 checkbox items"
    )
    assert "(CHECKLIST_IMPORT_MAX_ITEMS)" in message


def test_parse_counts_the_default_limits_from_settings_when_none_are_given(settings):
    settings.CHECKLIST_IMPORT_MAX_ITEMS = 2

    message = _refusal(HEAD + "- [ ] a\n- [ ] b\n- [ ] c\n", limits=None)

    assert message.startswith(
        f"flood.md:{HEAD_LINES + 3}: the checklist has more than 2 checkbox items"
    )


def test_parse_refuses_too_many_list_lines_without_a_checkbox():
    bullets = "".join(f"- remark {n}\n" for n in range(101))

    message = _refusal(HEAD + bullets, ROOMY)

    assert message.startswith(
        f"flood.md:{HEAD_LINES + 101}: the checklist has more than 100 list lines without a "
        "checkbox"
    )
    assert "(CHECKLIST_IMPORT_MAX_ITEMS)" in message


def test_parse_refuses_the_first_section_past_the_section_limit():
    sections = "".join(f"## Section {n}: Area {n}\n\n- [ ] item {n}\n\n" for n in range(2, 5))
    limits = ImportLimits(items=100, sections=3, criteria=100, table_rows=100)

    message = _refusal(HEAD + "- [ ] first\n\n" + sections, limits)

    fourth = (HEAD + "- [ ] first\n\n" + sections).splitlines().index("## Section 4: Area 4") + 1
    assert message.startswith(f"flood.md:{fourth}: the checklist has more than 3 sections")
    assert "(CHECKLIST_IMPORT_MAX_SECTIONS)" in message


def test_parse_refuses_the_first_criterion_past_the_criteria_limit():
    criteria = "### GO Criteria\n\n**Readiness**\n" + "".join(
        f"- [ ] criterion {n}\n" for n in range(1, 4)
    )
    text = HEAD + "- [ ] an item\n\n" + criteria
    limits = ImportLimits(items=100, sections=100, criteria=2, table_rows=100)

    message = _refusal(text, limits)

    third = text.splitlines().index("- [ ] criterion 3") + 1
    assert message.startswith(f"flood.md:{third}: the checklist has more than 2 GO / NO-GO")
    assert "(CHECKLIST_IMPORT_MAX_CRITERIA)" in message


def test_parse_refuses_the_first_table_row_past_the_table_row_limit():
    table = (
        "| ID | Risk | Impact | Probability |\n|----|------|--------|-------------|\n"
        + "".join(f"| R-{n} | Risk {n} | HIGH | LOW |\n" for n in range(1, 4))
    )
    text = HEAD + "- [ ] an item\n\n## Risk Register\n\n" + table
    limits = ImportLimits(items=100, sections=100, criteria=100, table_rows=4)

    message = _refusal(text, limits)

    fifth_row = text.splitlines().index("| R-3 | Risk 3 | HIGH | LOW |") + 1
    assert message.startswith(f"flood.md:{fifth_row}: the checklist has more than 4 table rows")
    assert "(CHECKLIST_IMPORT_MAX_TABLE_ROWS)" in message


def test_parse_accepts_the_seed_within_the_default_limits(seed_path):
    parsed = parse_checklist(seed_path.read_bytes(), source_name="seed.md")

    assert sum(1 for _ in parsed.iter_items()) == 434


@pytest.mark.django_db
def test_import_command_refuses_the_hostile_file_with_its_line_and_writes_nothing(tmp_path):
    path = Path(tmp_path / "hostile.md")
    path.write_bytes(hostile())

    started = time.monotonic()
    with pytest.raises(CommandError) as caught:
        call_command("import_checklist", str(path), stdout=StringIO())

    assert time.monotonic() - started < 5
    assert str(caught.value).startswith(f"{path}:{HEAD_LINES + 20_001}: the checklist has more")
    assert "20,000 (CHECKLIST_IMPORT_MAX_ITEMS)" in str(caught.value)
    assert not Release.objects.exists() and not Item.objects.exists()
