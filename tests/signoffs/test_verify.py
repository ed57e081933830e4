"""signoffs.verify: a decision record checked with nothing but the file and a certificate, in a
process that has no portal database, no settings and never imports Django."""

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from signoffs.cert_info import cert_info
from signoffs.record_embed import SNAPSHOT_NAME, embed_snapshot
from signoffs.signing_cert import configured_certificate, ensure_signing_cert, seal_pdf
from tests.signoffs.record_fixtures import pdf_pages

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
# Runs main() and then says whether Django was ever imported: the verifier must not need it.
RUNNER = (
    "import sys; from signoffs.verify import main; code = main(sys.argv[1:]); "
    "print('django imported' if 'django' in sys.modules else 'no django'); sys.exit(code)"
)


def _run(*args) -> subprocess.CompletedProcess:
    """The verifier in a fresh process with a minimal environment: no settings module, no
    database URL, nothing of the portal but its source on the path."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "HOME": "/nonexistent"}
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=120,
    )


@pytest.fixture
def sealed(decided, tmp_path):
    release, record = decided
    path = tmp_path / "record.pdf"
    path.write_bytes(bytes(record.pdf))
    return release, record, path


def _assert_refused_cleanly(result, *expected):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines and all(
        line.startswith("MISMATCH: ") or "NOT verified" in line for line in lines
    ), lines
    for text in expected:
        assert text in result.stderr, result.stderr


def test_verify_prints_ok_and_the_sealing_certificate_when_run_without_database_or_django(
    sealed, signing
):
    release, record, path = sealed
    result = _run(path, "--cert", signing[1], "--release", release.version)
    assert result.returncode == 0, result.stderr
    sha = configured_certificate().sha256
    assert "Seal: valid, by CN=dCMMS Release Portal decision records (development)" in result.stdout
    assert f"SHA-256 {sha}: the expected certificate" in result.stdout
    assert "Decision: DEFER by Demo CEO (CEO)" in result.stdout
    assert "QA Lead: Demo QA Lead — Approved" in result.stdout
    assert f"Fingerprint: {record.snapshot_sha256}" in result.stdout
    assert result.stdout.splitlines()[-2:] == ["record.pdf: OK", "no django"]


def test_verify_fails_naming_both_certificates_when_sealed_with_another_certificate(
    sealed, tmp_path
):
    _, _, path = sealed
    other_key, other_cert = tmp_path / "other-key.pem", tmp_path / "other-cert.pem"
    ensure_signing_cert(key_path=other_key, cert_path=other_cert)
    result = _run(path, "--cert", other_cert)
    _assert_refused_cleanly(result, "MISMATCH: seal: not made with the expected certificate")
    assert cert_info(other_cert.read_bytes()).sha256 in result.stderr
    assert f"{configured_certificate().sha256}: NOT the expected one" in result.stdout
    assert "Seal: valid" not in result.stdout


def test_verify_passes_when_cert_sha256_is_the_sealing_certificate_in_any_notation(sealed):
    _, _, path = sealed
    sha = configured_certificate().sha256
    colons = ":".join(sha[i : i + 2] for i in range(0, 64, 2)).upper()
    result = _run(path, "--cert-sha256", colons)
    assert result.returncode == 0, result.stderr
    assert f"SHA-256 {sha}: the expected certificate" in result.stdout


def test_verify_fails_when_cert_sha256_is_not_the_sealing_certificate(sealed):
    _, _, path = sealed
    result = _run(path, "--cert-sha256", "ab" * 32)
    _assert_refused_cleanly(result, f"not the expected one (SHA-256 {'ab' * 32})")


def test_verify_fails_when_the_file_is_another_releases_record(sealed, signing):
    release, _, path = sealed
    result = _run(path, "--cert", signing[1], "--release", "9.9.9")
    _assert_refused_cleanly(
        result, f"MISMATCH: release: this is the record of release {release.version}, not of 9.9.9"
    )


def test_verify_fails_when_the_printed_signer_differs_from_the_snapshot(sealed, signing, tmp_path):
    """Sealed with the right key and carrying the true snapshot, but the pages print another
    signer: the printed text must be the snapshot's."""
    from signoffs.pdf import render_record_pdf

    _, record, _ = sealed
    document = json.loads(record.snapshot_json)
    for requirement in document["signoffs"]:
        for signature in requirement["signatures"]:
            if requirement["role"] == "QA Lead":
                signature["name"] = "Mallory Forger"
    forged = render_record_pdf(
        dict(
            document,
            fingerprint=record.snapshot_sha256,
            seal_certificate_sha256=configured_certificate().sha256,
        )
    )
    path = tmp_path / "forged.pdf"
    path.write_bytes(seal_pdf(forged, reason="forged", snapshot=record.snapshot_json.encode()))
    result = _run(path, "--cert", signing[1])
    _assert_refused_cleanly(
        result,
        "MISMATCH: printed text: the QA Lead signature by Demo QA Lead (Approved,",
        "is not printed as in the snapshot (no row prints that name with its role, meaning, time)",
    )
    assert len(result.stderr.strip().splitlines()) == 2  # one problem, then the verdict


