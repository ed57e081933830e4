"""What an auditor reads in the decision record: the decision and the signature manifest with
every attestation on page 1, every character of the seed checklist and of the signers' names
drawn in a font that has it, the decision time as the PDF's creation date, child items that
keep their indentation when they wrap."""

from __future__ import annotations

import io
import re

import pytest
from ftfy import fix_encoding
from pypdf import PdfReader
from reportlab.pdfbase.ttfonts import TTFontFile
from reportlab.platypus import Paragraph

from signoffs import pdf_fonts
from signoffs.documents import release_import
from signoffs.models import DecisionRecord, SignoffRequirement
from signoffs.pdf import register_fonts, render_record_pdf
from signoffs.pdf_tables import section_table, section_tables
from signoffs.pdf_text import INDENT
from signoffs.records import record_document_load, record_pdf_unsealed
from signoffs.services import release_open_review, requirement_assign, signature_give
from tests.factories import AttestationFactory, ItemFactory, SectionFactory, UserFactory
from tests.signoffs.freeze_fixtures import SEED_PATH
from tests.signoffs.record_fixtures import decide, pdf_pages

pytestmark = pytest.mark.django_db

# Printed names as teams type them: accents, Cyrillic, Chinese, Japanese, Korean.
NAMES = (
    ("Zoë", "Ångström-Núñez"),
    ("Светлана", "Иванова"),
    ("王", "小明"),
    ("山田", "花子"),
    ("김", "민준"),
)
SYMBOLS = "✅ 🟡 ❌ ⚠️ 🔴 ⭕ 🟢 ⚪ ✔ ✘ 🟠 ☑"
REPLACEMENT = {"\x00", "\ufffd", "■", "□"}
FILES = {
    "DejaVuSans": "DejaVuSans.ttf",
    "DejaVuSans-Bold": "DejaVuSans-Bold.ttf",
    "NotoSansSymbols2": "NotoSansSymbols2-Regular.ttf",
    "WenQuanYiMicroHei": "wqy-microhei.ttc",
    "Symbola": "Symbola.ttf",
}


@pytest.fixture
def seed_record(password, signing):
    """The seed imported, every sign-off signed by people with non-Latin names, then DEFER,
    with an item whose text carries the status symbols teams use."""
    release = release_import(text=SEED_PATH.read_bytes(), source_name=SEED_PATH.name)
    section = SectionFactory(release=release, number="99", title="Symbols 🟢 ✅ 中文")
    ItemFactory(section=section, text=f"Legend {SYMBOLS}", status="in_progress")
    requirements = list(SignoffRequirement.objects.filter(release=release).order_by("order"))
    requirements.sort(key=lambda r: r.final_decision)  # the final decision last
    for index, requirement in enumerate(requirements):
        first, last = NAMES[index % len(NAMES)]
        user = UserFactory(username=f"signer{index}", first_name=first, last_name=last)
        requirement_assign(requirement=requirement, assignee=user, by=None)
    release_open_review(release=release, by=None)
    for requirement in requirements:
        requirement.refresh_from_db()
        signature_give(
            requirement=requirement,
            user=requirement.assignee,
            username=requirement.assignee.username,
            password=password,
            meaning="defer" if requirement.final_decision else "approved",
            comment="Signed 🟡 with care",
        )
    record = DecisionRecord.objects.filter(release=release).latest("created_at")
    return release, record, record_pdf_unsealed(record)


def _drawn(data: bytes) -> dict[str, str]:
    """Per font (as the PDF names it), the text the PDF draws in it."""
    drawn: dict[str, list[str]] = {}

    def visit(text, _cm, _tm, font, _size):
        if font is not None and text:
            name = re.sub(r"^[A-Z]{6}\+", "", str(font["/BaseFont"]).lstrip("/"))
            drawn.setdefault(name, []).append(text)

    for page in PdfReader(io.BytesIO(data)).pages:
        page.extract_text(visitor_text=visit)
    return {name: "".join(parts) for name, parts in drawn.items()}


def _cmap(name: str) -> set[int]:
    base = next(key for key in FILES if name == key or name.startswith(key + "-"))
    base = "DejaVuSans-Bold" if name.startswith("DejaVuSans-Bold") else base
    return set(TTFontFile(str(pdf_fonts.FONT_DIR / FILES[base])).charToGlyph)


