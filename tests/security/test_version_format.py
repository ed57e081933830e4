"""Issue #14 point 12: the release version went into download file names unchecked, and
``filename*=UTF-8''evil.html`` was injected into a DRAFT record's Content-Disposition. The
version has a format, checked on every write (model validator: the admin's forms, the importer,
the services' full_clean), and every download header is built by Django's helper
(checklist.validators.validate_version, checklist.downloads)."""

from __future__ import annotations

import email.message
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from checklist.importers import ChecklistImportError, parse_checklist
from checklist.models import Release
from checklist.validators import validate_version
from signoffs.documents import release_import
from tests.factories import ReleaseFactory, UserFactory
from tests.signoffs import record_fixtures

content, decided = record_fixtures.content, record_fixtures.decided
signing, signing_pair = record_fixtures.signing, record_fixtures.signing_pair

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
INJECTION = "1.0\"; filename*=UTF-8''evil.html"
HOSTILE_VERSIONS = (
    INJECTION,
    '1.0"',
    "1.0;x",
    "v1.0\r",
    "v1.0\rSet-Cookie: x=1",
    "v1.0\n",  # ^…$ would accept a trailing newline
    "v1.0 beta",
    "v1.0/../../etc",
    "v١.٢",  # Arabic-Indic digits: digits to \d, not to a file name
    "",
    "v" + "1" * 50,
)
DOC = (
    "# Checklist\n\n**Project:** Demo\n**Release:** Demo ({version})\n\n"
    "## Section 1: Work\n\n- [ ] a\n"
)


def _versions_shipped() -> list[str]:
    files = [ROOT / "fixtures" / "seed_checklist.md", *sorted((ROOT / "tests/data").glob("*.md"))]
    return [parse_checklist(f.read_bytes(), source_name=f.name).release.version for f in files]


# ---------------------------------------------------------------- the format
@pytest.mark.parametrize(
    "version",
    ["v0.3.0", "v2.0.0-rc.1", "2.1", "v1", "1.2.3.4", "1.4.2+build.7", "v1.0.0-rc.1+b.2"],
)
def test_validate_version_accepts_release_versions_when_digits_and_a_suffix(version):
    validate_version(version)


def test_validate_version_accepts_the_seed_and_test_checklists_versions_when_imported():
    versions = _versions_shipped()
    assert "v0.3.0" in versions and "v2.0.0-rc.1" in versions
    for version in versions:
        validate_version(version)


@pytest.mark.parametrize("version", HOSTILE_VERSIONS)
def test_release_full_clean_refuses_the_version_when_it_holds_quotes_semicolons_or_breaks(
    version,
):
    release = ReleaseFactory.build(version=version)
    with pytest.raises(ValidationError) as refused:
        release.full_clean()
    assert "version" in refused.value.message_dict


# ---------------------------------------------------------------- the importer
@pytest.mark.parametrize("version", [INJECTION, "1.0;x", "v1.0 beta", "1.0\t2"])
def test_release_import_refuses_the_version_and_writes_nothing_when_it_holds_quotes_or_semicolons(
    version,
):
    with pytest.raises(ChecklistImportError) as refused:
        release_import(text=DOC.format(version=version), source_name="demo.md")
    assert refused.value.line == 4
    assert str(refused.value).startswith("demo.md:4: release version: Enter a version such as")
    assert not Release.objects.exists()


# ---------------------------------------------------------------- the admin
def _add_data(version: str) -> dict:
    return {
        "project": "Demo",
        "name": "Demo",
        "version": version,
        "review_cadence": "daily",
        "sections-TOTAL_FORMS": "0",
        "sections-INITIAL_FORMS": "0",
        "signoff_requirements-TOTAL_FORMS": "0",
        "signoff_requirements-INITIAL_FORMS": "0",
    }


