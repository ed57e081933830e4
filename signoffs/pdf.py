"""The decision record as a PDF (ReportLab), rendered only from the record's stored document (the
frozen snapshot JSON, see signoffs.records), so the same record renders to the same bytes
(``invariant=1``) before it is sealed.

Rules an auditor can rely on:
- every user string is XML-escaped before it reaches Paragraph markup (``esc``); table cells that
  fit on one line are plain strings, which ReportLab never parses as markup;
- text is set in embedded DejaVu Sans, and each character it lacks in an embedded fallback font
  that has it (signoffs.pdf_fonts: symbols, emoji in monochrome, CJK), so every character
  extracts exactly as stored; statuses are glyph + colour + word;
- page 1 is the decision and the signature manifest (§11.50, signoffs.pdf_manifest); the PDF's
  creation date is the decision's time;
- every page carries "Page N of M", the release and the record's fingerprint; a draft carries a
  DRAFT watermark on every page.
"""

from __future__ import annotations

import datetime
import io
from functools import cache
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as pdfcanvas
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
)

from .pdf_fonts import draw_runs, register_fallbacks
from .pdf_manifest import manifest
from .pdf_seal_info import draw_seal_line, seal_line
from .pdf_tables import (
    action_items_table,
    audit_table,
    criteria_table,
    failing_targets_table,
    heat_map_table,
    risk_table,
    section_tables,
    signoff_table,
    summary_table,
)
from .pdf_text import FONT, FONT_BOLD, esc, kv_table, p, styles

FONT_DIRS = (
    Path(__file__).resolve().parent / "fonts",
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian's fonts-dejavu-core
)
PAGE = A4
MARGIN = 15 * mm


@cache
def register_fonts() -> None:
    """Embed DejaVu Sans (vendored in signoffs/fonts, else Debian's fonts-dejavu-core)."""
    for directory in FONT_DIRS:
        regular, bold = directory / "DejaVuSans.ttf", directory / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            pdfmetrics.registerFont(TTFont(FONT, str(regular)))
            pdfmetrics.registerFont(TTFont(FONT_BOLD, str(bold)))
            pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD)
            register_fallbacks()
            return
    raise ImproperlyConfigured(
        "DejaVu Sans is missing: the decision record needs DejaVuSans.ttf and "
        "DejaVuSans-Bold.ttf in signoffs/fonts/ (or the fonts-dejavu-core package)."
    )


