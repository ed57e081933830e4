import pytest
from cryptography import x509
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from signoffs.models import DecisionRecord
from signoffs.records import draft_pdf
from signoffs.signing_cert import ensure_signing_cert

pytestmark = pytest.mark.django_db


def _verify(path, capsys):
    call_command("verify_record", str(path))
    return capsys.readouterr().out


def test_verify_record_prints_release_decision_signers_and_ok_when_file_is_intact(
    decided, tmp_path, capsys
):
    release, record = decided
    path = tmp_path / "record.pdf"
    path.write_bytes(bytes(record.pdf))
    out = _verify(path, capsys)
    assert "Seal: valid" in out
    assert f"Release: dCMMS {release.name} ({release.version})" in out
    assert "Decision: DEFER by Demo CEO (CEO)" in out
    assert "Reason: Security audit outstanding" in out
    assert "QA Lead: Demo QA Lead — Approved" in out and "Security Officer: Demo" in out
    assert record.snapshot_sha256 in out
    assert out.rstrip().endswith("record.pdf: OK")


@pytest.mark.parametrize("where", [0.25, 0.5, 0.9])
def test_verify_record_fails_naming_the_mismatch_when_one_byte_changed(
    decided, tmp_path, capsys, where
):
    _, record = decided
    data = bytearray(record.pdf)
    data[int(len(data) * where)] ^= 0x01
    path = tmp_path / "tampered.pdf"
    path.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="NOT verified"):
        call_command("verify_record", str(path))
    err = capsys.readouterr().err
    assert "MISMATCH: no stored decision record has this file's SHA-256" in err
    assert "MISMATCH: seal:" in err


def test_verify_record_fails_when_bytes_are_appended_after_sealing(decided, tmp_path, capsys):
    _, record = decided
    path = tmp_path / "appended.pdf"
    path.write_bytes(bytes(record.pdf) + b"\n%extra\n")
    with pytest.raises(CommandError):
        call_command("verify_record", str(path))
    assert "seal does not cover the file" in capsys.readouterr().err


def test_verify_record_fails_when_the_stored_snapshot_was_altered(decided, tmp_path, capsys):
    _, record = decided
    path = tmp_path / "record.pdf"
    path.write_bytes(bytes(record.pdf))
    altered = record.snapshot_json.replace("Security audit outstanding", "All clear")
    DecisionRecord.objects.filter(pk=record.pk).update(snapshot_json=altered)
    with pytest.raises(CommandError):
        call_command("verify_record", str(path))
    err = capsys.readouterr().err
    assert "stored snapshot does not hash to the record's fingerprint" in err


def test_verify_record_fails_when_sealed_with_another_certificate(
    decided, tmp_path, settings, capsys
):
    _, record = decided
    path = tmp_path / "record.pdf"
    path.write_bytes(bytes(record.pdf))
    other_key, other_cert = tmp_path / "other-key.pem", tmp_path / "other-cert.pem"
    ensure_signing_cert(key_path=other_key, cert_path=other_cert)
    settings.DECISION_SIGNING_KEY, settings.DECISION_SIGNING_CERT = str(other_key), str(other_cert)
    with pytest.raises(CommandError):
        call_command("verify_record", str(path))
    assert "not made with the expected certificate" in capsys.readouterr().err


def test_verify_record_fails_when_the_file_is_an_unsealed_draft(content, signing, tmp_path, capsys):
    path = tmp_path / "draft.pdf"
    path.write_bytes(draft_pdf(release=content))
    with pytest.raises(CommandError):
        call_command("verify_record", str(path))
    err = capsys.readouterr().err
    assert "carries no seal" in err and "no stored decision record" in err


def test_verify_record_refuses_when_the_file_does_not_exist(tmp_path, signing):
    with pytest.raises(CommandError, match="no such file"):
        call_command("verify_record", str(tmp_path / "absent.pdf"))


