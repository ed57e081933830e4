"""The line grammar of a release checklist written like the seed (``fixtures/seed_checklist.md``).

Pure functions over one line or one cell of text: status symbols and words, targets and actuals,
fill-in fields, dates, table cells, mojibake repair. Nothing here touches the database; the
document structure (sections, nesting, tables) is assembled in ``checklist.importers`` and
written back by ``signoffs.markdown_export``, which both use these rules so that a checklist
exported from the portal imports to the same release.
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import ftfy

from .choices import STATUS_EMOJI, ItemKind, ItemStatus, TargetOperator

VS16 = "\ufe0f"  # emoji presentation selector: "⚠️" is "⚠" + VS16
BLANK = r"_{3,}"
BLANK_RE = re.compile(BLANK)
BLANK_TEXT = "_____"

# ---------------------------------------------------------------- mojibake


def _plausible(decoded: str) -> bool:
    """A repaired run must read as Latin letters or as symbols/emoji, not as stray marks."""
    return all(0xA0 <= ord(c) <= 0x24F or ord(c) >= 0x2000 for c in decoded)


def _fix_run(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        decoded = run.encode("mac_roman").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return run
    return decoded if _plausible(decoded) else run


def repair_mojibake(text: str) -> str:
    """UTF-8 that was read as Mac Roman (or Windows-1252) back to what was written.

    ``ftfy.fix_encoding`` repairs a text that is mojibake throughout; a text that mixes clean
    emoji with mojibake is left alone by ftfy, so each remaining non-ASCII run is then given a
    Mac Roman → UTF-8 round trip, kept only when it decodes to letters or symbols.
    ``ftfy.fix_text`` is not used: line by line it damages the seed.
    """
    text = ftfy.fix_encoding(text)
    return re.sub(r"[^\x00-\x7f]{2,}", _fix_run, text)


# ---------------------------------------------------------------- statuses

_WORDS: tuple[tuple[str, str], ...] = (
    (r"not[ -]started", ItemStatus.NOT_STARTED),
    (r"to[ -]?do", ItemStatus.NOT_STARTED),
    (r"pending", ItemStatus.NOT_STARTED),
    (r"in[ -]progress", ItemStatus.IN_PROGRESS),
    (r"ongoing", ItemStatus.IN_PROGRESS),
    (r"at[ -]risk", ItemStatus.AT_RISK),
    (r"needs attention", ItemStatus.AT_RISK),
    (r"completed?", ItemStatus.COMPLETE),
    (r"done", ItemStatus.COMPLETE),
    (r"blocked", ItemStatus.BLOCKED),
    (r"failed", ItemStatus.BLOCKED),
)
_WORD_RES = [(re.compile(rf"(?i)(?:\*\*)?{w}\b(?:\*\*)?"), str(s)) for w, s in _WORDS]
_SEPARATORS = " \t-–—:,;"


def status_from_words(text: str) -> tuple[str | None, int]:
    """The status a text starts with in words ("In Progress", "Blocked") and how long it is."""
    for regex, status in _WORD_RES:
        match = regex.match(text)
        if match:
            return status, match.end()
    return None, 0


@dataclass
class StatusVocabulary:
    """The legend's symbols (✅ 🟡 ⚪ ❌ ⚠️ by default) and any the document's legend adds."""

    symbols: dict[str, str] = field(
        default_factory=lambda: {e.replace(VS16, ""): str(s) for s, e in STATUS_EMOJI.items()}
    )

    def learn(self, legend_line: str) -> bool:
        """Read one legend bullet (``⚪ Not started``): its symbol now means that status."""
        match = re.match(r"^(\S+)\s+(.+)$", legend_line.strip())
        if not match or match.group(1).isalnum():
            return False
        status, _ = status_from_words(match.group(2))
        if status is None:
            return False
        self.symbols[match.group(1).replace(VS16, "")] = status
        return True

    def leading_symbol(self, text: str) -> tuple[str | None, str]:
        """The status of a legend symbol at the start of ``text``, and the text after it."""
        for symbol in sorted(self.symbols, key=len, reverse=True):
            if text.startswith(symbol):
                rest = text[len(symbol) :]
                rest = rest[1:] if rest.startswith(VS16) else rest
                return self.symbols[symbol], rest.lstrip()
        return None, text

    def starts_with_symbol(self, text: str) -> bool:
        return self.leading_symbol(text)[0] is not None

    def split(self, text: str) -> tuple[str | None, str]:
        """``(status, rest)`` for a status written as a symbol, words or both.

        ``✅ THIS DOCUMENT`` → complete, "THIS DOCUMENT"; ``⚪ Not Started`` → not started, "";
        ``In Progress`` → in progress, "". After a symbol, words are consumed only when they
        name the same status, so a note that starts with another status word is kept whole.
        Unknown text gives ``(None, text)``.
        """
        text = text.strip()
        status, rest = self.leading_symbol(text)
        if status is not None:
            worded, length = status_from_words(rest)
            if worded == status:
                rest = rest[length:]
        else:
            status, length = status_from_words(text)
            rest = text[length:] if status else text
        return status, rest.strip().lstrip(_SEPARATORS).strip() if status else text


def status_phrase(status: str) -> str:
    """How the exporter writes a status: symbol and label, e.g. ``🟡 In progress``."""
    return f"{STATUS_EMOJI[ItemStatus(status)]} {ItemStatus(status).label}"


# ---------------------------------------------------------------- numbers, targets, actuals

_NUMBER = r"[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-−]?\.\d+"
_SUFFIX = {"k": Decimal(1000), "K": Decimal(1000), "M": Decimal(1_000_000)}
_OPERATORS = {"<": "<", "<=": "<=", "≤": "<=", ">": ">", ">=": ">=", "≥": ">=", "=": "=", "==": "="}
_TARGET_RE = re.compile(
    rf"^\s*(?P<op><=|>=|==|≤|≥|<|>|=)?\s*(?P<num>{_NUMBER})(?P<suffix>[kKM](?![A-Za-z]))?"
    r"\s*(?P<unit>.*?)\s*$"
)
_QUANTITY_RE = re.compile(
    rf"^\s*(?P<num>{_NUMBER})(?P<suffix>[kKM](?![A-Za-z]))?\s*(?P<unit>.*?)\s*$"
)
_BAD_UNIT = re.compile(r"[\d<>=≤≥|*_]")


def _number(text: str, suffix: str | None) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", "").replace("−", "-"))
    except InvalidOperation:
        return None
    return value * _SUFFIX[suffix] if suffix else value


@dataclass(frozen=True)
class Target:
    op: str
    value: Decimal
    unit: str


def parse_target(text: str) -> Target | None:
    """A target as written in bold: ``<200ms``, ``≥99.9%``, ``>50K rows/sec``, ``72,000
    events/sec``. Thousands commas and K/M suffixes are read; a bare number means "at most"
    when it is 0 (``**0**`` → ``<= 0``) and "at least" otherwise. None when not a target."""
    match = _TARGET_RE.match(text)
    if not match or _BAD_UNIT.search(match.group("unit")):
        return None
    value = _number(match.group("num"), match.group("suffix"))
    if value is None:
        return None
    op = _OPERATORS[match.group("op")] if match.group("op") else ("<=" if value == 0 else ">=")
    return Target(op=op, value=value, unit=match.group("unit"))


@dataclass(frozen=True)
class Actual:
    value: Decimal | None = None
    text: str = ""
    unit: str = ""


def parse_actual(text: str) -> Actual:
    """What follows ``Actual:``. Blanks (``_____ ms``) are no value yet, keeping the unit written
    after them; a number (``23,400 msgs/sec``, ``1.2K rows/sec``) is a value and unit; anything
    else is kept as text."""
    text = text.strip()
    blank = re.match(r"^\$?(?:\*\*)?_{2,}(?:\*\*)?\s*(?P<unit>.*)$", text)
    if blank:
        return Actual(unit=blank.group("unit").strip())
    quantity = _QUANTITY_RE.match(text)
    if quantity and not _BAD_UNIT.search(quantity.group("unit")):
        value = _number(quantity.group("num"), quantity.group("suffix"))
        if value is not None:
            return Actual(value=value, unit=quantity.group("unit"))
    return Actual(text=text)


def operator_symbol(op: str) -> str:
    """How the exporter writes an operator: ``<``, ``≤``, ``>``, ``≥``, ``=``."""
    return TargetOperator(op).label


# ---------------------------------------------------------------- item lines

_TASK_RE = re.compile(
    r"^\*\*(?P<key>[A-Z][A-Z0-9]*-\d+[A-Za-z]?)\s*:\s*(?P<title>[^*]+?)\s*\*\*\s*"
    r"(?:\((?P<points>\d+)\s*(?:story\s+)?points?\))?\s*(?P<tail>.*)$"
)
_SLOT_RE = re.compile(
    r"^(?P<prompt>.*\S)\s*\|\s*(?P<label>[A-Za-z][A-Za-z0-9 ]{0,40}?)\s*:(?P<value>.*)$"
)
_METRIC_RE = re.compile(r"^(?P<label>.+?):\s*\*\*(?P<target>[^*]+)\*\*\s*(?P<note>.*)$")
_FIELD_RE = re.compile(
    rf"^(?:\*\*)?(?P<label>[^:*_|]+?)\s*(?::\*\*|\*\*:|:)\s*(?:\*\*)?{BLANK}(?:\*\*)?"
    r"(?:\s+(?P<rest>.*))?$"
)
_LABEL_RE = re.compile(r"^(?P<label>[^:*_|]+?):\s+(?P<rest>.+)$")
_GROUP_RE = re.compile(r"^\*\*(?P<title>[^*]+?)\*\*\s*(?P<rest>.*)$")
FIELD_VALUE_LABEL = "Value"


def _balanced(text: str) -> bool:
    return text.count("(") == text.count(")")


@dataclass
class ItemFacts:
    """What one checkbox line says, before it is placed in the tree."""

    kind: str
    text: str
    status: str | None = None  # None: follow the checkbox
    key: str = ""
    points: int | None = None
    note: str = ""
    target: Target | None = None
    actual_label: str = ""
    actual: Actual = field(default_factory=Actual)


def _field(prompt: str, slot: tuple[str, str] | None) -> ItemFacts:
    """A fill-in field is a prompt and one labelled value slot.

    * ``label: _____ rest`` → text "label", note "rest" (``**label:** ___`` and ``label:
      **___**`` too); any other prompt with blanks is kept whole as the text
      (``Auto-scaling configured (min: ___, max: ___)``).
    * ``prompt | Status: _____`` → the slot is labelled "Status"; ``label: rest | Status: _``
      gives text "label" and note "rest".
    * A prompt whose blanks are its slot has the implicit label "Value". A filled value is kept
      in ``actual_text`` and written back as ``label: _____ rest | Value: <value>``.
    """
    if slot is not None:
        label, value = slot
        actual = parse_actual(value)
        if actual.value is not None:  # a field's value is text, as written
            actual = Actual(text=value.strip())
    else:
        label, actual = FIELD_VALUE_LABEL, Actual()
    inline = _FIELD_RE.match(prompt)
    if inline and _balanced(inline.group("label")):
        text, note = inline.group("label").strip(), (inline.group("rest") or "").strip()
    elif BLANK_RE.search(prompt):
        text, note = prompt, ""
    else:
        split = _LABEL_RE.match(prompt)
        if split and _balanced(split.group("label")):
            text, note = split.group("label").strip(), split.group("rest").strip()
        else:
            text, note = prompt, ""
    return ItemFacts(kind=ItemKind.FIELD, text=text, note=note, actual_label=label, actual=actual)


def classify_item(text: str, vocabulary: StatusVocabulary) -> ItemFacts:
    """The kind and facts of one checkbox line's text (after ``[ ]``), in this order:

    1. task ``**KEY-123: Title** (N points) - <status> <note>``; status by symbol or words;
    2. a leading legend symbol on any other item is its status (``🟡 **Group**``);
    3. metric ``label: **<target>** note [| Label: actual]``; an empty target unit takes the
       actual's unit when the note starts with that unit (``**0** queries >2s | Actual: _____
       queries`` → target ``<= 0 queries``), otherwise it stays empty;
    4. field: a ``| Label: value`` slot or blanks (see ``_field``);
    5. group: a bold-only item, ``**Title** (if applicable)`` (the rest is its note);
    6. anything else is a check, its text kept as written.
    """
    text = text.strip()
    task = _TASK_RE.match(text)
    if task:
        tail = task.group("tail").strip().lstrip(_SEPARATORS).strip()
        status, note = vocabulary.split(tail) if tail else (None, "")
        return ItemFacts(
            kind=ItemKind.TASK,
            text=task.group("title").strip(),
            key=task.group("key"),
            points=int(task.group("points")) if task.group("points") else None,
            status=status,
            note=note,
        )
    status, body = vocabulary.leading_symbol(text)
    slot_match = _SLOT_RE.match(body)
    slot = (slot_match.group("label").strip(), slot_match.group("value")) if slot_match else None
    prompt = slot_match.group("prompt").strip() if slot_match else body
    metric = _METRIC_RE.match(prompt)
    target = parse_target(metric.group("target")) if metric else None
    if metric and target is not None:
        actual = parse_actual(slot[1]) if slot else Actual()
        note = metric.group("note").strip()
        first_word = note.split()[0].lower() if note else ""
        if not target.unit and actual.unit and first_word == actual.unit.lower():
            target = Target(op=target.op, value=target.value, unit=actual.unit)
        return ItemFacts(
            kind=ItemKind.METRIC,
            text=metric.group("label").strip(),
            status=status,
            note=note,
            target=target,
            actual_label=slot[0] if slot else "",
            actual=actual,
        )
    if slot or BLANK_RE.search(prompt):
        facts = _field(prompt, slot)
        facts.status = status
        return facts
    group = _GROUP_RE.match(body)
    if group and not group.group("title").rstrip().endswith(":"):
        return ItemFacts(
            kind=ItemKind.GROUP,
            text=group.group("title").strip(),
            status=status,
            note=group.group("rest").strip(),
        )
    return ItemFacts(kind=ItemKind.CHECK, text=body, status=status)


# ---------------------------------------------------------------- sign-off blocks, criteria

SIGNOFF_RE = re.compile(
    r"^\*\*(?P<role>.+?)\s+(?:Approval|Sign-?off)(?P<rest>[^*]*)\*\*(?P<after>.*)$", re.I
)
SIGNATURE_RE = re.compile(r"^(?:\*\*)?Signature\s*:", re.I)
DECISION_RE = re.compile(r"\bDECISION\s*:", re.I)
FINAL_RE = re.compile(r"final\s+go\s*/?\s*no[-\s]?go", re.I)
DECISION_LINE = "**DECISION: [ ] GO TO PRODUCTION  [ ] DEFER DEPLOYMENT**"
SIGNATURE_LINE = "Signature: _______________ Date: _______"
_TIERS = (
    (re.compile(r"\btechnical\b", re.I), "technical"),
    (re.compile(r"\boperation(?:s|al)?\b", re.I), "operations"),
    (re.compile(r"\bexecutive\b", re.I), "executive"),
)


def tier_from_title(title: str) -> str | None:
    """The sign-off tier a section title names: Technical, Operations or Executive."""
    for regex, tier in _TIERS:
        if regex.search(title):
            return tier
    return None


CRITERIA_HEADING_RE = re.compile(r"^(?P<kind>NO[-\s]?GO|GO)\s+Criteria\b", re.I)
CRITERIA_GROUP_RE = re.compile(r"^(?:\S+\s+)?\*\*(?P<group>[^*]+?):?\*\*\s*:?\s*$")

# ---------------------------------------------------------------- dates, cells, levels

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ISO_RE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_MDY_RE = re.compile(rf"(?i)\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b")
_DMY_RE = re.compile(rf"(?i)\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH})\.?,?\s+(\d{{4}})\b")


def find_date(text: str) -> datetime.date | None:
    """A real calendar date written in the text (2025-12-03, December 3, 2025, 3 Dec 2025);
    None for "Sprint 18 Day 14" or an impossible date."""
    for regex, order in ((_ISO_RE, "ymd"), (_MDY_RE, "mdy"), (_DMY_RE, "dmy")):
        match = regex.search(text)
        if not match:
            continue
        parts = dict(zip(order, match.groups(), strict=True))
        month = parts["m"] if parts["m"].isdigit() else _MONTHS[parts["m"].lower()]
        try:
            return datetime.date(int(parts["y"]), int(month), int(parts["d"]))
        except ValueError:
            return None
    return None


def strip_bold(text: str) -> str:
    text = text.strip()
    while len(text) >= 4 and text.startswith("**") and text.endswith("**"):
        text = text[2:-2].strip()
    return text


def split_row(line: str) -> list[str]:
    """The cells of a table row; ``\\|`` is a literal bar."""
    row = line.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    cells = re.split(r"(?<!\\)\|", row)
    return [cell.strip().replace("\\|", "|") for cell in cells]


def escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def header_key(text: str) -> str:
    return " ".join(strip_bold(text).lower().split())


LEVEL_RE = re.compile(r"(?i)\b(high|medium|med|low)\b")


def parse_level(text: str) -> str | None:
    """HIGH, MEDIUM or LOW as a risk register writes it (any case, "Med" too)."""
    match = LEVEL_RE.search(text)
    if not match:
        return None
    word = match.group(1).upper()
    return "MEDIUM" if word == "MED" else word
