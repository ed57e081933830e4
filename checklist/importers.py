"""Parse a release checklist written in the seed's Markdown grammar into plain dataclasses.

``parse_checklist(data, source_name=...)`` is the one entry point (the import command and a
future admin upload page both call it); ``signoffs.documents.release_import`` persists the
result. This module imports no risks/signoffs models: everything it returns is a dataclass.

A careful line-based parser, so that every error names its source line:

* ``## Section N: Title`` is a checklist section and ``### N.M Title`` a subsection (``####
  N.M.K`` nests further). Any other ``##`` heading (Document Purpose, Overall Status Summary,
  Document Control) is not a checklist section unless a checkbox item appears under it, in which
  case it becomes an unnumbered section. ``### GO Criteria`` / ``### NO-GO Criteria`` switch
  list items to GO criteria and NO-GO blockers, grouped by the bold line above them.
* Task lists nest by indentation (2 or 4 spaces or tabs, a tab counting 4 columns): each item's
  parent is the nearest item above it that is indented less.
* Tables are recognised by their header names, in any column order (see ``markdown_tables``).
* The source's list-item checkboxes (``^\\s*[-*+]\\s+\\[[ xX]\\]``, outside code fences) are
  counted and every one must be placed: as an item, a sign-off block, an attestation, a
  DECISION line or a criterion. Anything else is an error naming the first unplaced line.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError

from . import markdown_grammar as g
from .choices import ItemStatus


class ChecklistImportError(ValidationError):
    """A checklist that cannot be imported: which file, which line (when there is one), what.

    ``str(error)`` is ``PATH:LINE: problem`` (``PATH: problem`` without a line), the form the
    import command prints; as a ``ValidationError`` the admin can show it as it is.
    """

    def __init__(self, problem: str, *, source_name: str, line: int | None = None) -> None:
        self.problem = problem
        self.source_name = source_name
        self.line = line
        super().__init__(self.located, code="checklist_import")

    @property
    def located(self) -> str:
        where = f"{self.source_name}:{self.line}" if self.line else self.source_name
        return f"{where}: {self.problem}"

    def __str__(self) -> str:
        return self.located


# ---------------------------------------------------------------- the parsed document


@dataclass
class ParsedItem:
    line: int
    kind: str
    text: str
    status: str
    checked: bool
    key: str = ""
    points: int | None = None
    note: str = ""
    target_op: str = ""
    target_value: Decimal | None = None
    target_unit: str = ""
    actual_label: str = ""
    actual_value: Decimal | None = None
    actual_text: str = ""
    actual_unit: str = ""
    children: list[ParsedItem] = field(default_factory=list)


@dataclass
class ParsedSection:
    line: int
    number: str
    title: str
    category: str = ""
    parent: ParsedSection | None = field(default=None, repr=False)
    items: list[ParsedItem] = field(default_factory=list)
    children: list[ParsedSection] = field(default_factory=list)


@dataclass
class ParsedAttestation:
    line: int
    text: str


@dataclass
class ParsedSignoff:
    line: int
    role: str
    tier: str  # "technical" | "operations" | "executive" (signoffs.choices.Tier values)
    final_decision: bool = False
    decision_line: int | None = None
    attestations: list[ParsedAttestation] = field(default_factory=list)


@dataclass
class ParsedCriterion:
    line: int
    kind: str  # "go" | "no_go" (signoffs.choices.CriterionKind values)
    group: str
    text: str
    checked: bool = False


@dataclass
class ParsedRisk:
    line: int
    key: str
    title: str
    impact: str
    probability: str
    mitigation: str = ""
    owner_label: str = ""
    status: str = ItemStatus.NOT_STARTED
    note: str = ""


@dataclass
class ParsedActionItem:
    line: int
    key: str
    action: str
    owner_label: str = ""
    due_text: str = ""
    due_date: datetime.date | None = None
    status: str = ItemStatus.NOT_STARTED
    note: str = ""


@dataclass
class ParsedRelease:
    line: int
    project: str
    name: str
    version: str
    sprint: str = ""
    document_version: str = ""
    go_no_go_label: str = ""
    go_no_go_date: datetime.date | None = None
    owner_label: str = ""
    approvers_label: str = ""
    review_frequency: str = ""
    review_cadence: str = ""
    next_review: str = ""


@dataclass
class ParsedChecklist:
    source_name: str
    release: ParsedRelease
    sections: list[ParsedSection]  # top level, in document order
    signoffs: list[ParsedSignoff]
    criteria: list[ParsedCriterion]
    risks: list[ParsedRisk]
    action_items: list[ParsedActionItem]
    checkbox_count: int  # list-item checkboxes in the source

    def iter_sections(self) -> Iterator[ParsedSection]:
        stack = list(reversed(self.sections))
        while stack:
            section = stack.pop()
            yield section
            stack.extend(reversed(section.children))

    def iter_items(self) -> Iterator[tuple[ParsedSection, ParsedItem | None, ParsedItem, int]]:
        """(section, parent, item, depth) for every item, parents before their children."""
        for section in self.iter_sections():
            stack = [(None, item, 1) for item in reversed(section.items)]
            while stack:
                parent, item, depth = stack.pop()
                yield section, parent, item, depth
                stack.extend((item, child, depth + 1) for child in reversed(item.children))

    @property
    def imported_checkbox_count(self) -> int:
        """Items + sign-off block headers + attestations + DECISION lines + criteria."""
        return (
            sum(1 for _ in self.iter_items())
            + sum(1 + len(s.attestations) + (s.decision_line is not None) for s in self.signoffs)
            + len(self.criteria)
        )


# ---------------------------------------------------------------- bounds


@dataclass(frozen=True)
class ImportLimits:
    """How much one checklist may hold; the parser counts while it reads and refuses the first
    line past a bound, before the rest of the file is parsed (issue #14, point 10)."""

    items: int  # checkbox lines outside GO/NO-GO criteria; list lines without one, likewise
    sections: int
    criteria: int
    table_rows: int

    # What the parser counts: the field that bounds it, what it is, the setting.
    COUNTED: ClassVar[dict[str, tuple[str, str, str]]] = {
        "items": ("items", "checkbox items", "CHECKLIST_IMPORT_MAX_ITEMS"),
        "bullets": ("items", "list lines without a checkbox", "CHECKLIST_IMPORT_MAX_ITEMS"),
        "sections": ("sections", "sections", "CHECKLIST_IMPORT_MAX_SECTIONS"),
        "criteria": ("criteria", "GO / NO-GO criteria", "CHECKLIST_IMPORT_MAX_CRITERIA"),
        "table_rows": (
            "table_rows",
            "table rows (risks, action items and any other table)",
            "CHECKLIST_IMPORT_MAX_TABLE_ROWS",
        ),
    }

    def refusal(self, what: str, count: int) -> str | None:
        """The problem when the ``count``-th of ``what`` is one too many, else None."""
        field_name, noun, setting = self.COUNTED[what]
        limit = getattr(self, field_name)
        if count <= limit:
            return None
        return (
            f"the checklist has more than {limit:,} {noun}; the limit is {limit:,} ({setting}) "
            f"and this is number {count:,}: split the file or raise the limit"
        )

    @classmethod
    def from_settings(cls) -> ImportLimits:
        return cls(
            items=settings.CHECKLIST_IMPORT_MAX_ITEMS,
            sections=settings.CHECKLIST_IMPORT_MAX_SECTIONS,
            criteria=settings.CHECKLIST_IMPORT_MAX_CRITERIA,
            table_rows=settings.CHECKLIST_IMPORT_MAX_TABLE_ROWS,
        )


# ---------------------------------------------------------------- input checks

CHECKBOX_RE = re.compile(r"^\s*[-*+]\s+\[[ xX]\]")
_FENCE_RE = re.compile(r"^\s{0,3}(```|~~~)")
_CONTROL_RE = re.compile(r"[\x01-\x08\x0b\x0e-\x1f\x7f]")


def _line_of(data: bytes | str, index: int) -> int:
    return data[:index].count(b"\n" if isinstance(data, bytes) else "\n") + 1


def decode_checklist(data: bytes | str, *, source_name: str, max_bytes: int | None = None) -> str:
    """The checklist as clean text: at most CHECKLIST_IMPORT_MAX_BYTES of UTF-8 without NUL or
    control bytes, mojibake repaired for the whole text, line endings LF."""
    max_bytes = settings.CHECKLIST_IMPORT_MAX_BYTES if max_bytes is None else max_bytes

    def fail(problem: str, line: int | None = None) -> ChecklistImportError:
        return ChecklistImportError(problem, source_name=source_name, line=line)

    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise fail(
            f"the file is {len(raw):,} bytes; the limit is {max_bytes:,} bytes "
            "(CHECKLIST_IMPORT_MAX_BYTES)"
        )
    if b"\x00" in raw:
        raise fail(
            "contains NUL bytes: this is a binary file, not a Markdown checklist",
            _line_of(raw, raw.index(b"\x00")),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise fail(
            f"is not UTF-8 text (byte 0x{raw[error.start]:02x} cannot be decoded); "
            "save the checklist as UTF-8",
            _line_of(raw, error.start),
        ) from None
    control = _CONTROL_RE.search(text)
    if control:
        raise fail(
            f"contains the control character U+{ord(control.group()):04X}: "
            "this looks like a binary file",
            _line_of(text, control.start()),
        )
    text = text.removeprefix("\ufeff")
    return g.repair_mojibake(text).replace("\r\n", "\n").replace("\r", "\n")


def iter_lines(text: str) -> Iterator[str]:
    """``text.split("\\n")``, one line at a time: a 2 MB file of short lines is not held twice."""
    start = 0
    while (end := text.find("\n", start)) != -1:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def count_checkboxes(lines: Iterable[str]) -> list[int]:
    """Line numbers of the list-item checkboxes, outside fenced code blocks."""
    found, fenced = [], False
    for number, line in enumerate(lines, 1):
        if _FENCE_RE.match(line):
            fenced = not fenced
        elif not fenced and CHECKBOX_RE.match(line):
            found.append(number)
    return found


def parse_checklist(
    data: bytes | str,
    *,
    source_name: str,
    max_bytes: int | None = None,
    max_depth: int | None = None,
    limits: ImportLimits | None = None,
) -> ParsedChecklist:
    """Parse one checklist; raise ChecklistImportError (file, line, problem) on bad input."""
    from .markdown_parser import ChecklistParser

    text = decode_checklist(data, source_name=source_name, max_bytes=max_bytes)
    max_depth = settings.CHECKLIST_IMPORT_MAX_DEPTH if max_depth is None else max_depth
    limits = ImportLimits.from_settings() if limits is None else limits
    return ChecklistParser(
        text, source_name=source_name, max_depth=max_depth, limits=limits
    ).parse()


_CHECKBOX_LINE_RE = re.compile(rb"^[ \t]*[-*+][ \t]+\[[ xX]\]", re.M)


def checkbox_lines_estimate(data: bytes) -> int:
    """How many lines of the raw file look like checkboxes (fences not considered): a cheap
    measure of an upload's size, read before anything is decoded or parsed."""
    return sum(1 for _ in _CHECKBOX_LINE_RE.finditer(data))


__all__ = [
    "ChecklistImportError",
    "ImportLimits",
    "ParsedActionItem",
    "ParsedAttestation",
    "ParsedChecklist",
    "ParsedCriterion",
    "ParsedItem",
    "ParsedRelease",
    "ParsedRisk",
    "ParsedSection",
    "ParsedSignoff",
    "checkbox_lines_estimate",
    "count_checkboxes",
    "decode_checklist",
    "iter_lines",
    "parse_checklist",
]