def _form_data(response) -> dict:
    """A change form as the browser posts it back: its fields, and its inlines' forms."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(n): management[n].value() for n in management.fields})
        forms.extend(inline.formset.forms)
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is not None and value is not False:
                data[form.add_prefix(name)] = value
    return data


@pytest.mark.parametrize("version", [INJECTION, '1.0"', "1.0;x", "v1.0\rSet-Cookie: x=1"])
def test_release_add_form_refuses_the_version_and_creates_nothing_when_hostile(
    admin_client, version
):
    response = admin_client.post(reverse("admin:checklist_release_add"), _add_data(version))
    assert response.status_code == 200
    assert "Enter a version such as" in response.context["adminform"].form.errors["version"][0]
    assert not Release.objects.exists()


def test_release_add_form_creates_the_release_when_the_version_is_well_formed(admin_client):
    response = admin_client.post(reverse("admin:checklist_release_add"), _add_data("v2.0.0-rc.1"))
    assert response.status_code == 302
    assert Release.objects.get().version == "v2.0.0-rc.1"


def test_release_change_form_refuses_a_hostile_version_and_keeps_the_old_one(admin_client):
    release = ReleaseFactory(version="v3.1.0")
    url = reverse("admin:checklist_release_change", args=[release.pk])
    data = _form_data(admin_client.get(url))
    data["version"] = INJECTION
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "version" in response.context["adminform"].form.errors
    release.refresh_from_db()
    assert release.version == "v3.1.0"


# ---------------------------------------------------------------- download headers
_QUOTED = re.compile(r'\Aattachment; filename="((?:[\t \x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"\Z')
_EXTENDED = re.compile(r"\Aattachment; filename\*=utf-8''([A-Za-z0-9%._~-]+)\Z")


def _filename(header: str) -> str:
    """The one file name of a well-formed Content-Disposition (RFC 6266: a quoted ASCII name,
    or an RFC 5987 UTF-8 name), else the test fails."""
    assert "\r" not in header and "\n" not in header
    if quoted := _QUOTED.match(header):
        name = re.sub(r"\\(.)", r"\1", quoted.group(1))
    else:
        extended = _EXTENDED.match(header)
        assert extended, f"malformed Content-Disposition: {header!r}"
        name = unquote(extended.group(1), errors="strict")
    message = email.message.Message()
    message["Content-Disposition"] = header
    assert message.get_filename() == name  # a mail parser reads the same, single name
    return name


def _downloads(release, record=None) -> dict[str, str]:
    urls = {
        "draft": reverse("admin:signoffs_decisionrecord_draft", args=[release.pk]),
        **{
            fmt: reverse("admin:checklist_release_export", args=[release.pk, fmt])
            for fmt in ("json", "md", "csv")
        },
    }
    if record is not None:
        urls["sealed"] = reverse("admin:signoffs_decisionrecord_download", args=[record.pk])
    return urls


def _legacy_version(release, version: str) -> None:
    # A version stored before the format was checked: no write path of the portal takes it now.
    Release.objects.filter(pk=release.pk).update(version=version)
    release.refresh_from_db()


@pytest.mark.parametrize(
    ("version", "stem"),
    [("v1.0-β", "v1.0-β"), ("выпуск-2.0", "выпуск-2.0"), ("v2.0 «final»", "v2.0_final")],
)
def test_download_headers_are_well_formed_when_the_version_is_unicode(
    client, decided, version, stem
):
    release, record = decided
    _legacy_version(release, version)
    client.force_login(UserFactory(superuser=True))
    names = {}
    for what, url in _downloads(release, record).items():
        response = client.get(url)
        assert response.status_code == 200, what
        names[what] = _filename(response["Content-Disposition"])
    assert names["draft"] == f"draft-record-{stem}.pdf"
    assert names["sealed"] == f"decision-record-{stem}-{record.pk}.pdf"
    assert names["json"] == f"release-{release.pk}.json"
    assert names["csv"] == f"release-{release.pk}.csv"


def test_download_headers_carry_one_file_name_when_a_legacy_version_holds_an_injection(
    client, content, signing
):
    release = content
    _legacy_version(release, INJECTION)
    client.force_login(UserFactory(superuser=True))
    for what, url in _downloads(release).items():
        header = client.get(url)["Content-Disposition"]
        name = _filename(header)
        assert len(re.findall(r";\s*filename\*?=", header)) == 1, what
        assert not name.endswith(".html"), what
    response = client.get(_downloads(release)["draft"])
    assert (
        _filename(response["Content-Disposition"])
        == "draft-record-1.0_filename_UTF-8_evil.html.pdf"
    )


def test_download_header_names_the_version_as_is_when_it_is_well_formed(client, decided):
    release, record = decided
    client.force_login(UserFactory(superuser=True))
    response = client.get(_downloads(release, record)["sealed"])
    expected = f'attachment; filename="decision-record-{release.version}-{record.pk}.pdf"'
    assert response["Content-Disposition"] == expected
