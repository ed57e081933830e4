"""The sealing certificate's SHA-256 fingerprint in the record's page footer.

The auditor compares it with the fingerprint the portal publishes (the admin's certificate page,
or a copy on paper) before trusting the seal; ``signoffs.verify`` checks that the printed one is
the certificate that actually sealed the file. A draft is never sealed and says so.
"""

from __future__ import annotations

from reportlab.lib import colors
from reportlab.lib.units import mm

from .cert_info import SEAL_LABEL
from .pdf_text import FONT

LINE_Y = 12 * mm  # above the page / fingerprint lines, below the body's bottom margin


def seal_line(certificate_sha256: str | None, *, draft: bool) -> str:
    """The footer line naming the certificate that seals the record."""
    if draft:
        return "Not sealed: a draft carries no seal."
    if not certificate_sha256:
        return f"{SEAL_LABEL} not recorded"
    return f"{SEAL_LABEL} {certificate_sha256}"


def draw_seal_line(canvas, text: str, *, x: float) -> None:
    """Draw the line at the foot of the current page (inside the page's saved state)."""
    canvas.setFillColor(colors.HexColor("#374151"))
    canvas.setFont(FONT, 7)
    canvas.drawString(x, LINE_Y, text)
