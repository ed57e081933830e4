"""Verify a decision record with nothing but the file and the portal's certificate.

    python -m signoffs.verify decision-record-v1.2.0-7.pdf --cert signing-cert.pem
    python -m signoffs.verify decision-record-v1.2.0-7.pdf --cert-sha256 3f9a…

Needs Python with pyHanko, pypdf and cryptography; no portal database, no settings, no network
(this module imports nothing of Django). It checks:

1. the seal (PAdES): intact, covering the whole file, and made with the expected certificate
   (``--cert``: that certificate is the only trust root; ``--cert-sha256``: the certificate in
   the seal must have that SHA-256 fingerprint, and is then the trust root);
2. the snapshot: the canonical JSON attached to the file (under the seal) hashes to the
   fingerprint the file carries in its metadata and prints on every page;
3. the printed text: the release, the decision (meaning, who, role, time) and every signature
   (printed name, role, meaning, time) printed in the PDF are those of the snapshot, and the
   sealing certificate's fingerprint printed in the footer is the one that sealed it;
4. ``--release VERSION``: the file is the record of that release.

Each problem is one line; a damaged file never produces a traceback. ``manage.py
verify_record`` wraps this and adds the checks that need the portal's database.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import io
import json
import logging
import re
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from signoffs.cert_info import SEAL_LABEL, CertInfo, cert_info, normalise_sha256
from signoffs.record_embed import SNAPSHOT_NAME, embedded_snapshot

T = TypeVar("T")
# A signature's cells (role, name, time, meaning) print within this many characters (without
# white space) before and after its printed name, in the manifest and in the sign-off matrix.
ROW_BEFORE, ROW_AFTER = 80, 160


@dataclass
class Report:
    """What a verification found: lines to show, one line per problem, and what was read."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    document: dict | None = None
    fingerprint: str | None = None
    sealed_by: CertInfo | None = None
    embedded: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def _outside_event_loop(function: Callable[..., T], *args: Any) -> T:
    """pyHanko's synchronous API runs asyncio.run: never inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def _flat(text: str) -> str:
    """Text without white space: a value wrapped over two lines of a cell still matches."""
    return re.sub(r"\s+", "", text)


# ---------------------------------------------------------------- 1. the seal
def _seal(report: Report, data: bytes, cert: CertInfo | None, cert_sha256: str | None) -> None:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        embedded = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures
    except Exception as exc:  # any parser failure is one line, never a traceback
        report.problems.append(f"seal: not a readable PDF ({type(exc).__name__}: {exc})")
        return
    if not embedded:
        report.problems.append("seal: the PDF carries no seal (signature)")
        return
    signature = embedded[0]
    try:
        certificates = [signature.signer_cert] + [
            choice.chosen for choice in signature.signed_data["certificates"]
        ]
        sealed_by = cert_info(certificates[0].dump())
    except Exception as exc:
        report.problems.append(f"seal: the sealing certificate cannot be read ({exc})")
        return
    report.sealed_by = sealed_by
    expected = _expected(report, cert, cert_sha256, sealed_by)
    if cert is not None:
        root = asn1_x509.Certificate.load(cert.der)
    else:  # --cert-sha256: the certificate in the seal with that fingerprint, if any
        wanted = normalise_sha256(cert_sha256 or "")
        matching = [c for c in certificates if hashlib.sha256(c.dump()).hexdigest() == wanted]
        root = matching[0] if matching else certificates[0]  # still checks the bytes
    try:
        context = ValidationContext(trust_roots=[root], allow_fetching=False)
        status = validate_pdf_signature(signature, context)
    except Exception as exc:
        report.problems.append(f"seal: cannot be validated ({type(exc).__name__}: {exc})")
        return
    if not status.intact:
        report.problems.append("seal: the sealed content was changed (digest does not match)")
    if not status.valid:
        report.problems.append("seal: the seal's cryptographic signature is not valid")
    if status.intact and status.valid and not status.trusted and cert is not None:
        report.problems.append(
            f"seal: not made with the expected certificate ({cert.subject}, SHA-256 {cert.sha256})"
        )
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        report.problems.append(
            "seal: bytes were added or changed after sealing (seal does not cover the file)"
        )
    if not report.problems:
        when = status.signer_reported_dt
        at = f"{when.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC" if when else "no time"
        report.lines.insert(0, f"Seal: valid, by {sealed_by.subject}, at {at}")
    # Who sealed is a question apart from whether the bytes are intact (said above)
    same = cert is not None and sealed_by.sha256 == cert.sha256
    verdict = (
        "the expected certificate"
        if expected and (same or status.trusted)
        else ("NOT the expected one")
    )
    report.lines.append(
        f"Sealing certificate: {sealed_by.subject}, SHA-256 {sealed_by.sha256}: {verdict}"
    )


def _expected(
    report: Report, cert: CertInfo | None, cert_sha256: str | None, sealed_by: CertInfo
) -> bool:
    """Whether the sealing certificate is the one the auditor named; a problem line if not."""
    if cert is not None and cert_sha256 and normalise_sha256(cert_sha256) != cert.sha256:
        report.problems.append(
            f"certificate: the SHA-256 of {cert.subject} is {cert.sha256}, "
            f"not the one given ({normalise_sha256(cert_sha256)})"
        )
        return False
    if cert is None:
        wanted = normalise_sha256(cert_sha256 or "")
        if sealed_by.sha256 != wanted:
            report.problems.append(
                f"seal: made with certificate {sealed_by.subject} (SHA-256 {sealed_by.sha256}), "
                f"not the expected one (SHA-256 {wanted})"
            )
            return False
    return True


def sealing_certificate(pdf: bytes) -> CertInfo | None:
    """The certificate in the PDF's seal (not validated), or None when there is none."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        embedded = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
        return cert_info(embedded[0].signer_cert.dump()) if embedded else None
    except Exception:  # an unreadable seal shows as none; verify names the problem
        return None


