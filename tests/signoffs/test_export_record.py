"""`manage.py export_record VERSION [-o FILE]`: the sealed record, as stored, for operators."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from checklist.models_audit import AuditEvent
from tests.signoffs.record_fixtures import decide

pytestmark = pytest.mark.django_db


def test_export_record_writes_the_stored_sealed_pdf_and_audits_it_when_a_record_is_sealed(
    decided, tmp_path, capsys
):
    release, record = decided
    out = tmp_path / "record.pdf"
    call_command("export_record", release.version, "-o", str(out))
    assert out.read_bytes() == bytes(record.pdf)
    printed = capsys.readouterr().out
    assert f"Wrote {out}" in printed and record.snapshot_sha256 in printed
    event = AuditEvent.objects.get(kind="record_download", release=release)
    assert event.detail["sha256"] == record.pdf_sha256 and "(export_record)" in event.username


def test_export_record_then_verify_record_passes_when_exported(decided, tmp_path, capsys):
    release, _ = decided
    out = tmp_path / "exported.pdf"
    call_command("export_record", release.version, "-o", str(out))
    call_command("verify_record", str(out), "--release", release.version)
    assert capsys.readouterr().out.rstrip().endswith("exported.pdf: OK")


def test_export_record_names_a_default_file_when_the_output_is_a_folder(decided, tmp_path):
    release, record = decided
    call_command("export_record", release.version, "-o", str(tmp_path))
    written = tmp_path / f"decision-record-{release.version}-{record.pk}.pdf"
    assert written.read_bytes() == bytes(record.pdf)


def test_export_record_refuses_clearly_when_the_record_is_not_sealed_yet(
    review, password, signing, tmp_path
):
    release, roles = review
    decide(release, roles, password)  # pending: never rendered here
    out = tmp_path / "record.pdf"
    with pytest.raises(CommandError, match=f"Release {release.version} has no sealed decision"):
        call_command("export_record", release.version, "-o", str(out))
    assert not out.exists()
    assert not AuditEvent.objects.filter(kind="record_download").exists()


def test_export_record_refuses_clearly_when_no_release_has_the_version(db, tmp_path):
    with pytest.raises(CommandError, match="No release has version 'v9.9.9'"):
        call_command("export_record", "v9.9.9", "-o", str(tmp_path / "x.pdf"))
