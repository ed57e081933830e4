"""The decision record's tables, each built from the stored document: one table per section with
fixed column widths, and a Paragraph only where a cell's text must wrap (PITFALLS: tables are
super-linear; 5,000 wrapped rows take seconds). Failing targets get a red row and "✘ FAIL"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from reportlab.lib import colors
from reportlab.platypus import Flowable, Paragraph, Table, TableStyle

from .pdf_text import (
    FAIL,
    FAIL_BG,
    FONT_BOLD,
    PASS,
    STATE,
    base_style,
    cell,
    esc,
    fits,
    p,
    status_colour,
    status_text,
    styles,
    table,
)

WIDTH = 510.0
OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "=": "="}
LEVELS = ("LOW", "MEDIUM", "HIGH")
WEIGHT = {"LOW": 1, "MEDIUM": 2, "HIGH": 3}


def _number(value: Any) -> str:
    return "" if value is None else str(value)


def target_text(target: dict | None) -> str:
    if not target:
        return ""
    return " ".join(
        part
        for part in (
            OPS.get(target.get("op"), target.get("op")),
            _number(target.get("value")),
            target.get("unit") or "",
        )
        if part
    )


def actual_text(actual: dict | None) -> str:
    if not actual:
        return ""
    measured = " ".join(
        part for part in (_number(actual.get("value")), actual.get("unit") or "") if part
    )
    return measured or actual.get("text") or ""


def result_text(meets: bool | None) -> str:
    return "—" if meets is None else ("✔ pass" if meets else "✘ FAIL")


def _walk(items: list[dict], depth: int = 0) -> Iterator[tuple[int, dict]]:
    for item in items:
        yield depth, item
        yield from _walk(item.get("children", []), depth + 1)


def _item_label(item: dict) -> str:
    return f"{item['key']}: {item['text']}" if item.get("key") else item["text"]


# ---------------------------------------------------------------- summary and readiness
def summary_table(summary: dict) -> Table:
    widths = [150, 36, 46, 46, 46, 40, 40, 30, 76]
    head = [
        "Category",
        "Total",
        "✔ Compl.",
        "● In prog.",
        "○ Not st.",
        "✘ Block.",
        "⚠ Risk",
        "%",
        "Points done",
    ]
    rows: list[list] = [head]
    for row in [*summary["rows"], summary["total"]]:
        rows.append(
            [
                cell(row["category"], widths[0]),
                row["total"],
                row["complete"],
                row["in_progress"],
                row["not_started"],
                row["blocked"],
                row["at_risk"],
                f"{row['percent_complete']}%",
                f"{row['points_complete']}/{row['points_total']} "
                f"({row['points_percent_complete']}%)",
            ]
        )
    return table(
        rows,
        widths,
        [("FONTNAME", (0, -1), (-1, -1), FONT_BOLD), ("ALIGN", (1, 0), (-1, -1), "RIGHT")],
    )


def _evaluation(result: dict) -> str:
    holds = result.get("holds")
    if result["kind"] == "go":
        return "✔ met" if holds else "✘ not met"
    if holds is None:
        return "⚠ not assessed"
    return "✘ fires" if holds else "✔ clear"


def criteria_table(criteria: list[dict]) -> Table | Paragraph:
    if not criteria:
        return p("No GO criteria or NO-GO blockers are defined.")
    widths = [52, 200, 66, 112, 80]
    rows: list[list] = [["Kind", "Criterion", "Evaluation", "Why", "Decided by"]]
    extra = []
    for index, result in enumerate(criteria, start=1):
        label = f"{result['group']} — {result['text']}" if result.get("group") else result["text"]
        rows.append(
            [
                "GO" if result["kind"] == "go" else "NO-GO",
                cell(label, widths[1]),
                _evaluation(result),
                cell(result.get("why"), widths[3]),
                cell(", ".join(result.get("decided_by") or []) or "—", widths[4]),
            ]
        )
        colour = FAIL if result.get("blocks_go") else PASS
        extra.append(("TEXTCOLOR", (2, index), (2, index), colour))
    return table(rows, widths, extra)


def failing_targets_table(sections: list[dict]) -> Table | None:
    widths = [40, 230, 80, 80, 80]
    rows: list[list] = [["Section", "Item", "Target", "Actual", "Owner"]]
    for section in sections:
        for _, item in _walk(section["items"]):
            if item.get("meets_target") is False:
                rows.append(
                    [
                        cell(section["number"], widths[0]),
                        cell(_item_label(item), widths[1]),
                        cell(target_text(item.get("target")), widths[2]),
                        cell(actual_text(item.get("actual")), widths[3]),
                        cell(item.get("owner_user") or item.get("owner"), widths[4]),
                    ]
                )
    if len(rows) == 1:
        return None
    return table(rows, widths, [("BACKGROUND", (0, 1), (-1, -1), FAIL_BG)])


# ---------------------------------------------------------------- the checklist
SECTION_WIDTHS = [60, 190, 62, 48, 50, 56, 44]


def section_table(section: dict) -> Table | None:
    """One table for a section's items, nested items indented (wrapped lines too)."""
    widths = SECTION_WIDTHS
    rows: list[list] = [["Status", "Item", "Owner", "Due", "Target", "Actual", "Result"]]
    extra: list[tuple] = []
    for index, (depth, item) in enumerate(_walk(section["items"]), start=1):
        meets = item.get("meets_target")
        rows.append(
            [
                status_text(item.get("status")),
                cell(_item_label(item), widths[1], depth=depth),
                cell(item.get("owner_user") or item.get("owner"), widths[2], empty=""),
                cell(item.get("due"), widths[3], empty=""),
                cell(target_text(item.get("target")), widths[4], empty=""),
                cell(actual_text(item.get("actual")), widths[5], empty=""),
                "" if meets is None else result_text(meets),
            ]
        )
        extra.append(("TEXTCOLOR", (0, index), (0, index), status_colour(item.get("status"))))
        if meets is False:
            extra += [
                ("BACKGROUND", (0, index), (-1, index), FAIL_BG),
                ("TEXTCOLOR", (6, index), (6, index), FAIL),
                ("FONTNAME", (6, index), (6, index), FONT_BOLD),
            ]
        elif meets:
            extra.append(("TEXTCOLOR", (6, index), (6, index), PASS))
    if len(rows) == 1:
        return None
    return table(rows, widths, extra)


