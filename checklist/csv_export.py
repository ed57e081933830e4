"""The release's checklist items as a spreadsheet (CSV), for the product manager and the auditor.

One row per item, in checklist order (sections in order, each item followed by the items under
it), with the columns the checklist and the auditor use. Written with the csv module (quoting
as RFC 4180), UTF-8 with a byte-order mark so spreadsheet applications read the text as UTF-8.

Formula injection (OWASP "CSV Injection"): a spreadsheet runs a cell that begins with ``=``,
``+``, ``-`` or ``@`` (and some also after a leading tab or carriage return) as a formula, e.g.
``=HYPERLINK(...)`` that sends data away. Every cell that begins with one of these is prefixed
with a single quote, so it is shown as the text it is. This applies to every cell, numbers
included: a negative actual such as ``-5 dB`` then reads as text ``'-5 dB``. Telling a safe
negative number from ``-2+3`` is possible but the gain is small and a mistake there is a
formula, so there is no exception.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator

from .choices import ItemKind, ItemStatus
from .models import Item, Release, Section

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
COLUMNS = (
    "Section",
    "Section title",
    "Level",
    "Key",
    "Item",
    "Kind",
    "Status",
    "Owner",
    "Due",
    "Target",
    "Actual",
    "Target met",
    "Story points",
    "Evidence link",
    "Evidence note",
    "Note",
)
TARGET_MET = {True: "yes", False: "no", None: ""}


def csv_cell(value: object) -> str:
    """The value as a cell's text, neutralised when a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _owner(item: Item) -> str:
    if item.owner_id is not None:
        return item.owner.get_full_name() or item.owner.get_username()
    return item.owner_label


def _row(section: Section, item: Item, level: int) -> list[str]:
    values = (
        section.number,
        section.title,
        level,
        item.key,
        item.text,
        ItemKind(item.kind).label,
        ItemStatus(item.status).label,
        _owner(item),
        item.due_date.isoformat() if item.due_date else "",
        item.target_display,
        item.actual_display,
        TARGET_MET[item.target_met],
        item.points,
        item.evidence_link,
        item.evidence_note,
        item.note,
    )
    return [csv_cell(value) for value in values]


def _rows(release: Release) -> Iterator[list[str]]:
    """Every item in checklist order; two queries whatever the release's size."""
    items = Item.objects.filter(release=release).select_related("owner").order_by("order", "pk")
    children: dict[int | None, list[Item]] = defaultdict(list)
    roots: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        if item.parent_id is None:
            roots[item.section_id].append(item)
        else:
            children[item.parent_id].append(item)
    for section in Section.objects.filter(release=release).order_by("order", "pk"):
        stack = [(item, 1) for item in reversed(roots.get(section.pk, []))]
        while stack:
            item, level = stack.pop()
            yield _row(section, item, level)
            stack.extend((child, level + 1) for child in reversed(children.get(item.pk, [])))


def release_items_csv(release: Release) -> str:
    """The release's items as CSV text (with the BOM); encode it as UTF-8."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(_rows(release))
    return buffer.getvalue()
