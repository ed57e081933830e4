"""The seal on a decision record: the key and certificate from settings (DECISION_SIGNING_KEY,
DECISION_SIGNING_CERT), a self-signed development pair when none is configured, sealing a PDF
with a PAdES signature (pyHanko) and validating that seal offline against that certificate as
the only trust root. A seal is valid when the signed bytes are intact, cover the whole file and
chain to the configured certificate.

Per PITFALLS: the certificate carries the non-repudiation key usage, trust roots are passed
explicitly, nothing fetches revocation data, and oscrypto is never imported here.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

DEV_SUBJECT = "dCMMS Release Portal decision records (development)"
SEAL_FIELD = "DecisionRecordSeal"


class SealError(Exception):
    """The record cannot be sealed: the key or certificate is missing or unusable."""


def signing_paths() -> tuple[Path, Path]:
    """(key, certificate) as configured."""
    return Path(settings.DECISION_SIGNING_KEY), Path(settings.DECISION_SIGNING_CERT)


def ensure_signing_cert(*, key_path: Path | None = None, cert_path: Path | None = None) -> bool:
    """Create a self-signed development key and certificate at the configured paths when
    neither exists. Returns True when it created them. A half-configured pair (one file
    present, the other missing) is refused rather than silently replaced."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    default_key, default_cert = signing_paths()
    key_path = key_path or default_key
    cert_path = cert_path or default_cert
    if key_path.exists() and cert_path.exists():
        return False
    if key_path.exists() or cert_path.exists():
        raise ImproperlyConfigured(
            f"Only one of the signing key ({key_path.name}) and certificate ({cert_path.name}) "
            "exists; configure both or remove the other."
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, DEV_SUBJECT),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dCMMS (development, self-signed)"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # non-repudiation: a seal on a record
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def _signer():
    from pyhanko.sign import signers

    key_path, cert_path = signing_paths()
    missing = [p.name for p in (key_path, cert_path) if not p.exists()]
    if missing:
        raise SealError(
            f"The decision-record signing key or certificate is missing ({', '.join(missing)}); "
            "run `manage.py ensure_signing_cert` or set DECISION_SIGNING_KEY/_CERT."
        )
    signer = signers.SimpleSigner.load(str(key_path), str(cert_path))
    if signer is None:
        raise SealError("The decision-record signing key or certificate cannot be read.")
    return signer


def _outside_event_loop(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """pyHanko's synchronous API runs its own event loop (asyncio.run), which cannot start in a
    thread that already runs one (an ASGI server, a browser-test driver): run it in a short-lived
    worker thread there."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def seal_pdf(
    pdf: bytes,
    *,
    reason: str,
    location: str = "dCMMS Release Portal",
    snapshot: bytes | None = None,
) -> bytes:
    """The PDF with a PAdES signature over the whole file, by the configured key. ``snapshot``
    (the record's canonical JSON) is attached in the same update, before signing, so the seal
    covers it (signoffs.record_embed)."""
    return _outside_event_loop(_seal_pdf, pdf, reason=reason, location=location, snapshot=snapshot)


def _seal_pdf(pdf: bytes, *, reason: str, location: str, snapshot: bytes | None) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    from .record_embed import embed_snapshot

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    if snapshot is not None:
        embed_snapshot(writer, snapshot)
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
    )
    out = signers.sign_pdf(writer, meta, signer=_signer())
    return out.getvalue()


@dataclass
class SealCheck:
    """What a seal check found: ok, the signer's subject and time, and each problem."""

    ok: bool
    signer: str = ""
    signed_at: datetime.datetime | None = None
    problems: list[str] = field(default_factory=list)


def trust_root():
    from pyhanko.keys import load_cert_from_pemder

    _, cert_path = signing_paths()
    if not cert_path.exists():
        raise SealError(f"The configured signing certificate ({cert_path.name}) is missing.")
    return load_cert_from_pemder(str(cert_path))


def configured_certificate():
    """The configured signing certificate as an auditor identifies it (subject, SHA-256):
    printed on every page of a record, shown in the admin and offered for download."""
    from .cert_info import cert_info

    _, cert_path = signing_paths()
    if not cert_path.exists():
        raise SealError(f"The configured signing certificate ({cert_path.name}) is missing.")
    try:
        return cert_info(cert_path.read_bytes())
    except ValueError as exc:
        raise SealError(f"The configured signing certificate cannot be read ({exc}).") from exc


def seal_check(pdf: bytes) -> SealCheck:
    """Validate the PDF's seal offline with the configured certificate as the only trust root:
    intact (the signed bytes hash to what was signed), covering the whole file (nothing
    appended after sealing) and trusted (signed by that certificate)."""
    return _outside_event_loop(_seal_check, pdf)


def _seal_check(pdf: bytes) -> SealCheck:
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        embedded = reader.embedded_signatures
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        return SealCheck(ok=False, problems=[f"not a readable PDF ({exc})"])
    if not embedded:
        return SealCheck(ok=False, problems=["the PDF carries no seal (signature)"])
    context = ValidationContext(trust_roots=[trust_root()], allow_fetching=False)
    try:
        status = validate_pdf_signature(embedded[0], context)
    except (SignatureValidationError, PdfReadError, ValueError, KeyError) as exc:
        return SealCheck(ok=False, problems=[f"the seal cannot be validated ({exc})"])
    problems = []
    if not status.intact:
        problems.append("the sealed content was changed (digest does not match)")
    if not status.valid:
        problems.append("the seal's cryptographic signature is not valid")
    if status.intact and status.valid and not status.trusted:
        problems.append("the seal was not made with the configured signing certificate")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        problems.append("bytes were added or changed after sealing (seal does not cover the file)")
    return SealCheck(
        ok=not problems,
        signer=status.signing_cert.subject.human_friendly,
        signed_at=status.signer_reported_dt,
        problems=problems,
    )