def section_tables(sections: list[dict]) -> list[Flowable]:
    st = styles()
    out: list[Flowable] = []
    for section in sections:
        title = f"{section['number']} {section['title']}".strip()
        category = section.get("category")
        heading = esc(title) + (
            f' <font size="7" color="#6b7280">({esc(category)})</font>' if category else ""
        )
        out.append(Paragraph(heading, st["h3"] if section.get("parent") else st["h2"]))
        if section.get("note"):
            out.append(p(section["note"], st["small"]))
        body = section_table(section)
        if body is not None:
            out.append(body)
    return out


# ---------------------------------------------------------------- risks and actions
def _heat_colour(score: int) -> colors.Color:
    if score >= 6:
        return colors.HexColor("#fca5a5")
    if score >= 3:
        return colors.HexColor("#fde68a")
    return colors.HexColor("#bbf7d0")


def heat_map_table(risks: list[dict]) -> Table:
    """Probability (rows, high at the top) × impact (columns): each cell counts its risks and
    names them; colour by score (impact × probability, 1 … 9)."""
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    for risk in risks:
        cells[(risk["impact"], risk["probability"])].append(risk["key"])
    widths = [110, 133, 133, 134]
    rows: list[list] = [["Probability ↓ / Impact →", "Low", "Medium", "High"]]
    extra: list[tuple] = []
    for row_index, probability in enumerate(reversed(LEVELS), start=1):
        row: list = [probability.capitalize()]
        for col_index, impact in enumerate(LEVELS, start=1):
            keys = cells.get((impact, probability), [])
            row.append(cell(f"{len(keys)}: {', '.join(keys)}" if keys else "0", widths[col_index]))
            score = WEIGHT[impact] * WEIGHT[probability]
            extra.append(
                ("BACKGROUND", (col_index, row_index), (col_index, row_index), _heat_colour(score))
            )
        rows.append(row)
    extra.append(("FONTNAME", (0, 0), (0, -1), FONT_BOLD))
    result = Table(rows, colWidths=widths, rowHeights=[14, 28, 28, 28])
    result.setStyle(TableStyle(base_style() + extra))
    return result


def risk_table(risks: list[dict]) -> Table | Paragraph:
    if not risks:
        return p("The risk register is empty.")
    widths = [40, 140, 45, 50, 30, 60, 60, 85]
    rows: list[list] = [
        ["Key", "Risk", "Impact", "Probab.", "Score", "Status", "Owner", "Mitigation"]
    ]
    extra = []
    for index, risk in enumerate(sorted(risks, key=lambda r: (-r["score"], r["key"])), start=1):
        rows.append(
            [
                cell(risk["key"], widths[0]),
                cell(risk["title"], widths[1]),
                risk["impact"].capitalize(),
                risk["probability"].capitalize(),
                risk["score"],
                status_text(risk.get("status")),
                cell(risk.get("owner_user") or risk.get("owner"), widths[6]),
                cell(risk.get("mitigation"), widths[7]),
            ]
        )
        extra.append(("BACKGROUND", (4, index), (4, index), _heat_colour(risk["score"])))
        extra.append(("TEXTCOLOR", (5, index), (5, index), status_colour(risk.get("status"))))
    return table(rows, widths, extra)


