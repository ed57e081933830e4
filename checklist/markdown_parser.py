"""The structure pass of the checklist importer (see ``checklist.importers`` for the grammar).

One scan over the lines builds the section tree, the raw list trees (with their indentation)
and the tables; a second pass, once the legend is known, classifies every list item as an item,
a sign-off block, an attestation, a DECISION line or a criterion, and reads the tables. Every
checkbox placed is recorded by line so that the count can be reconciled with the source.
List lines, sections, criteria and table rows are counted as they are read: the first one past
its bound (``ImportLimits``) is refused at once, before the rest of the file is parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn

from . import markdown_grammar as g
from .choices import ItemKind, ItemStatus, ReviewCadence
from .importers import (
    ChecklistImportError,
    ImportLimits,
    ParsedAttestation,
    ParsedChecklist,
    ParsedCriterion,
    ParsedItem,
    ParsedRelease,
    ParsedSection,
    ParsedSignoff,
    count_checkboxes,
    iter_lines,
)
from .markdown_tables import RawTable, read_tables

_HEADING_RE = re.compile(r"^\s{0,3}(?P<level>#{1,6})\s+(?P<title>.*?)\s*#*\s*$")
_SECTION_RE = re.compile(
    r"^(?:Section\s+(?P<num>\d+)\s*[:.\-–—]|(?P<num2>\d+)[.)])\s*(?P<title>.+)$", re.I
)
_SUBSECTION_RE = re.compile(r"^(?P<num>\d+(?:\.\d+)+)\.?\s+(?P<title>.+)$")
_LIST_RE = re.compile(r"^(?P<indent>[ \t]*)[-*+](?:[ \t]+(?P<body>.*)|$)")
_CHECKBOX_BODY_RE = re.compile(r"^\[(?P<mark>[ xX])\]\s*(?P<text>.*)$")
_RULE_RE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_TABLE_RE = re.compile(r"^\s{0,3}\|")
_FENCE_RE = re.compile(r"^\s{0,3}(```|~~~)")
_META_RE = re.compile(r"^\*\*(?P<key>[^*]+?)(?::\*\*|\*\*:)\s*(?P<value>.*)$")
_RELEASE_RE = re.compile(r"^(?P<name>.*?)\s*\((?P<version>[^()]*\d[^()]*)\)\s*$")
_VERSION_RE = re.compile(r"\bv?\d+(?:\.\d+)+[\w.+-]*")
_META_KEYS = {
    "project": "project",
    "release": "release",
    "sprint": "sprint",
    "document version": "document_version",
    "go/no-go decision date": "go_no_go",
    "go/no-go date": "go_no_go",
    "go-no-go decision date": "go_no_go",
    "decision date": "go_no_go",
    "document owner": "owner",
    "owner": "owner",
    "approvers": "approvers",
    "review frequency": "review_frequency",
    "next review": "next_review",
}
_CADENCES = (
    ("weekday", ReviewCadence.WEEKDAYS),
    ("daily", ReviewCadence.DAILY),
    ("weekly", ReviewCadence.WEEKLY),
)
ITEMS, GO, NO_GO = "items", "go", "no_go"


@dataclass(eq=False)
class _Node:
    """One list line as written: a checkbox item or a plain bullet, with its children."""

    line: int
    col: int
    checkbox: bool
    checked: bool
    text: str
    children: list[_Node] = field(default_factory=list)
    context: tuple[ParsedSection | None, str, str] | None = None  # roots: section, mode, group

    def has_checkbox(self) -> bool:
        return any(c.checkbox or c.has_checkbox() for c in self.children)


def review_cadence(frequency: str) -> str:
    """The reminder cadence a "Review Frequency" names (daily, weekdays, weekly), else ""."""
    for word, cadence in _CADENCES:
        if word in frequency.lower():
            return cadence
    return ""


class ChecklistParser:
    """Parse one decoded checklist text; ``parse()`` returns a ParsedChecklist or raises."""

    def __init__(
        self, text: str, *, source_name: str, max_depth: int, limits: ImportLimits
    ) -> None:
        self.text = text
        self.source_name = source_name
        self.max_depth = max_depth
        self.limits = limits
        self.counts = dict.fromkeys(ImportLimits.COUNTED, 0)
        self.vocabulary = g.StatusVocabulary()
        self.meta: dict[str, tuple[int, str]] = {}
        self.sections: list[ParsedSection] = []
        self.numbers: dict[str, ParsedSection] = {}
        self.chain: list[ParsedSection] = []  # the current section and its open subsections
        self.pending: tuple[int, str] | None = None  # an unnumbered ## heading
        self.mode, self.group, self.legend = ITEMS, "", False
        self.roots: list[_Node] = []
        self.stack: list[_Node] = []
        self.tables: list[RawTable] = []
        self.table: RawTable | None = None
        self.placed: set[int] = set()
        self.keys: dict[str, int] = {}
        self.roles: dict[str, int] = {}
        self.signoffs: list[ParsedSignoff] = []
        self.criteria: list[ParsedCriterion] = []

    def fail(self, problem: str, line: int | None = None) -> NoReturn:
        raise ChecklistImportError(problem, source_name=self.source_name, line=line)

    # ------------------------------------------------------------ pass 1: scan the lines

    def parse(self) -> ParsedChecklist:
        fenced = False
        for number, raw in enumerate(iter_lines(self.text), 1):
            line = raw.rstrip()
            if _FENCE_RE.match(line):
                fenced = not fenced
                self._end_blocks()
            elif fenced:
                continue
            elif not line.strip():
                self._end_table()
            elif heading := _HEADING_RE.match(line):
                self._end_blocks()
                self._heading(number, len(heading.group("level")), heading.group("title"))
            elif _TABLE_RE.match(line):
                self._count("table_rows", number)
                self.stack = []
                self.table = self.table or RawTable(line=number)
                self.table.rows.append((number, line))
            else:
                self._end_table()
                self._text_line(number, line)
        self._end_blocks()
        return self._build()

    def _count(self, what: str, line: int) -> None:
        """One more of ``what``; the first line past its bound is refused (ImportLimits)."""
        self.counts[what] += 1
        if problem := self.limits.refusal(what, self.counts[what]):
            self.fail(problem, line)

    def _end_table(self) -> None:
        if self.table is not None:
            self.tables.append(self.table)
            self.table = None

    def _end_blocks(self) -> None:
        self._end_table()
        self.stack = []

    @property
    def target(self) -> ParsedSection | None:
        return self.chain[-1] if self.chain else None

    def _heading(self, number: int, level: int, title: str) -> None:
        self.mode, self.group, self.legend = ITEMS, "", False
        if level == 1:
            return
        if level == 2:
            self.chain, self.pending = [], None
            section = _SECTION_RE.match(title)
            if section:
                num = section.group("num") or section.group("num2")
                self._add_section(number, num, section.group("title"), parent=None)
            else:
                self.pending = (number, title)
            return
        sub = _SUBSECTION_RE.match(title)
        if sub:
            num = sub.group("num")
            parent_number = num.rsplit(".", 1)[0]
            parent = next((s for s in self.chain if s.number == parent_number), None)
            if parent is None:
                where = f"Section {self.chain[0].number}" if self.chain else "no numbered section"
                self.fail(
                    f"subsection {num} is not under section {parent_number} (it is under "
                    f"{where}); number it after the section above it",
                    number,
                )
            self.chain = self.chain[: self.chain.index(parent) + 1]
            self._add_section(number, num, sub.group("title"), parent=parent)
            return
        # Any other heading ends the open subsection: what follows belongs to the section.
        self.chain = self.chain[:1]
        criteria = g.CRITERIA_HEADING_RE.match(title)
        if criteria:
            self.mode = NO_GO if criteria.group("kind").upper().startswith("NO") else GO

    def _add_section(self, line: int, num: str, title: str, parent: ParsedSection | None) -> None:
        if num in self.numbers:
            self.fail(f"section {num} appears twice (first at line {self.numbers[num].line})", line)
        self._count("sections", line)
        section = ParsedSection(line=line, number=num, title=g.strip_bold(title), parent=parent)
        (parent.children if parent else self.sections).append(section)
        self.numbers[num] = section
        self.chain.append(section)

    def _text_line(self, number: int, line: str) -> None:
        item = _LIST_RE.match(line)
        if item and not _RULE_RE.match(line):
            self._list_item(number, item.group("indent"), item.group("body") or "")
        elif self.stack and line[0] in " \t":
            self.stack[-1].text = f"{self.stack[-1].text} {line.strip()}".strip()
        else:
            self.stack = []
            self._paragraph(number, line.strip())

    def _list_item(self, number: int, indent: str, body: str) -> None:
        col = len(indent.expandtabs(4))
        box = _CHECKBOX_BODY_RE.match(body)
        if box is None:
            self._count("bullets", number)
        else:  # a criterion's sub-items are refused later; counted as criteria here
            self._count("items" if self.mode == ITEMS else "criteria", number)
        node = _Node(
            line=number,
            col=col,
            checkbox=box is not None,
            checked=bool(box and box.group("mark") in "xX"),
            text=(box.group("text") if box else body).strip(),
        )
        while self.stack and self.stack[-1].col >= col:
            self.stack.pop()
        depth = len(self.stack) + 1
        if depth > self.max_depth:
            self.fail(
                f"this list item is nested {depth} levels deep; the limit is "
                f"{self.max_depth} (CHECKLIST_IMPORT_MAX_DEPTH)",
                number,
            )
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            if node.checkbox and self.mode == ITEMS and self._ensure_section() is None:
                self.fail(
                    "a checkbox before the first section: put checklist items under a "
                    "'## Section N: Title' heading",
                    number,
                )
            if self.legend and not node.checkbox:
                self.vocabulary.learn(node.text)
            node.context = (self.target, self.mode, self.group)
            self.roots.append(node)
        self.stack.append(node)

    def _ensure_section(self) -> ParsedSection | None:
        """An unnumbered ``##`` heading becomes a section when a checkbox item appears under it."""
        if self.target is None and self.pending is not None:
            line, title = self.pending
            self._count("sections", line)
            section = ParsedSection(line=line, number="", title=g.strip_bold(title))
            self.sections.append(section)
            self.chain, self.pending = [section], None
        return self.target

    def _paragraph(self, number: int, text: str) -> None:
        meta = _META_RE.match(text)
        if meta:
            key = " ".join(meta.group("key").lower().split())
            self.legend = key == "legend"
            name = _META_KEYS.get(key)
            if name and name not in self.meta:
                self.meta[name] = (number, g.strip_bold(meta.group("value")))
            return
        self.legend = False
        if self.mode != ITEMS and (group := g.CRITERIA_GROUP_RE.match(text)):
            self.group = group.group("group").strip()

    # ------------------------------------------------------------ pass 2: classify

    def _build(self) -> ParsedChecklist:
        for root in self.roots:
            section, mode, group = root.context
            if mode != ITEMS:
                self._criterion(root, mode, group)
            elif section is not None:
                section.items.extend(self._items([root], section))
        tables = read_tables(self.tables, vocabulary=self.vocabulary, fail=self.fail)
        for number, category in tables.categories.items():
            section = self.numbers.get(number)
            if section is not None and section.parent is None:
                section.category = "" if category == section.title else category
        parsed = ParsedChecklist(
            source_name=self.source_name,
            release=self._release(),
            sections=self.sections,
            signoffs=self.signoffs,
            criteria=self.criteria,
            risks=tables.risks,
            action_items=tables.action_items,
            checkbox_count=0,
        )
        self._reconcile(parsed)
        return parsed

    def _items(self, nodes: list[_Node], section: ParsedSection) -> list[ParsedItem]:
        items: list[ParsedItem] = []
        for node in nodes:
            if not node.checkbox:
                # A plain bullet (a stray Signature line, a remark) is not an item; checkboxes
                # under it belong to the item above it.
                items.extend(self._items(node.children, section))
            elif g.SIGNOFF_RE.match(node.text) and any(
                g.SIGNATURE_RE.match(child.text) for child in node.children
            ):
                self._signoff(node, section)
            else:
                item = self._item(node)
                item.children = self._items(node.children, section)
                items.append(item)
        return items

    def _item(self, node: _Node) -> ParsedItem:
        if not node.text:
            self.fail("this checklist item has no text", node.line)
        facts = g.classify_item(node.text, self.vocabulary)
        default = ItemStatus.COMPLETE if node.checked else ItemStatus.NOT_STARTED
        item = ParsedItem(
            line=node.line,
            kind=facts.kind,
            text=facts.text,
            status=facts.status or default,
            checked=node.checked,
            key=facts.key,
            points=facts.points,
            note=facts.note,
            actual_label=facts.actual_label,
            actual_value=facts.actual.value,
            actual_text=facts.actual.text,
            actual_unit=facts.actual.unit,
        )
        if facts.target is not None:
            item.target_op = facts.target.op
            item.target_value = facts.target.value
            item.target_unit = facts.target.unit
        if item.kind == ItemKind.TASK:
            if item.key in self.keys:
                self.fail(
                    f"task {item.key} appears twice (first at line {self.keys[item.key]})",
                    node.line,
                )
            self.keys[item.key] = node.line
        self.placed.add(node.line)
        return item

    def _signoff(self, node: _Node, section: ParsedSection) -> None:
        match = g.SIGNOFF_RE.match(node.text)
        role = g.strip_bold(match.group("role"))
        lineage, tier = section, None
        while lineage is not None and tier is None:
            tier, lineage = g.tier_from_title(lineage.title), lineage.parent
        if tier is None:
            title = f"{section.number} {section.title}".strip()
            self.fail(
                f"cannot tell the tier of the sign-off block '{role}': its section "
                f"'{title}' names none of Technical, Operations, Executive",
                node.line,
            )
        if role.lower() in self.roles:
            self.fail(
                f"the sign-off role '{role}' appears twice (first at line "
                f"{self.roles[role.lower()]})",
                node.line,
            )
        self.roles[role.lower()] = node.line
        signoff = ParsedSignoff(
            line=node.line,
            role=role,
            tier=tier,
            final_decision=bool(g.FINAL_RE.search(match.group("rest") + match.group("after"))),
        )
        self.placed.add(node.line)
        for child in node.children:
            if g.SIGNATURE_RE.match(child.text):
                if child.checkbox:
                    self.fail(
                        "write the Signature line without a checkbox: '- Signature: ___ Date: ___'",
                        child.line,
                    )
            elif g.DECISION_RE.search(child.text):
                signoff.final_decision = True
                if child.checkbox:
                    signoff.decision_line = child.line
                    self.placed.add(child.line)
            elif child.checkbox:
                if not child.text:
                    self.fail("this attestation has no text", child.line)
                if child.has_checkbox():
                    self.fail(
                        "an attestation of a sign-off block cannot have sub-items",
                        child.children[0].line,
                    )
                signoff.attestations.append(ParsedAttestation(line=child.line, text=child.text))
                self.placed.add(child.line)
        if signoff.final_decision:
            first = next((s for s in self.signoffs if s.final_decision), None)
            if first is not None:
                self.fail(
                    f"'{role}' is a second final Go/No-Go decision (the first is "
                    f"'{first.role}' at line {first.line})",
                    node.line,
                )
        self.signoffs.append(signoff)

    def _criterion(self, node: _Node, mode: str, group: str) -> None:
        if not node.checkbox:
            for child in node.children:
                self._criterion(child, mode, group)
            return
        nested = next((c for c in node.children if c.checkbox or c.has_checkbox()), None)
        if nested is not None:
            self.fail("a GO/NO-GO criterion cannot have sub-items", nested.line)
        if not node.text:
            self.fail("this criterion has no text", node.line)
        self.criteria.append(
            ParsedCriterion(
                line=node.line,
                kind=mode,
                group=group,
                text=node.text,
                checked=node.checked,
            )
        )
        self.placed.add(node.line)

    # ------------------------------------------------------------ release, reconciliation

    def _release(self) -> ParsedRelease:
        if "release" not in self.meta:
            self.fail(
                "no '**Release:** <name> (<version>)' line: the checklist must name its "
                "release and version"
            )
        line, value = self.meta["release"]
        match = _RELEASE_RE.match(value)
        if match:
            name, version = match.group("name"), match.group("version").strip()
        elif found := _VERSION_RE.search(value):
            version = found.group()
            name = (value[: found.start()] + value[found.end() :]).strip(" -–—:,")
        else:
            self.fail(
                f"the Release line names no version: '{value}'; write it as "
                "'**Release:** Release 2 (v0.3.0)'",
                line,
            )
        project_line, project = self.meta.get("project", (None, ""))
        if not project:
            self.fail(
                "no '**Project:** <name>' line: the checklist must name its project", project_line
            )

        def meta(name: str) -> str:
            return self.meta.get(name, (0, ""))[1]

        return ParsedRelease(
            line=line,
            project=project,
            name=name or version,
            version=version,
            sprint=meta("sprint"),
            document_version=meta("document_version"),
            go_no_go_label=meta("go_no_go"),
            go_no_go_date=g.find_date(meta("go_no_go")),
            owner_label=meta("owner"),
            approvers_label=meta("approvers"),
            review_frequency=meta("review_frequency"),
            review_cadence=review_cadence(meta("review_frequency")),
            next_review=meta("next_review"),
        )

    def _reconcile(self, parsed: ParsedChecklist) -> None:
        """Every list-item checkbox of the source must have been imported as something."""
        source = count_checkboxes(iter_lines(self.text))
        parsed.checkbox_count = len(source)
        missing = [line for line in source if line not in self.placed]
        if missing or parsed.imported_checkbox_count != len(source):
            self.fail(
                f"could not place this checkbox: the file has {len(source)} checkboxes and "
                f"{parsed.imported_checkbox_count} were imported (check its indentation and "
                "the heading above it)",
                missing[0] if missing else None,
            )