def _canvas_class(footer: str, fingerprint: str, draft: bool, certificate: str = "") -> type:
    """A canvas that holds its pages until the end, so each can say "Page N of M"."""

    class RecordCanvas(pdfcanvas.Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:  # noqa: N802 (ReportLab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self._decorate(number, total)
                super().showPage()
            super().save()

        def _decorate(self, number: int, total: int) -> None:
            width, _ = PAGE
            self.saveState()
            if draft:
                self.setFont(FONT_BOLD, 110)
                self.setFillColor(colors.Color(0.85, 0.1, 0.1, alpha=0.13))
                self.translate(width / 2, PAGE[1] / 2)
                self.rotate(45)
                self.drawCentredString(0, -40, "DRAFT")
                self.rotate(-45)
                self.translate(-width / 2, -PAGE[1] / 2)
            self.setFillColor(colors.HexColor("#374151"))
            self.setFont(FONT, 7)
            draw_runs(self, MARGIN, 9 * mm, footer, FONT, 7)
            self.setFont(FONT, 7)
            self.drawRightString(width - MARGIN, 9 * mm, f"Page {number} of {total}")
            self.drawString(MARGIN, 6 * mm, f"Fingerprint (SHA-256): {fingerprint}")
            draw_seal_line(self, seal_line(certificate, draft=draft), x=MARGIN)
            if draft:
                self.setFont(FONT_BOLD, 7)
                self.setFillColor(colors.HexColor("#b91c1c"))
                self.drawRightString(width - MARGIN, 6 * mm, "DRAFT — not a decision record")
            self.restoreState()

    return RecordCanvas


def chain_head_text(head: dict) -> str:
    """'link 42, MAC 3f…': how the record prints (and verify_record names) the chain head."""
    return f"link {head['seq']}, MAC {head['mac']}"


def _release_label(release: dict) -> str:
    name = release.get("name") or ""
    version = release.get("version") or ""
    return f"{name} ({version})" if name else version


def _decision_label(decision: dict | None) -> str:
    if not decision:
        return "none yet"
    return decision["meaning_label"]


def _cover(document: dict, draft: bool) -> list:
    st = styles()
    release = document["snapshot"]["release"]
    decision = document.get("decision")
    title = "DRAFT decision record" if draft else "Decision record"
    rows: list[tuple[str, Any]] = [
        ("Project", release.get("project") or "—"),
        ("Release", release.get("name") or "—"),
        ("Version", release.get("version") or "—"),
        ("Sprint", release.get("sprint") or "—"),
        ("Document version", release.get("document_version") or "—"),
        ("Release status", document.get("release_status_label") or release.get("status")),
        ("Decision", _decision_label(decision)),
    ]
    if decision:
        rows += [
            ("Recorded by", f"{decision['name']} ({decision['username']}), {decision['role']}"),
            ("Recorded at", decision["at_display"]),
            ("Reason / comment", decision.get("comment") or "—"),
        ]
    else:
        rows.append(("Draft taken at", document["as_of_display"]))
    rows += [
        ("Review opened", document.get("review_opened_display") or "not opened"),
        ("Release snapshot SHA-256", document.get("release_snapshot_sha256", "—")),
        ("Fingerprint", document["fingerprint"]),
    ]
    head = document.get("audit_chain_head")  # format 2 on; older records have none
    if head:
        rows.append(("Audit chain head at decision", chain_head_text(head)))
    decision_colour = {"go": "#15803d", "defer": "#b45309"}.get(
        (decision or {}).get("meaning", ""), "#374151"
    )
    explanation = (
        "The fingerprint is the SHA-256 of this record's canonical JSON snapshot (sorted keys, "
        "no insignificant white space, UTF-8), stored with the decision. "
        "`manage.py verify_record` recomputes it; see the auditor's guide."
    )
    if head:
        explanation += (
            " The audit chain head is the last link of the portal's keyed audit hash chain once "
            "everything up to the decision was linked; `verify_record` and `verify_audit "
            "--records` check that the chain still holds that link with that MAC."
        )
    return [
        Paragraph(esc(title), st["title"]),
        Paragraph(esc(_release_label(release)), st["subtitle"]),
        Spacer(1, 4 * mm),
        Paragraph(
            f'Decision: <font color="{decision_colour}"><b>{esc(_decision_label(decision))}'
            "</b></font>",
            st["decision"],
        ),
        *manifest(document),  # §11.50 on page 1, right after the decision
        Paragraph("Record details", st["h2"]),
        kv_table(rows),
        Spacer(1, 4 * mm),
        p(explanation, st["small"]),
    ]


def _readiness(document: dict) -> list:
    st = styles()
    readiness = document.get("readiness", {})
    total = document["snapshot"]["summary"]["total"]
    rows = [
        (
            "Items complete",
            f"{total['complete']} of {total['total']} ({total['percent_complete']} %)",
        ),
        (
            "Story points complete",
            f"{total['points_complete']} of {total['points_total']} "
            f"({total['points_percent_complete']} %)",
        ),
        ("Failing targets", str(readiness.get("failing_targets", 0))),
        ("Overdue action items", str(readiness.get("overdue_actions", 0))),
        ("Open high risks", str(readiness.get("open_high_risks", 0))),
    ]
    out = [Paragraph("Readiness", st["h2"]), kv_table(rows)]
    refusals = readiness.get("go_refusals", [])
    out.append(Spacer(1, 2 * mm))
    if refusals:
        out.append(p(f"Why GO could not be recorded at this point ({len(refusals)}):", st["bold"]))
        out.extend(p(f"• {reason}", st["body"]) for reason in refusals)
    else:
        out.append(p("Nothing blocked a GO decision at this point.", st["body"]))
    return out


def _story(document: dict, draft: bool) -> list:
    st = styles()
    snapshot = document["snapshot"]
    story: list = _cover(document, draft)
    story += [PageBreak(), Paragraph("Status summary", st["h1"])]
    story.append(p("Computed from the items (the document's own table is not used).", st["small"]))
    story.append(summary_table(snapshot["summary"]))
    story += _readiness(document)
    story.append(Paragraph("GO criteria and NO-GO blockers", st["h2"]))
    story.append(criteria_table(document.get("criteria", [])))
    failing = failing_targets_table(snapshot["sections"])
    story.append(Paragraph("Failing targets", st["h2"]))
    story.append(failing if failing is not None else p("No target is failing.", st["body"]))

    story += [PageBreak(), Paragraph("Checklist", st["h1"])]
    story += section_tables(snapshot["sections"])

    story += [PageBreak(), Paragraph("Risk register", st["h1"])]
    heading = Paragraph("Heat map: impact × probability", st["h2"])
    story.append(KeepTogether([heading, heat_map_table(snapshot["risks"])]))
    story.append(Spacer(1, 3 * mm))
    story.append(risk_table(snapshot["risks"]))
    story.append(Paragraph("Action items", st["h2"]))
    story.append(action_items_table(snapshot["action_items"]))

    story += [PageBreak(), Paragraph("Sign-off matrix", st["h1"])]
    story.append(
        p(
            "Each electronic signature with the signer's printed name, the time (UTC), its "
            "meaning, the comment, the SHA-256 of the release snapshot signed, and its state.",
            st["small"],
        )
    )
    story.append(signoff_table(document.get("signoffs", [])))

    story += [Paragraph("Audit excerpt", st["h1"])]
    opened = document.get("review_opened_display") or "the start (no review opened)"
    audit = document.get("audit", [])
    story.append(
        p(
            f"Changes to the release's content since the review was opened ({opened}): "
            f"{len(audit)} of {document.get('audit_total', len(audit))}, newest first.",
            st["small"],
        )
    )
    story.append(audit_table(audit) if audit else p("No changes.", st["body"]))
    return story


def _dated(document: dict) -> Any:
    """Sets the PDF's CreationDate and ModDate to the decision's time (a draft's: when it was
    taken), so the same record still renders to the same bytes."""
    at = (document.get("decision") or {}).get("at") or document["as_of"]
    moment = datetime.datetime.fromisoformat(at).astimezone(datetime.UTC)
    stamp = f"D:{moment:%Y%m%d%H%M%S}+00'00'"

    def on_first_page(canvas: pdfcanvas.Canvas, _doc: Any) -> None:
        canvas.setDateFormatter(lambda *_: stamp)

    return on_first_page


def render_record_pdf(document: dict[str, Any], *, draft: bool = False) -> bytes:
    """The record's PDF, unsealed. The same document renders to the same bytes."""
    register_fonts()
    release = document["snapshot"]["release"]
    label = _release_label(release)
    project = release.get("project") or ""
    footer = f"{project} · {label}" + (" · DRAFT" if draft else " · Decision record")
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 6 * mm,
        title=f"{'DRAFT ' if draft else ''}Decision record {label}",
        author="dCMMS Release Portal",
        subject=f"fingerprint {document['fingerprint']}",
        keywords=[document["fingerprint"]],
        creator="dCMMS Release Portal",
        invariant=1,
        initialFontName=FONT,
        initialFontSize=7,
    )
    doc.build(
        _story(document, draft),
        onFirstPage=_dated(document),
        canvasmaker=_canvas_class(
            footer, document["fingerprint"], draft, document.get("seal_certificate_sha256", "")
        ),
    )
    return buffer.getvalue()


__all__ = ["chain_head_text", "register_fonts", "render_record_pdf"]
