"""A release written back as a Markdown checklist in the seed's grammar (clean UTF-8 emoji).

The output imports (``signoffs.documents.release_import``) to a release with the same JSON
snapshot: every rule here is the inverse of one in ``checklist.markdown_grammar``. The Overall
Status Summary is computed (``release_full_summary``), never copied, and carries a Section
column so that each row names the section whose summary category it is.

The schema does not record where the document placed the sign-off blocks, the GO/NO-GO
criteria and the two tables, so they are placed by section title: a sign-off block in the
section whose title names its tier (preferring a "Sign-offs"/"Approvals" section without
items), criteria under a "Criteria"/"Go/No-Go" section, the risk register under a "Risk"
section and the action items under an "Action" section. With no such section they go to
sections appended at the end. Not written (they live in the portal and the JSON export only):
item owners, due dates and evidence, a check's note, a criterion's "not met" verdict, links.
A metric written without a ``| Actual:`` slot that is later given an actual in the portal is
written with an "Actual" slot, so it comes back labelled "Actual".
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from checklist import markdown_grammar as g
from checklist.choices import STATUS_EMOJI, ItemKind, ItemStatus
from checklist.models import Item, Release, Section
from checklist.summary import Summary, SummaryRow
from checklist.targets import format_number
from risks.models import ActionItem, Risk

from .choices import CriterionKind, Tier
from .models import Criterion, SignoffRequirement
from .summary import SIGNOFF_CATEGORY, release_full_summary

_SIGN_RE = re.compile(r"(?i)sign|approv")
_PLACES = {
    "criteria": re.compile(r"(?i)criteria|go\s*/\s*no[-\s]?go"),
    "risks": re.compile(r"(?i)\brisk"),
    "actions": re.compile(r"(?i)\baction"),
}
_FALLBACK_TITLES = {
    "signoffs": "Stakeholder Sign-offs",
    "criteria": "Go/No-Go Decision Criteria",
    "risks": "Risk Register",
    "actions": "Action Items",
}
_CRITERIA_HEADINGS = {
    CriterionKind.GO: ("### GO Criteria (ALL must be met)", "✅"),
    CriterionKind.NO_GO: ("### NO-GO Criteria (ANY triggers delay)", "❌"),
}
_SUMMARY_HEADER = (
    "Category",
    "Section",
    "Total Items",
    "Completed",
    "In Progress",
    "Not Started",
    "Blocked",
    "At Risk",
    "Status",
)


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    headers = list(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(g.escape_cell(str(c)) for c in row) + " |" for row in rows]
    return lines


def _row_status(row: SummaryRow) -> str:
    counts = row.counts
    if row.total and row.complete == row.total:
        return ItemStatus.COMPLETE
    if counts[ItemStatus.BLOCKED]:
        return ItemStatus.BLOCKED
    if counts[ItemStatus.AT_RISK]:
        return ItemStatus.AT_RISK
    if counts[ItemStatus.IN_PROGRESS] or row.complete:
        return ItemStatus.IN_PROGRESS
    return ItemStatus.NOT_STARTED


class _Export:
    def __init__(self, release: Release) -> None:
        self.release = release
        self.vocabulary = g.StatusVocabulary()
        self.sections = list(Section.objects.filter(release=release).order_by("order", "pk"))
        self.subsections: dict[int | None, list[Section]] = defaultdict(list)
        for section in self.sections:
            self.subsections[section.parent_id].append(section)
        self.items: dict[int, list[Item]] = defaultdict(list)  # by section, roots only
        self.item_children: dict[int, list[Item]] = defaultdict(list)
        for item in Item.objects.filter(release=release).order_by("order", "pk"):
            if item.parent_id is None:
                self.items[item.section_id].append(item)
            else:
                self.item_children[item.parent_id].append(item)
        self.requirements = list(
            SignoffRequirement.objects.filter(release=release)
            .prefetch_related("attestations")
            .order_by("order", "pk")
        )
        self.criteria = list(Criterion.objects.filter(release=release).order_by("order", "pk"))
        self.risks = list(Risk.objects.filter(release=release))
        self.actions = list(ActionItem.objects.filter(release=release))
        self.placed: dict[tuple[str, int | str], list] = defaultdict(list)
        self._place()

    # ------------------------------------------------------------ placement

    def _best(self, candidates: list[Section], prefer_sign: bool = False) -> Section | None:
        def rank(section: Section) -> tuple:
            return (
                prefer_sign and not _SIGN_RE.search(section.title),
                bool(self.items.get(section.pk)),
                section.parent_id is not None,
                self.sections.index(section),
            )

        return min(candidates, key=rank) if candidates else None

    def _place(self) -> None:
        for requirement in self.requirements:
            candidates = [
                s for s in self.sections if g.tier_from_title(s.title) == requirement.tier
            ]
            section = self._best(candidates, prefer_sign=True)
            where = section.pk if section else f"fallback:{requirement.tier}"
            self.placed[("signoffs", where)].append(requirement)
        # Title matches first; then the first empty top-level section nobody took; then an
        # appended section.
        wanted = {"criteria": self.criteria, "risks": self.risks, "actions": self.actions}
        chosen = {
            what: self._best([s for s in self.sections if _PLACES[what].search(s.title)])
            for what, rows in wanted.items()
            if rows
        }
        used = {s.pk for s in chosen.values() if s} | {
            k[1] for k in self.placed if isinstance(k[1], int)
        }
        for what in chosen:
            if chosen[what] is None:
                chosen[what] = next(
                    (
                        s
                        for s in self.subsections[None]
                        if s.pk not in used
                        and not self.items.get(s.pk)
                        and not self.subsections.get(s.pk)
                    ),
                    None,
                )
                used |= {chosen[what].pk} if chosen[what] else set()
            where = chosen[what].pk if chosen[what] else "fallback"
            self.placed[(what, where)] = wanted[what]

    def _signoff_top(self) -> Section | None:
        for requirement_section in (k[1] for k in self.placed if k[0] == "signoffs"):
            section = next((s for s in self.sections if s.pk == requirement_section), None)
            while section is not None and section.parent_id is not None:
                section = next(s for s in self.sections if s.pk == section.parent_id)
            return section
        return None

    # ------------------------------------------------------------ items

    def _prefixed(self, item: Item, body: str) -> str:
        default = ItemStatus.COMPLETE if item.checked else ItemStatus.NOT_STARTED
        if item.status != default or self.vocabulary.starts_with_symbol(body):
            return f"{STATUS_EMOJI[ItemStatus(item.status)]} {body}"
        return body

    @staticmethod
    def _actual(item: Item) -> str:
        unit = f" {item.actual_unit}" if item.actual_unit else ""
        if item.actual_value is not None:
            return f"{format_number(item.actual_value)}{unit}"
        return item.actual_text or f"{g.BLANK_TEXT}{unit}"

    def _metric(self, item: Item) -> str:
        note, unit = item.note, item.target_unit
        # Inverse of the importer's rule: a target unit that the note starts with and the actual
        # repeats is written once, after the bold target (``**≤0** queries >2s``).
        omit = (
            bool(unit) and item.actual_unit == unit and note.lower().split()[:1] == [unit.lower()]
        )
        shown = "" if not unit or omit else (unit if unit.startswith("%") else f" {unit}")
        target = f"**{g.operator_symbol(item.target_op)}{format_number(item.target_value)}{shown}**"
        body = f"{item.text}: {target}" + (f" {note}" if note else "")
        label = item.actual_label or (
            "Actual" if item.actual_value is not None or item.actual_text else ""
        )
        return body + (f" | {label}: {self._actual(item)}" if label else "")

    @staticmethod
    def _field(item: Item) -> str:
        label, note = item.actual_label or g.FIELD_VALUE_LABEL, item.note
        if g.BLANK_RE.search(item.text):
            prompt = item.text + (f" {note}" if note else "")
        elif label == g.FIELD_VALUE_LABEL:
            prompt = f"{item.text}: {g.BLANK_TEXT}" + (f" {note}" if note else "")
        else:
            prompt = item.text + (f": {note}" if note else "")
        if label == g.FIELD_VALUE_LABEL and not (item.actual_text or item.actual_unit):
            return prompt
        value = item.actual_text or g.BLANK_TEXT + (
            f" {item.actual_unit}" if item.actual_unit else ""
        )
        return f"{prompt} | {label}: {value}"

    def _body(self, item: Item) -> str:
        if item.kind == ItemKind.TASK and item.key:
            points = (
                ""
                if item.points is None
                else (f" ({item.points} point{'' if item.points == 1 else 's'})")
            )
            note = f" — {item.note}" if item.note else ""
            return f"**{item.key}: {item.text}**{points} - {g.status_phrase(item.status)}{note}"
        if item.kind == ItemKind.METRIC and item.target_op:
            return self._prefixed(item, self._metric(item))
        if item.kind == ItemKind.FIELD:
            return self._prefixed(item, self._field(item))
        if item.kind == ItemKind.GROUP:
            return self._prefixed(item, f"**{item.text}**" + (f" {item.note}" if item.note else ""))
        return self._prefixed(item, item.text)

    def _item_lines(self, item: Item, depth: int = 0) -> list[str]:
        lines = [f"{'  ' * depth}- [{'x' if item.checked else ' '}] {self._body(item)}"]
        for child in self.item_children.get(item.pk, []):
            lines += self._item_lines(child, depth + 1)
        return lines

    # ------------------------------------------------------------ blocks

    @staticmethod
    def _signoff_lines(requirement: SignoffRequirement) -> list[str]:
        final = " (Final Go/No-Go)" if requirement.final_decision else ""
        lines = [f"- [ ] **{requirement.role} Approval{final}**"]
        lines += [f"  - [ ] {a.text}" for a in requirement.attestations.all()]
        if requirement.final_decision:
            lines.append(f"  - [ ] {g.DECISION_LINE}")
        return lines + [f"  - {g.SIGNATURE_LINE}", ""]

    @staticmethod
    def _criteria_lines(criteria: list[Criterion]) -> list[str]:
        lines: list[str] = []
        kind = group = None
        for criterion in criteria:
            heading, symbol = _CRITERIA_HEADINGS[CriterionKind(criterion.kind)]
            if criterion.kind != kind:
                lines += ["", heading, ""] if lines else [heading, ""]
                kind, group = criterion.kind, ""
            if criterion.group != group:
                lines += ([""] if lines[-1] else []) + [f"{symbol} **{criterion.group}**"]
                group = criterion.group
            lines.append(f"- [{'x' if criterion.manual_verdict else ' '}] {criterion.text}")
        return lines + [""]

    def _risk_lines(self, risks: list[Risk]) -> list[str]:
        noted = any(r.note for r in risks)
        headers = ["ID", "Risk", "Impact", "Probability", "Mitigation", "Owner", "Status"]
        rows = [
            [
                r.key,
                r.title,
                r.impact,
                r.probability,
                r.mitigation,
                r.owner_label,
                g.status_phrase(r.status),
            ]
            + ([r.note] if noted else [])
            for r in risks
        ]
        return _table(headers + (["Note"] if noted else []), rows) + [""]

    def _action_lines(self, actions: list[ActionItem]) -> list[str]:
        noted = any(a.note for a in actions)
        headers = ["ID", "Action", "Owner", "Due Date", "Status"]
        rows = [
            [
                a.key,
                a.action,
                a.owner_label,
                a.due_text or (a.due_date.isoformat() if a.due_date else ""),
                g.status_phrase(a.status),
            ]
            + ([a.note] if noted else [])
            for a in actions
        ]
        return _table(headers + (["Note"] if noted else []), rows) + [""]

    def _content(self, where: int | str, whats: Iterable[str] = _FALLBACK_TITLES) -> list[str]:
        """The sign-off blocks, criteria and tables placed at ``where`` (a section pk)."""
        lines: list[str] = []
        for what in whats:
            rows = self.placed.get((what, where))
            if not rows:
                continue
            if what == "signoffs":
                for requirement in rows:
                    lines += self._signoff_lines(requirement)
            elif what == "criteria":
                lines += self._criteria_lines(rows)
            elif what == "risks":
                lines += self._risk_lines(rows)
            else:
                lines += self._action_lines(rows)
        return lines

    def _section_lines(self, section: Section, level: int) -> list[str]:
        if level == 2:
            title = (
                f"Section {section.number}: {section.title}" if section.number else section.title
            )
        else:
            title = f"{section.number} {section.title}".strip()
        lines = [f"{'#' * level} {title}", ""]
        roots = self.items.get(section.pk, [])
        for item in roots:
            lines += self._item_lines(item)
        lines += [""] if roots else []
        lines += self._content(section.pk)
        for child in self.subsections.get(section.pk, []):
            lines += self._section_lines(child, level + 1)
        return lines

    def _fallback_lines(self) -> list[str]:
        numbers = [int(s.number) for s in self.subsections[None] if s.number.isdigit()]
        next_number = max(numbers, default=0) + 1
        lines: list[str] = []
        tiers = [t for t in Tier if self.placed.get(("signoffs", f"fallback:{t}"))]
        if tiers:
            lines += ["---", "", f"## Section {next_number}: {_FALLBACK_TITLES['signoffs']}", ""]
            for n, tier in enumerate(tiers, 1):
                lines += [f"### {next_number}.{n} {tier.label} Sign-offs", ""]
                lines += self._content(f"fallback:{tier}", ("signoffs",))
            next_number += 1
        for what in ("criteria", "risks", "actions"):
            if self.placed.get((what, "fallback")):
                lines += ["---", "", f"## Section {next_number}: {_FALLBACK_TITLES[what]}", ""]
                lines += self._content("fallback", (what,))
                next_number += 1
        return lines

    # ------------------------------------------------------------ the document

    def _summary_lines(self) -> tuple[list[str], Summary]:
        summary = release_full_summary(self.release)
        by_number = {row.section: row for row in summary.rows if row.section}
        signoff_top = self._signoff_top()
        rows = []

        def cells(row: SummaryRow, category: str, number: str) -> list[str]:
            c = row.counts
            return [
                f"**{category}**",
                number,
                row.total,
                c[ItemStatus.COMPLETE],
                c[ItemStatus.IN_PROGRESS],
                c[ItemStatus.NOT_STARTED],
                c[ItemStatus.BLOCKED],
                c[ItemStatus.AT_RISK],
                g.status_phrase(_row_status(row)),
            ]

        for top in self.subsections[None]:
            row = by_number.get(top.number) if top.number else None
            if row is not None:
                rows.append(cells(row, row.category, top.number))
            elif (
                top.number
                and top.category
                and not (top is signoff_top and top.summary_category == SIGNOFF_CATEGORY)
            ):
                rows.append(cells(SummaryRow(category=top.category), top.category, top.number))
        for row in summary.rows:
            if not row.section and row.category == SIGNOFF_CATEGORY:
                number = (
                    signoff_top.number
                    if signoff_top is not None and signoff_top.summary_category == SIGNOFF_CATEGORY
                    else ""
                )
                rows.append(cells(row, row.category, number))
        total = cells(summary.total, "TOTAL", "")
        total[2:8] = [f"**{v}**" for v in total[2:8]]
        total[8] = (
            f"{STATUS_EMOJI[ItemStatus(_row_status(summary.total))]} "
            f"**{summary.total.percent_complete}% Complete**"
        )
        legend = [f"- {g.status_phrase(s)}" for s in STATUS_EMOJI]
        return (
            ["## Overall Status Summary", ""]
            + _table(_SUMMARY_HEADER, rows + [total])
            + ["", "**Legend:**"]
            + legend
            + ["", "---", ""]
        ), summary

    def render(self) -> str:
        release = self.release
        summary_lines, summary = self._summary_lines()
        title = release.project.split(" (")[0].strip() or release.project
        overall = g.status_phrase(_row_status(summary.total))
        meta = [
            ("Project", release.project),
            ("Release", f"{release.name} ({release.version})"),
            ("Sprint", release.sprint),
            ("Document Version", release.document_version),
            (
                "Go/No-Go Decision Date",
                release.go_no_go_label
                or (release.go_no_go_date.isoformat() if release.go_no_go_date else ""),
            ),
            ("Status", f"{overall} ({summary.total.percent_complete}% complete)"),
        ]
        lines = [f"# {title} Production Readiness Checklist", ""]
        lines += [f"**{key}:** {value}" for key, value in meta if value]
        lines += ["", "---", ""] + summary_lines
        for n, top in enumerate(self.subsections[None]):
            lines += (["---", ""] if n else []) + self._section_lines(top, 2)
        lines += self._fallback_lines()
        control = [
            ("Document Owner", release.owner_label),
            ("Approvers", release.approvers_label),
            ("Review Frequency", release.review_frequency),
            ("Next Review", release.next_review),
        ]
        if any(value for _, value in control):
            lines += ["---", "", "## Document Control", ""]
            lines += [f"**{key}:** {value}" for key, value in control if value]
        text = "\n".join(lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def release_export_markdown(release: Release) -> str:
    """The release as a Markdown checklist in the seed's grammar; importing it gives a release
    with the same JSON snapshot (``signoffs.exports.release_snapshot``)."""
    return _Export(release).render()