def action_items_table(actions: list[dict]) -> Table | Paragraph:
    if not actions:
        return p("No action items.")
    widths = [40, 210, 70, 70, 60, 60]
    rows: list[list] = [["Key", "Action", "Owner", "Due", "Status", "Overdue"]]
    extra = []
    for index, action in enumerate(actions, start=1):
        due = action.get("due_date") or action.get("due") or "—"
        rows.append(
            [
                cell(action["key"], widths[0]),
                cell(action["action"], widths[1]),
                cell(action.get("owner_user") or action.get("owner"), widths[2]),
                cell(due, widths[3]),
                status_text(action.get("status")),
                "⚠ OVERDUE" if action.get("overdue") else "—",
            ]
        )
        extra.append(("TEXTCOLOR", (4, index), (4, index), status_colour(action.get("status"))))
        if action.get("overdue"):
            extra += [
                ("BACKGROUND", (0, index), (-1, index), FAIL_BG),
                ("TEXTCOLOR", (5, index), (5, index), FAIL),
                ("FONTNAME", (5, index), (5, index), FONT_BOLD),
            ]
    return table(rows, widths, extra)


# ---------------------------------------------------------------- signatures and audit
def _hash_cell(digest: str) -> Paragraph | str:
    if not digest:
        return "—"
    return Paragraph(
        "<br/>".join(esc(digest[i : i + 16]) for i in range(0, 64, 16)), styles()["cell"]
    )


def signoff_table(requirements: list[dict]) -> Table | Paragraph:
    if not requirements:
        return p("No sign-off requirements.")
    widths = [66, 70, 62, 48, 82, 88, 94]
    rows: list[list] = [
        ["Role", "Printed name", "Time (UTC)", "Meaning", "Comment", "Snapshot signed", "State"]
    ]
    extra = []
    for requirement in requirements:
        role = requirement["role"] + (" (final decision)" if requirement.get("final") else "")
        signatures = requirement.get("signatures") or []
        if not signatures:
            assignee = requirement.get("assignee") or "nobody assigned"
            rows.append(
                [cell(role, widths[0]), cell(assignee, widths[1]), "—", "—", "not signed", "—", "—"]
            )
            continue
        for signature in signatures:
            state = STATE.get(signature["state"], signature["state"])
            if signature["state"] != "valid" and signature.get("state_reason"):
                state = f"{state}: {signature['state_reason']}"
            rows.append(
                [
                    cell(role, widths[0]),
                    cell(signature["name"], widths[1]),
                    cell(signature["at_display"], widths[2]),
                    cell(signature["meaning_label"], widths[3]),
                    cell(signature.get("comment"), widths[4]),
                    _hash_cell(signature.get("snapshot_sha256", "")),
                    cell(state, widths[6]),
                ]
            )
            index = len(rows) - 1
            colour = PASS if signature["state"] == "valid" else FAIL
            extra.append(("TEXTCOLOR", (6, index), (6, index), colour))
    return table(rows, widths, extra)


def audit_table(changes: list[dict]) -> Table:
    widths = [62, 80, 128, 240]
    rows: list[list] = [["When (UTC)", "Who", "What", "Field: old → new"]]
    for change in changes:
        plain = "; ".join(f"{name}: {old} → {new}" for name, old, new in change["fields"])
        if not change.get("reason") and len(change["fields"]) <= 1 and fits(plain, widths[3]):
            rows.append(
                [
                    cell(change["when"], widths[0]),
                    cell(change["who"], widths[1]),
                    cell(f"{change['model']} {change['kind']}: {change['label']}", widths[2]),
                    plain or "—",
                ]
            )
            continue
        fields = "<br/>".join(
            f"<b>{esc(name)}</b>: {esc(old)} → {esc(new)}" for name, old, new in change["fields"]
        )
        if change.get("reason"):
            fields += ("<br/>" if fields else "") + f"<i>Reason:</i> {esc(change['reason'])}"
        rows.append(
            [
                cell(change["when"], widths[0]),
                cell(change["who"], widths[1]),
                cell(f"{change['model']} {change['kind']}: {change['label']}", widths[2]),
                Paragraph(fields or "—", styles()["cell"]),
            ]
        )
    return table(rows, widths)
