import io
import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from pypdf import PdfReader

from signoffs import pdf as pdf_module
from signoffs.models import Item
from signoffs.records import draft_pdf, record_pdf_unsealed
from signoffs.services import release_reopen
from tests.signoffs.record_fixtures import HOSTILE, UNICODE, decide, pdf_pages

pytestmark = pytest.mark.django_db

SECTIONS = (
    "Decision record",
    "Status summary",
    "Readiness",
    "GO criteria and NO-GO blockers",
    "Failing targets",
    "Checklist",
    "Risk register",
    "Heat map: impact × probability",
    "Action items",
    "Sign-off matrix",
    "Audit excerpt",
)


def _text(data: bytes) -> str:
    return "\n".join(pdf_pages(data))


def test_record_pdf_has_every_section_and_signature_when_decided(decided):
    release, record = decided
    pages = pdf_pages(bytes(record.pdf))
    text = "\n".join(pages)
    for heading in SECTIONS:
        assert heading in text, heading
    for name in ("Demo QA Lead", "Demo Security Officer", "Demo CEO"):
        assert name in text
    for signature in release.signatures.all():
        assert signature.signed_at.strftime("%Y-%m-%d %H:%M:%S") in text.replace("\n", " ")
        assert signature.snapshot_sha256[:16] in text
    assert "Approved" in text and "DEFER" in text and "Security audit outstanding" in text
    assert "UTC (+00:00)" in text  # the recorded time, with its offset
    assert "dCMMS" in text and release.version in text and "Sprint 18" in text


def test_record_pdf_prints_fingerprint_and_page_n_of_m_on_every_page_when_rendered(decided):
    _, record = decided
    pages = pdf_pages(bytes(record.pdf))
    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        assert record.snapshot_sha256 in page
        assert "Release 0" in page or "Release" in page


def test_record_pdf_marks_failing_targets_overdue_actions_and_heat_map_when_present(decided):
    _, record = decided
    text = _text(bytes(record.pdf))
    failing = text.split("Failing targets", 1)[1]
    assert "Error rate" in failing.split("Checklist", 1)[0]
    assert "✘ FAIL" in text and "< 200 ms" in text and "350 ms" in text
    assert "A-001" in text and "⚠ OVERDUE" in text
    assert "1: R-001" in text and "1: R-002" in text


def test_record_pdf_evaluates_each_criterion_and_names_what_decides_it_when_defined(decided):
    _, record = decided
    text = _text(bytes(record.pdf)).replace("\n", " ")
    criteria = text.split("GO criteria and NO-GO blockers", 1)[1].split("Failing targets", 1)[0]
    assert "Quality — Targets met" in criteria and "✘ not met" in criteria
    assert "item “Error rate” is not started" in criteria and "item Error rate" in criteria
    assert "Open critical CVE" in criteria and "⚠ not assessed" in criteria
    assert "GO criterion not met: Quality — Targets met" in text  # readiness: why not GO


def test_record_pdf_prints_user_markup_literally_when_names_and_items_hold_tags(
    review, content, password, signing
):
    release, roles = review
    qa = roles["QA Lead"].assignee
    qa.first_name, qa.last_name = "<b>Eve", '<img src="/etc/hosts"/>'
    qa.save()
    record = decide(release, roles, password, comment='R&D <200ms> <a href="javascript:x">y</a>')
    data = record_pdf_unsealed(record)
    text = _text(data)
    flat = text.replace("\n", "")
    for hostile in HOSTILE:
        assert hostile in flat, hostile
    assert '<b>Eve <img src="/etc/hosts"/>' in flat
    assert 'R&D <200ms> <a href="javascript:x">y</a>' in flat
    assert b"/Annots" not in data and b"/URI" not in data and b"/Link" not in data
    assert b"/Subtype /Image" not in data and b"/XObject" not in data
    for page in PdfReader(io.BytesIO(data)).pages:
        assert "/Annots" not in page
        assert not page.images


def test_record_pdf_round_trips_unicode_and_status_glyphs_when_extracted(decided):
    _, record = decided
    text = _text(bytes(record.pdf))
    for phrase in UNICODE:
        assert phrase in text, phrase
    for glyph_word in ("✔ Complete", "● In progress", "○ Not started", "✘ Blocked", "⚠ At risk"):
        assert glyph_word in text, glyph_word
    fonts = {
        str(font["/BaseFont"])
        for page in PdfReader(io.BytesIO(bytes(record.pdf))).pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert fonts and all(re.search(r"DejaVuSans", name) for name in fonts)


def test_record_pdf_renders_identical_bytes_when_the_live_release_changed_since(decided):
    release, record = decided
    first = record_pdf_unsealed(record)
    # A decided release is frozen: reopened first, then changed.
    release_reopen(release=release, by=release.owner, reason="Rename an item")
    item = Item.objects.filter(release=release, text="Error rate").get()
    item.text = "Renamed after the decision"
    item.save()
    second = record_pdf_unsealed(record)
    assert first == second
    assert "Renamed after the decision" not in _text(second)
    assert bytes(record.pdf)[: len(b"%PDF")] == b"%PDF"


def test_draft_pdf_is_watermarked_draft_on_every_page_when_downloaded_before_decision(content):
    data = draft_pdf(release=content)
    pages = pdf_pages(data)
    assert len(pages) >= 3
    for page in pages:
        assert "DRAFT" in page
    text = "\n".join(pages)
    assert "DRAFT decision record" in text and "Decision: none yet" in text
    assert b"/ByteRange" not in data  # a draft is never sealed


def test_register_fonts_names_the_missing_font_when_dejavu_is_absent(monkeypatch, tmp_path):
    monkeypatch.setattr(pdf_module, "FONT_DIRS", (tmp_path,))
    pdf_module.register_fonts.cache_clear()
    try:
        with pytest.raises(ImproperlyConfigured, match="DejaVu"):
            pdf_module.register_fonts()
    finally:
        monkeypatch.undo()
        pdf_module.register_fonts.cache_clear()
        pdf_module.register_fonts()