def test_ensure_signing_cert_creates_a_non_repudiation_cert_once_when_absent(
    settings, tmp_path, capsys
):
    settings.DECISION_SIGNING_KEY = str(tmp_path / "signing" / "key.pem")
    settings.DECISION_SIGNING_CERT = str(tmp_path / "signing" / "cert.pem")
    call_command("ensure_signing_cert")
    assert "Created a self-signed development signing certificate" in capsys.readouterr().out
    cert = x509.load_pem_x509_certificate((tmp_path / "signing" / "cert.pem").read_bytes())
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.content_commitment and usage.digital_signature
    assert (tmp_path / "signing" / "key.pem").stat().st_mode & 0o077 == 0
    before = (tmp_path / "signing" / "cert.pem").read_bytes()
    call_command("ensure_signing_cert")
    assert "nothing to do" in capsys.readouterr().out
    assert (tmp_path / "signing" / "cert.pem").read_bytes() == before


def test_ensure_signing_cert_refuses_when_only_the_certificate_exists(settings, tmp_path):
    (tmp_path / "cert.pem").write_text("not ours")
    settings.DECISION_SIGNING_KEY = str(tmp_path / "key.pem")
    settings.DECISION_SIGNING_CERT = str(tmp_path / "cert.pem")
    with pytest.raises(ImproperlyConfigured, match="Only one of"):
        call_command("ensure_signing_cert")
    assert (tmp_path / "cert.pem").read_text() == "not ours"


def test_seal_and_check_work_inside_a_running_event_loop(tmp_path, settings):
    """An ASGI server or a browser-test driver runs an event loop in the calling thread;
    pyHanko's own asyncio.run must not collide with it."""
    import asyncio

    from signoffs.signing_cert import ensure_signing_cert, seal_check, seal_pdf

    settings.DECISION_SIGNING_KEY = str(tmp_path / "key.pem")
    settings.DECISION_SIGNING_CERT = str(tmp_path / "cert.pem")
    ensure_signing_cert()
    import io

    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, "record")
    page.save()

    async def inside_a_loop():
        sealed = seal_pdf(buffer.getvalue(), reason="test")
        return seal_check(sealed)

    assert asyncio.run(inside_a_loop()).ok


def test_verify_record_passes_when_cert_sha256_is_the_sealing_certificate(
    decided, tmp_path, capsys
):
    from signoffs.signing_cert import configured_certificate

    _, record = decided
    path = tmp_path / "record.pdf"
    path.write_bytes(bytes(record.pdf))
    sha = configured_certificate().sha256
    call_command("verify_record", str(path), "--cert-sha256", sha.upper())
    out = capsys.readouterr().out
    assert f"SHA-256 {sha}: the expected certificate" in out
    assert f"Stored record: #{record.pk}" in out and out.rstrip().endswith("record.pdf: OK")


def test_verify_record_fails_when_cert_sha256_is_another_certificate(decided, tmp_path, capsys):
    _, record = decided
    path = tmp_path / "record.pdf"
    path.write_bytes(bytes(record.pdf))
    with pytest.raises(CommandError, match="NOT verified"):
        call_command("verify_record", str(path), "--cert-sha256", "0" * 64)
    assert f"not the expected one (SHA-256 {'0' * 64})" in capsys.readouterr().err


def test_verify_record_fails_when_the_file_is_another_releases_record(decided, tmp_path, capsys):
    release, record = decided
    path = tmp_path / "record.pdf"
    path.write_bytes(bytes(record.pdf))
    with pytest.raises(CommandError, match=r"NOT verified \(1 problem"):
        call_command("verify_record", str(path), "--release", "v9.9.9")
    err = capsys.readouterr().err
    assert f"release: this is the record of release {release.version}, not of v9.9.9" in err


def test_verify_record_uses_the_stored_snapshot_when_the_record_predates_embedding(
    decided, tmp_path, capsys
):
    """A record sealed before snapshots were attached still verifies against the portal."""
    import hashlib

    from signoffs.records import record_pdf_unsealed
    from signoffs.signing_cert import seal_pdf

    _, record = decided
    old = seal_pdf(record_pdf_unsealed(record), reason="before snapshots were attached")
    DecisionRecord.objects.filter(pk=record.pk).update(
        pdf=old, pdf_sha256=hashlib.sha256(old).hexdigest()
    )
    path = tmp_path / "old.pdf"
    path.write_bytes(old)
    call_command("verify_record", str(path))
    out = capsys.readouterr().out
    assert "Snapshot: none embedded" in out and out.rstrip().endswith("old.pdf: OK")
