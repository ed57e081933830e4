"""What identifies a certificate to an auditor: its subject and the SHA-256 of its DER bytes
(the fingerprint printed on the record's pages and on the admin's certificate page).

Imports neither Django nor the portal's settings (used by the offline verifier).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# How the record's footer names the sealing certificate (signoffs.pdf_seal_info; verify reads it)
SEAL_LABEL = "Sealing certificate SHA-256:"


@dataclass(frozen=True)
class CertInfo:
    """A certificate as shown to an auditor."""

    subject: str
    sha256: str  # lowercase hex of SHA-256 over the DER encoding
    not_before: str
    not_after: str
    der: bytes

    @property
    def pem(self) -> bytes:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        return x509.load_der_x509_certificate(self.der).public_bytes(Encoding.PEM)


def sha256_colons(hex_digest: str) -> str:
    """'AB:CD:…', the way certificate viewers (and openssl -fingerprint) print it."""
    upper = hex_digest.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


def normalise_sha256(text: str) -> str:
    """A fingerprint as typed or copied (colons, spaces, any case) as lowercase hex."""
    return "".join(ch for ch in text.lower() if ch in "0123456789abcdef")


def cert_info(data: bytes) -> CertInfo:
    """Parse a PEM or DER certificate. Raises ValueError when it is neither."""
    from cryptography import x509

    if b"-----BEGIN CERTIFICATE-----" in data:
        cert = x509.load_pem_x509_certificate(data)
    else:
        cert = x509.load_der_x509_certificate(data)
    from cryptography.hazmat.primitives.serialization import Encoding

    der = cert.public_bytes(Encoding.DER)
    return CertInfo(
        subject=", ".join(f"{a.rfc4514_attribute_name}={a.value}" for a in cert.subject),
        sha256=hashlib.sha256(der).hexdigest(),
        not_before=f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC",
        not_after=f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC",
        der=der,
    )
