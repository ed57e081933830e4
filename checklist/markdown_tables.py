"""Tables of a checklist, recognised by their header names in any column order.

* Overall Status Summary (a ``Category`` column): names the summary category of each top-level
  section. With a ``Section`` column each row names its section; without one (the seed), row N
  (TOTAL excluded) is Section N. The counts are not read: the portal computes the summary.
* Risk register (``ID``, ``Risk``, ``Impact``, ``Probability``; optionally ``Mitigation``,
  ``Owner``, ``Status``) → risks.
* Action items (``ID``, ``Action``; optionally ``Owner``, ``Due Date``, ``Status``).

Any other column is kept in the row's note as ``Column: value`` (a ``Note`` column as the bare
value), parts joined by ``; ``. Other tables are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from . import markdown_grammar as g
from .choices import ItemStatus
from .importers import ParsedActionItem, ParsedRisk

_SEPARATOR_RE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
RISK_COLUMNS = {
    "id": "key",
    "risk": "title",
    "title": "title",
    "description": "title",
    "impact": "impact",
    "probability": "probability",
    "likelihood": "probability",
    "mitigation": "mitigation",
    "owner": "owner_label",
    "status": "status",
}
ACTION_COLUMNS = {
    "id": "key",
    "action": "action",
    "action item": "action",
    "owner": "owner_label",
    "due date": "due_text",
    "due": "due_text",
    "status": "status",
}
NOTE_COLUMNS = {"note", "notes"}
Fail = Callable[..., NoReturn]


@dataclass
class RawTable:
    line: int
    rows: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Tables:
    risks: list[ParsedRisk] = field(default_factory=list)
    action_items: list[ParsedActionItem] = field(default_factory=list)
    categories: dict[str, str] = field(default_factory=dict)  # section number → category


def _cells(table: RawTable, fail: Fail) -> tuple[list[str], list[tuple[int, list[str]]]] | None:
    if len(table.rows) < 2 or not _SEPARATOR_RE.match(table.rows[1][1]):
        return None
    headers = g.split_row(table.rows[0][1])
    body = []
    for line, text in table.rows[2:]:
        cells = g.split_row(text)
        if len(cells) > len(headers):
            fail(f"this table row has {len(cells)} cells; its header has {len(headers)}", line)
        body.append((line, cells + [""] * (len(headers) - len(cells))))
    return headers, body


def _columns(headers: list[str], known: dict[str, str]) -> list[str | None]:
    """The field each column fills, None for an extra column (kept in the note)."""
    taken: set[str] = set()
    fields: list[str | None] = []
    for header in headers:
        name = known.get(g.header_key(header))
        fields.append(name if name and name not in taken else None)
        taken.add(name) if name else None
    return fields


def _row(headers: list[str], fields: list[str | None], cells: list[str]) -> tuple[dict, list]:
    values: dict[str, str] = {}
    notes: list[str] = []
    for header, name, cell in zip(headers, fields, cells, strict=True):
        cell = g.strip_bold(cell)
        if name:
            values[name] = cell
        elif cell:
            bare = g.header_key(header) in NOTE_COLUMNS
            notes.append(cell if bare else f"{g.strip_bold(header)}: {cell}")
    return values, notes


def _status(cell: str, what: str, line: int, vocabulary: g.StatusVocabulary, fail: Fail, notes):
    if not cell:
        return ItemStatus.NOT_STARTED
    status, rest = vocabulary.split(cell)
    if status is None:
        fail(
            f"{what}: status '{cell}' is not a legend status (✅ 🟡 ⚪ ❌ ⚠️ or Complete, "
            "In Progress, Not Started, Blocked, At Risk)",
            line,
        )
    if rest:
        notes.insert(0, f"Status: {rest}")
    return status


def read_tables(tables: list[RawTable], *, vocabulary: g.StatusVocabulary, fail: Fail) -> Tables:
    found = Tables()
    risk_lines: dict[str, int] = {}
    action_lines: dict[str, int] = {}
    for table in tables:
        parsed = _cells(table, fail)
        if parsed is None:
            continue
        headers, body = parsed
        keys = [g.header_key(h) for h in headers]
        if "category" in keys:
            _categories(keys, body, found.categories)
        elif {"id", "impact", "probability"} <= set(keys) and {"risk", "title"} & set(keys):
            fields = _columns(headers, RISK_COLUMNS)
            for line, cells in body:
                values, notes = _row(headers, fields, cells)
                found.risks.append(_risk(values, notes, line, vocabulary, fail, risk_lines))
        elif "id" in keys and {"action", "action item"} & set(keys):
            fields = _columns(headers, ACTION_COLUMNS)
            for line, cells in body:
                values, notes = _row(headers, fields, cells)
                found.action_items.append(
                    _action(values, notes, line, vocabulary, fail, action_lines)
                )
    return found


def _categories(keys: list[str], body, categories: dict[str, str]) -> None:
    category_at = keys.index("category")
    section_at = keys.index("section") if "section" in keys else None
    position = 0
    for _line, cells in body:
        category = g.strip_bold(cells[category_at])
        if not category or category.upper() == "TOTAL":
            continue
        position += 1
        if section_at is None:
            number = str(position)
        else:
            number = re.sub(r"(?i)^section\s+", "", g.strip_bold(cells[section_at])).strip()
        if number:
            categories[number] = category


def _key(values: dict, what: str, line: int, fail: Fail, seen: dict[str, int]) -> str:
    key = values.get("key", "")
    if not key:
        fail(f"this {what} row has no ID", line)
    if key in seen:
        fail(f"{what} {key} appears twice (first at line {seen[key]})", line)
    seen[key] = line
    return key


def _risk(values, notes, line, vocabulary, fail: Fail, seen) -> ParsedRisk:
    key = _key(values, "risk", line, fail, seen)
    if not values.get("title"):
        fail(f"risk {key} has no text in its Risk column", line)
    levels = {}
    for name in ("impact", "probability"):
        level = g.parse_level(values.get(name, ""))
        if level is None:
            fail(f"risk {key}: {name} '{values.get(name, '')}' is not HIGH, MEDIUM or LOW", line)
        levels[name] = level
    status = _status(values.get("status", ""), f"risk {key}", line, vocabulary, fail, notes)
    return ParsedRisk(
        line=line,
        key=key,
        title=values["title"],
        impact=levels["impact"],
        probability=levels["probability"],
        mitigation=values.get("mitigation", ""),
        owner_label=values.get("owner_label", ""),
        status=status,
        note="; ".join(notes),
    )


def _action(values, notes, line, vocabulary, fail: Fail, seen) -> ParsedActionItem:
    key = _key(values, "action item", line, fail, seen)
    if not values.get("action"):
        fail(f"action item {key} has no text in its Action column", line)
    status = _status(values.get("status", ""), f"action item {key}", line, vocabulary, fail, notes)
    due_text = values.get("due_text", "")
    return ParsedActionItem(
        line=line,
        key=key,
        action=values["action"],
        owner_label=values.get("owner_label", ""),
        due_text=due_text,
        due_date=g.find_date(due_text),
        status=status,
        note="; ".join(notes),
    )
