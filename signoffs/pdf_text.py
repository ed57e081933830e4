"""Text for the decision-record PDF: fonts, styles, escaping and the status vocabulary.

``esc`` is the only way user text enters Paragraph markup: it XML-escapes ``& < >`` (so
``<b>``, ``<a href=…>`` or ``<img src=…>`` in a name or an item print literally and never become
bold text, links or embedded files) and keeps line breaks as ``<br/>``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Paragraph, Table, TableStyle

from .pdf_fonts import FONT, FONT_BOLD, covered, markup

BODY_SIZE = 7.5
PAD = 3  # left + right cell padding, each
GRID = colors.HexColor("#d1d5db")
HEAD_BG = colors.HexColor("#e5e7eb")
FAIL_BG = colors.HexColor("#fee2e2")
FAIL = colors.HexColor("#b91c1c")
PASS = colors.HexColor("#15803d")

# The status column: a DejaVu glyph + colour + word (the word survives black-and-white print);
# emoji typed in item text print through the fallback fonts (signoffs.pdf_fonts).
STATUS = {
    "complete": ("✔", "Complete", "#15803d"),
    "in_progress": ("●", "In progress", "#a16207"),
    "not_started": ("○", "Not started", "#4b5563"),
    "blocked": ("✘", "Blocked", "#b91c1c"),
    "at_risk": ("⚠", "At risk", "#c2410c"),
}
STATE = {"valid": "Valid", "stale": "Stale", "revoked": "Revoked"}


def status_text(status: str | None) -> str:
    glyph, word, _ = STATUS.get(status or "", ("", status or "—", "#374151"))
    return f"{glyph} {word}".strip()


def status_colour(status: str | None) -> colors.Color:
    return colors.HexColor(STATUS.get(status or "", ("", "", "#374151"))[2])


def esc(text: Any) -> str:
    """User text made safe for Paragraph markup: literal, whatever it contains; a character
    DejaVu lacks is set in a fallback font that has it (signoffs.pdf_fonts)."""
    if text is None:
        return ""
    return markup(str(text)).replace("\r\n", "\n").replace("\n", "<br/>")


@cache
def styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=BODY_SIZE, leading=BODY_SIZE * 1.25)
    return {
        "body": base,
        "bold": ParagraphStyle("bold", parent=base, fontName=FONT_BOLD),
        "small": ParagraphStyle("small", parent=base, fontSize=7, textColor="#4b5563"),
        "cell": ParagraphStyle("cell", parent=base, fontSize=BODY_SIZE),
        "title": ParagraphStyle("title", parent=base, fontName=FONT_BOLD, fontSize=22, leading=28),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=14, leading=18),
        "decision": ParagraphStyle(
            "decision", parent=base, fontName=FONT_BOLD, fontSize=16, leading=20
        ),
        "h1": ParagraphStyle(
            "h1", parent=base, fontName=FONT_BOLD, fontSize=14, leading=18, spaceAfter=4
        ),
        "h2": ParagraphStyle(
            "h2",
            parent=base,
            fontName=FONT_BOLD,
            fontSize=10.5,
            leading=14,
            spaceBefore=8,
            spaceAfter=3,
        ),
        "h3": ParagraphStyle(
            "h3", parent=base, fontName=FONT_BOLD, fontSize=9, leading=12, spaceBefore=8
        ),
    }


def p(text: Any, style: ParagraphStyle | None = None) -> Paragraph:
    """A paragraph of plain (user) text, escaped."""
    return Paragraph(esc(text), style or styles()["body"])


def fits(text: str, width: float, font: str = FONT, size: float = BODY_SIZE) -> bool:
    return "\n" not in text and stringWidth(text, font, size) <= width - 2 * PAD


INDENT = "\u00a0" * 3  # one nesting level of a child item


@cache
def _indented(style: str, depth: int) -> ParagraphStyle:
    width = stringWidth(INDENT, FONT, BODY_SIZE) * depth
    return ParagraphStyle(f"{style}-{depth}", parent=styles()[style], leftIndent=width)


def cell(
    text: Any, width: float, *, bold: bool = False, empty: str = "—", depth: int = 0
) -> str | Paragraph:
    """Plain text, never parsed as markup: one line when it fits, else broken into lines at
    spaces (several times cheaper than a Paragraph, PITFALLS); only a word wider than the
    column, or a character DejaVu lacks (set in a fallback font), makes a wrapping Paragraph
    of the escaped text. ``depth`` indents every line, wrapped ones too (a hanging indent)."""
    text = empty if text is None or text == "" else str(text)
    font = FONT_BOLD if bold else FONT
    style = "bold" if bold else "cell"
    if not covered(text, font):
        return Paragraph(esc(text), _indented(style, depth) if depth else styles()[style])
    prefix = INDENT * depth
    if fits(prefix + text, width, font):
        return prefix + text
    room = width - 2 * PAD - (stringWidth(prefix, font, BODY_SIZE) if depth else 0)
    lines = simpleSplit(text, font, BODY_SIZE, room)
    if all(stringWidth(line, font, BODY_SIZE) <= room for line in lines):
        return "\n".join(prefix + line for line in lines)
    return Paragraph(esc(text), _indented(style, depth) if depth else styles()[style])


def base_style(header: bool = True) -> list[tuple]:
    commands: list[tuple] = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), BODY_SIZE),
        ("LEADING", (0, 0), (-1, -1), BODY_SIZE * 1.25),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.4, GRID),
        ("LEFTPADDING", (0, 0), (-1, -1), PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        commands += [
            ("FONTNAME", (0, 0), (-1, 0), FONT_BOLD),
            ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ]
    return commands


def table(rows: list[list], widths: list[float], extra: list[tuple] | None = None) -> Table:
    """One table, fixed column widths, header row repeated on each page."""
    result = Table(rows, colWidths=widths, repeatRows=1)
    result.setStyle(TableStyle(base_style() + (extra or [])))
    return result


def kv_table(rows: list[tuple[str, Any]]) -> Table:
    """Label / value pairs (the cover, readiness)."""
    widths = [130.0, 380.0]
    data = [[label, cell(value, widths[1])] for label, value in rows]
    result = Table(data, colWidths=widths)
    result.setStyle(
        TableStyle(
            base_style(header=False)
            + [
                ("FONTNAME", (0, 0), (0, -1), FONT_BOLD),
                ("BACKGROUND", (0, 0), (0, -1), HEAD_BG),
            ]
        )
    )
    return result
