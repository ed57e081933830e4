"""Font fallback for the decision record: every character is drawn in a font that has it.

DejaVu Sans sets the text; a character it lacks is drawn in the first fallback font that has it
(split into runs by font), so the status symbols teams type (✅ 🟡 ❌ 🔴 🟢 ⭕), CJK and Hangul
in names print and extract as typed instead of as empty boxes. The fallbacks are vendored in
signoffs/fonts with their licences (all monochrome: ReportLab cannot draw colour emoji):

- Noto Sans Symbols 2 (OFL-1.1): geometric shapes and the coloured circles and squares (🟡 🟢);
- WenQuanYi Micro Hei (Apache-2.0): Chinese, Japanese and Korean;
- Symbola 2.60 (free for any use): the remaining emoji and dingbats (✅ ❌ 🔴).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from django.core.exceptions import ImproperlyConfigured
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.ttfonts import TTFont

FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
FONT_DIR = Path(__file__).resolve().parent / "fonts"
# name, file, index in a collection; tried in this order after DejaVu Sans.
FALLBACKS = (
    ("NotoSansSymbols2", "NotoSansSymbols2-Regular.ttf", 0),
    ("WenQuanYiMicroHei", "wqy-microhei.ttc", 0),
    ("Symbola", "Symbola.ttf", 0),
)
FALLBACK_NAMES = tuple(name for name, _, _ in FALLBACKS)
# Line breaks and tabs never reach a glyph lookup.
CONTROL = frozenset(map(ord, "\n\r\t"))


ASTRAL = re.compile(r"^(<[0-9A-F]{2}>) <([0-9A-F]{5,6})>$", re.MULTILINE)
_reportlab_to_unicode = ttfonts.makeToUnicodeCMap


def _to_unicode_cmap(fontname: str, subset: list[int]) -> str:
    """ReportLab's ToUnicode CMap, with code points above U+FFFF written as UTF-16BE (a
    surrogate pair), as the PDF format wants: ReportLab writes them as odd-length hex, which
    readers cannot map back, so 🟡 🔴 🟢 would print but extract as nothing."""

    def utf16(match: re.Match) -> str:
        encoded = chr(int(match.group(2), 16)).encode("utf-16-be").hex().upper()
        return f"{match.group(1)} <{encoded}>"

    return ASTRAL.sub(utf16, _reportlab_to_unicode(fontname, subset))


def register_fallbacks() -> None:
    """Embed the fallback fonts (each its own family, so <b> inside a run keeps the font)."""
    ttfonts.makeToUnicodeCMap = _to_unicode_cmap
    for name, filename, index in FALLBACKS:
        if name in pdfmetrics.getRegisteredFontNames():
            continue
        path = FONT_DIR / filename
        if not path.exists():
            raise ImproperlyConfigured(
                f"The decision record's fallback font {filename} is missing from signoffs/fonts/."
            )
        pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=index))
        pdfmetrics.registerFontFamily(name, normal=name, bold=name, italic=name, boldItalic=name)


@cache
def coverage(font: str) -> frozenset[int]:
    """The code points a registered font has a glyph for (its cmap)."""
    return frozenset(pdfmetrics.getFont(font).face.charToGlyph) | CONTROL


@cache
def _both() -> frozenset[int]:
    return coverage(FONT) & coverage(FONT_BOLD)


@cache
def font_for(char: str, font: str = FONT) -> str:
    """The font that draws ``char``: ``font`` when it has it, else the first that does."""
    code = ord(char)
    if code in coverage(font):
        return font
    for name in (FONT, *FALLBACK_NAMES):
        if code in coverage(name):
            return name
    return font  # nothing has it: tests find it (every character is checked against the cmap)


def covered(text: str, font: str = FONT) -> bool:
    """True when ``font`` alone draws every character of ``text`` (the cheap, common case)."""
    return text.isascii() or all(ord(char) in coverage(font) for char in text)


def runs(text: str, font: str = FONT) -> list[tuple[str, str]]:
    """``text`` split into (font, chunk) runs, each chunk drawn by its font."""
    if covered(text, font):
        return [(font, text)] if text else []
    out: list[tuple[str, list[str]]] = []
    for char in text:
        name = font_for(char, font)
        if out and out[-1][0] == name:
            out[-1][1].append(char)
        else:
            out.append((name, [char]))
    return [(name, "".join(chars)) for name, chars in out]


def markup(text: str) -> str:
    """``text`` XML-escaped for Paragraph markup, each run another font needs in <font>.
    Checked against both weights of DejaVu, so bold text falls back the same way."""
    if text.isascii() or all(ord(char) in _both() for char in text):
        return escape(text)
    out: list[tuple[str | None, list[str]]] = []
    for char in text:
        code = ord(char)
        name = None
        if code not in _both():
            name = next((n for n in (FONT, *FALLBACK_NAMES) if code in coverage(n)), None)
        if out and out[-1][0] == name:
            out[-1][1].append(char)
        else:
            out.append((name, [char]))
    return "".join(
        f'<font name="{name}">{escape("".join(chars))}</font>' if name else escape("".join(chars))
        for name, chars in out
    )


def draw_runs(canvas, x: float, y: float, text: str, font: str, size: float) -> float:
    """Draw ``text`` at (x, y) run by run; returns the x after it."""
    for name, chunk in runs(text, font):
        canvas.setFont(name, size)
        canvas.drawString(x, y, chunk)
        x += pdfmetrics.stringWidth(chunk, name, size)
    return x


__all__ = [
    "FALLBACK_NAMES",
    "coverage",
    "covered",
    "draw_runs",
    "font_for",
    "markup",
    "register_fallbacks",
    "runs",
]