@pytest.mark.parametrize("where", [0.1, 0.3, 0.5, 0.7, 0.95])
def test_verify_fails_with_one_line_per_problem_and_no_traceback_when_one_byte_changed(
    sealed, signing, tmp_path, where
):
    _, record, _ = sealed
    data = bytearray(record.pdf)
    data[int(len(data) * where)] ^= 0x01
    path = tmp_path / "tampered.pdf"
    path.write_bytes(bytes(data))
    _assert_refused_cleanly(_run(path, "--cert", signing[1]), "MISMATCH: seal:")


@pytest.mark.parametrize(
    "damage,expected",
    [
        (lambda pdf: pdf + b"\n%extra\n", "seal does not cover the file"),
        (lambda pdf: pdf[: len(pdf) // 2], "MISMATCH: seal:"),
        (lambda pdf: b"not a pdf at all", "MISMATCH: seal: not a readable PDF"),
    ],
    ids=["appended", "truncated", "garbage"],
)
def test_verify_fails_cleanly_when_the_file_is_damaged(sealed, signing, tmp_path, damage, expected):
    _, record, _ = sealed
    path = tmp_path / "damaged.pdf"
    path.write_bytes(damage(bytes(record.pdf)))
    _assert_refused_cleanly(_run(path, "--cert", signing[1]), expected)


def test_verify_fails_when_a_forged_snapshot_is_attached_after_sealing(sealed, signing, tmp_path):
    """The snapshot is under the seal: replacing it in a later update breaks the seal."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    _, record, _ = sealed
    writer = IncrementalPdfFileWriter(io.BytesIO(bytes(record.pdf)), strict=False)
    embed_snapshot(writer, record.snapshot_json.replace("Demo QA Lead", "Mallory").encode())
    out = io.BytesIO()
    writer.write(out)
    path = tmp_path / "reattached.pdf"
    path.write_bytes(out.getvalue())
    _assert_refused_cleanly(
        _run(path, "--cert", signing[1]), "seal does not cover the file", "fingerprint:"
    )


def test_verify_fails_when_the_file_is_an_unsealed_draft(content, signing, tmp_path):
    from signoffs.records import draft_pdf

    path = tmp_path / "draft.pdf"
    path.write_bytes(draft_pdf(release=content))
    _assert_refused_cleanly(
        _run(path, "--cert", signing[1]),
        "carries no seal",
        f"no embedded snapshot ({SNAPSHOT_NAME})",
    )


def test_verify_refuses_without_a_certificate_when_none_is_named(sealed):
    _, _, path = sealed
    result = _run(path)
    assert result.returncode == 2 and "--cert FILE or --cert-sha256 HEX" in result.stderr


def test_sealed_record_embeds_the_exact_snapshot_its_fingerprint_covers(decided):
    _, record = decided
    attached = PdfReader(io.BytesIO(bytes(record.pdf))).attachments[SNAPSHOT_NAME]
    assert attached == [record.snapshot_json.encode("utf-8")]
    assert hashlib.sha256(attached[0]).hexdigest() == record.snapshot_sha256


def test_record_prints_the_sealing_certificate_fingerprint_on_every_page_when_sealed(decided):
    _, record = decided
    sha = configured_certificate().sha256
    pages = pdf_pages(bytes(record.pdf))
    assert len(pages) > 1
    assert all(f"Sealing certificate SHA-256: {sha}" in page for page in pages)


def test_draft_prints_not_sealed_on_every_page_when_rendered(content, signing):
    from signoffs.records import draft_pdf

    pages = pdf_pages(draft_pdf(release=content))
    assert all("Not sealed: a draft carries no seal." in page for page in pages)
    assert not any("Sealing certificate SHA-256" in page for page in pages)