def test_record_pdf_page_one_carries_decision_and_each_signers_attestations_when_decided(
    review, content, password, signing
):
    release, roles = review
    statements = {
        "QA Lead": ["All release tests pass on the production build.", "No open P1 defects."],
        "Security Officer": ["The penetration test found no critical issue."],
        "CEO": ["I accept the residual risk stated in the risk register."],
    }
    for role, texts in statements.items():
        for order, text in enumerate(texts):
            AttestationFactory(requirement=roles[role], text=text, order=order)
    record = decide(release, roles, password)
    first = pdf_pages(record_pdf_unsealed(record))[0]
    flat = " ".join(first.split())
    assert "Decision: DEFER" in flat and "Signature manifest" in flat
    for role, texts in statements.items():
        signature = release.signatures.get(requirement=roles[role])
        assert signature.printed_name in flat
        assert role in flat
        assert signature.get_meaning_display() in flat
        assert signature.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC") in flat
        for text in texts:
            assert text in flat, text
    assert flat.count("Valid") >= 3


def test_record_pdf_manifest_shows_a_revoked_state_with_its_reason_when_superseded(decided):
    release, record = decided
    document = dict(record_document_load(record), fingerprint=record.snapshot_sha256)
    signature = document["signoffs"][0]["signatures"][0]
    signature.update(state="revoked", state_reason="Signed the wrong build")
    first = pdf_pages(render_record_pdf(document))[0]
    assert "Revoked: Signed the wrong build" in " ".join(first.split())


def test_record_pdf_draws_every_character_in_a_font_that_has_it_when_seed_and_names_vary(
    seed_record,
):
    release, _record, data = seed_record
    text = "\n".join(pdf_pages(data))
    flat = "".join(text.split())
    seed = fix_encoding(SEED_PATH.read_text(encoding="utf-8"))
    wanted = {c for c in seed + SYMBOLS if ord(c) > 127 and not c.isspace()} - {"\ufe0f"}
    wanted |= {c for first, last in NAMES for c in first + last}
    missing = sorted(c for c in wanted if c not in flat)
    assert not missing, missing
    assert not REPLACEMENT & set(text), REPLACEMENT & set(text)
    for first, last in NAMES:
        assert f"{first} {last}" in text
    drawn = _drawn(data)
    used = {next(key for key in FILES if name.startswith(key)) for name in drawn}
    assert {"NotoSansSymbols2", "Symbola", "WenQuanYiMicroHei"} <= used
    for name, chars in drawn.items():
        cmap = _cmap(name)
        absent = sorted({c for c in chars if ord(c) not in cmap and not c.isspace()})
        assert not absent, (name, absent)


def test_record_pdf_creation_date_is_the_decision_time_when_rendered_twice(decided):
    release, record = decided
    first, second = record_pdf_unsealed(record), record_pdf_unsealed(record)
    assert first == second
    decision = record.signature.signed_at
    stamp = decision.strftime("D:%Y%m%d%H%M%S+00'00'")
    info = PdfReader(io.BytesIO(first)).metadata
    assert info["/CreationDate"] == stamp and info["/ModDate"] == stamp


def test_section_table_keeps_a_childs_indent_on_every_wrapped_line_when_text_wraps():
    register_fonts()
    long = "A child item whose text is long enough to wrap over several lines of the column"
    section = {
        "items": [
            {
                "key": "",
                "text": "Parent",
                "status": "complete",
                "children": [
                    {"key": "", "text": long, "status": "complete", "children": []},
                ],
            },
        ]
    }
    table = section_table(section)
    child = table._cellvalues[2][1]
    lines = child.split("\n")
    assert len(lines) > 1
    assert all(line.startswith(INDENT) for line in lines)
    assert not table._cellvalues[1][1].startswith("\u00a0")


def test_section_table_indents_a_wrapped_fallback_paragraph_when_text_needs_another_font():
    register_fonts()
    long = "Ребёнок 🟡 " + "word " * 40
    section = {
        "items": [
            {
                "key": "",
                "text": "Parent",
                "status": "complete",
                "children": [
                    {"key": "", "text": long, "status": "complete", "children": []},
                ],
            }
        ]
    }
    child = section_table(section)._cellvalues[2][1]
    assert child.style.leftIndent > 0
    assert '<font name="NotoSansSymbols2">🟡</font>' in child.text


def test_section_tables_put_space_before_each_heading_when_a_table_precedes_it():
    register_fonts()
    item = {"key": "", "text": "Item", "status": "complete", "children": []}
    sections = [
        {"number": "1", "title": "One", "parent": None, "items": [item]},
        {"number": "1.1", "title": "Sub", "parent": "1", "items": [item]},
        {"number": "2", "title": "Two", "parent": None, "items": [item]},
    ]
    flowables = section_tables(sections)
    headings = [f for f in flowables if isinstance(f, Paragraph)]
    assert len(headings) == 3
    for heading in headings:
        assert heading.getSpaceBefore() >= 8, heading.text