# ---------------------------------------------------------------- 2. the snapshot
def _snapshot(report: Report, data: bytes, fallback: bytes | None) -> None:
    try:
        snapshot = embedded_snapshot(data)
    except Exception as exc:
        report.problems.append(f"snapshot: the attachment cannot be read ({exc})")
        return
    report.embedded = snapshot is not None
    if snapshot is None:
        if fallback is None:
            report.problems.append(
                f"snapshot: the PDF carries no embedded snapshot ({SNAPSHOT_NAME}); "
                "without it the record can only be checked against the portal's database"
            )
            return
        report.lines.append(
            "Snapshot: none embedded (sealed before snapshots were attached); "
            "the portal's stored snapshot is used"
        )
        snapshot = fallback
    report.fingerprint = hashlib.sha256(snapshot).hexdigest()
    try:
        report.document = json.loads(snapshot.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        report.problems.append(f"snapshot: not valid UTF-8 JSON ({exc})")
        return
    try:
        from pypdf import PdfReader

        keywords = str((PdfReader(io.BytesIO(data)).metadata or {}).get("/Keywords") or "")
    except Exception as exc:
        report.problems.append(f"fingerprint: the PDF's metadata cannot be read ({exc})")
        return
    if keywords.strip() != report.fingerprint:
        report.problems.append(
            f"fingerprint: the PDF's metadata says {keywords.strip() or 'nothing'}, "
            f"the snapshot hashes to {report.fingerprint}"
        )


# ---------------------------------------------------------------- 3. the printed text
def _time(iso: str | None) -> str:
    if not iso:
        return ""
    moment = datetime.datetime.fromisoformat(iso).astimezone(datetime.UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _missing(text: str, values: dict[str, str]) -> list[str]:
    return [name for name, value in values.items() if value and _flat(value) not in text]


def _unprinted_row(text: str, name: str, values: dict[str, str]) -> str | None:
    """Why one signature is not printed as in the snapshot, or None. Some occurrence of the
    printed name must have the role, meaning and time within a row's reach (a table row or a
    manifest line; the same name elsewhere, in the audit excerpt say, does not count)."""
    flat_name = _flat(name)
    found = False
    for match in re.finditer(re.escape(flat_name), text) if flat_name else ():
        found = True
        row = text[max(0, match.start() - ROW_BEFORE) : match.end() + ROW_AFTER]
        if not _missing(row, values):
            return None
    if not found:
        return "that printed name is nowhere in the PDF"
    return "no row prints that name with its " + ", ".join(values)


def _printed(report: Report, data: bytes) -> None:
    from pypdf import PdfReader

    document = report.document or {}
    try:
        pages = [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]
    except Exception as exc:
        report.problems.append(f"printed text: cannot be extracted ({exc})")
        return
    flat_pages = [_flat(page) for page in pages]
    text = "".join(flat_pages)
    unmarked = [n for n, page in enumerate(flat_pages, 1) if report.fingerprint not in page]
    if unmarked:
        report.problems.append(
            f"printed text: page(s) {', '.join(map(str, unmarked))} do not carry the fingerprint"
        )
    printed = set(re.findall(re.escape(_flat(SEAL_LABEL)) + r"([0-9a-f]{64})", text))
    if report.sealed_by is not None and printed - {report.sealed_by.sha256}:
        report.problems.append(
            f"printed text: the pages name sealing certificate {', '.join(sorted(printed))}, "
            f"but the file was sealed with {report.sealed_by.sha256}"
        )
    release = (document.get("snapshot") or {}).get("release") or {}
    lost = _missing(
        text, {"release version": release.get("version", ""), "name": release.get("name", "")}
    )
    if lost:
        report.problems.append(f"printed text: the release's {', '.join(lost)} is not printed")
    decision = document.get("decision") or {}
    lost = _missing(
        text,
        {
            "decision": decision.get("meaning_label", ""),
            "name": decision.get("name", ""),
            "role": decision.get("role", ""),
            "time": _time(decision.get("at")),
        },
    )
    if lost:
        report.problems.append(
            f"printed text: the decision by {decision.get('name')} does not print the "
            f"snapshot's {', '.join(lost)}"
        )
    for requirement in document.get("signoffs", []):
        for signature in requirement.get("signatures", []):
            values = {
                "role": requirement.get("role", ""),
                "meaning": signature.get("meaning_label", ""),
                "time": _time(signature.get("signed_at")),
            }
            why = _unprinted_row(text, signature.get("name", ""), values)
            if why:
                report.problems.append(
                    f"printed text: the {requirement.get('role')} signature by "
                    f"{signature.get('name')} ({values['meaning']}, {values['time']} UTC) is not "
                    f"printed as in the snapshot ({why})"
                )


def _describe(report: Report) -> None:
    document = report.document or {}
    release = (document.get("snapshot") or {}).get("release") or {}
    decision = document.get("decision") or {}
    report.lines.append(
        f"Release: {release.get('project')} {release.get('name')} ({release.get('version')})"
    )
    report.lines.append(
        f"Decision: {decision.get('meaning_label', '—')} by {decision.get('name', '—')} "
        f"({decision.get('role', '—')}) at {decision.get('at_display', '—')}"
    )
    if decision.get("comment"):
        report.lines.append(f"Reason: {decision['comment']}")
    report.lines.append(f"Fingerprint: {report.fingerprint}")
    report.lines.append("Signers:")
    for requirement in document.get("signoffs", []):
        for signature in requirement.get("signatures", []):
            report.lines.append(
                f"  {requirement['role']}: {signature['name']} — {signature['meaning_label']}"
                f" at {signature['at_display']} ({signature['state']})"
            )


def verify_record_pdf(
    data: bytes,
    *,
    cert: CertInfo | None = None,
    cert_sha256: str | None = None,
    release: str | None = None,
    fallback_snapshot: bytes | None = None,
) -> Report:
    """Every check that needs only the file and the expected certificate (or its SHA-256).
    ``fallback_snapshot``: the portal's stored snapshot, used for a record sealed before
    snapshots were embedded."""
    if cert is None and not cert_sha256:
        raise ValueError("name the expected certificate: a certificate or its SHA-256")
    report = Report()
    _outside_event_loop(_seal, report, data, cert, cert_sha256)
    _snapshot(report, data, fallback_snapshot)
    if report.document is None:
        return report
    try:
        _describe(report)
        _printed(report, data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        report.problems.append(f"snapshot: not a decision record's document ({exc})")
        return report
    version = ((report.document.get("snapshot") or {}).get("release") or {}).get("version")
    if release is not None and version != release:
        report.problems.append(
            f"release: this is the record of release {version}, not of {release}"
        )
    if report.document.get("kind") != "decision":
        report.problems.append("snapshot: not a decision record (a draft is never sealed)")
    return report


# ---------------------------------------------------------------- command line
def quiet_libraries() -> None:
    """pyHanko and pypdf log a damaged file with a traceback: each problem is reported here as
    one line instead, so their loggers are silenced for a command-line run."""
    for name in ("pyhanko", "pyhanko_certvalidator", "pypdf"):
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m signoffs.verify",
        description="Verify a decision record PDF with nothing but the file and the certificate.",
    )
    parser.add_argument("file", help="the decision record PDF")
    parser.add_argument("--cert", help="the portal's signing certificate (PEM or DER)")
    parser.add_argument("--cert-sha256", help="or only its SHA-256 fingerprint (hex)")
    parser.add_argument("--release", help="fail unless the file is this release's record")
    options = parser.parse_args(argv)
    if not options.cert and not options.cert_sha256:
        parser.error("name the expected certificate: --cert FILE or --cert-sha256 HEX")
    quiet_libraries()
    path = Path(options.file)
    try:
        data = path.read_bytes()
        cert = cert_info(Path(options.cert).read_bytes()) if options.cert else None
    except (OSError, ValueError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    try:
        report = verify_record_pdf(
            data, cert=cert, cert_sha256=options.cert_sha256, release=options.release
        )
    except Exception as exc:  # the last net: one line, never a traceback
        problem = " ".join(f"cannot be verified ({type(exc).__name__}: {exc})".split())
        print(f"MISMATCH: {problem}", file=sys.stderr)
        print(f"{path.name}: NOT verified", file=sys.stderr)
        return 1
    for line in report.lines:
        print(line)
    for problem in report.problems:  # one line each, whatever a library's message holds
        print(f"MISMATCH: {' '.join(problem.split())}", file=sys.stderr)
    if report.problems:
        print(f"{path.name}: NOT verified ({len(report.problems)} problem(s))", file=sys.stderr)
        return 1
    print(f"{path.name}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
