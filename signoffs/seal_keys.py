"""Are the configured decision-record signing key and certificate the ones that sealed the
records in this database?

Checked against the data: the certificate that sealed the newest sealed record is read from its
seal (the CMS signature in the PDF's ``/Contents``: the signer's certificate, found by issuer and
serial number) and compared byte for byte with ``DECISION_SIGNING_CERT``; the key must belong to
that certificate. A certificate generated a moment ago (``ensure_signing_cert``) or copied from
another deployment does not match. One query (the newest sealed record), more only to word a
refusal. A deliberate renewal names the certificate it replaces in
``DECISION_SIGNING_PREVIOUS_CERT`` until the new one has sealed a record.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from .models import DecisionRecord
from .signing_cert import signing_paths

SIGNATURE_CONTENTS = re.compile(rb"/Contents\s*<([0-9A-Fa-f]+)>")
TODO = (
    "Restore the signing key and certificate from your backup (DECISION_SIGNING_KEY, "
    "DECISION_SIGNING_CERT) and start again. Never generate a new pair (ensure_signing_cert "
    "refuses here): verify_record checks sealed records against the configured certificate."
)


def sealer_certificate(pdf: bytes) -> bytes | None:
    """The DER of the certificate that made the PDF's (last) seal, or None if none is found."""
    from asn1crypto import cms

    found = SIGNATURE_CONTENTS.findall(pdf)
    if not found:
        return None
    try:
        signed = cms.ContentInfo.load(bytes.fromhex(found[-1].decode()))["content"]
        sid = signed["signer_infos"][0]["sid"]
        for choice in signed["certificates"]:
            cert = choice.chosen
            if sid.name == "issuer_and_serial_number":
                wanted = sid.chosen
                if (cert.issuer, cert.serial_number) == (
                    wanted["issuer"],
                    wanted["serial_number"].native,
                ):
                    return cert.dump()
            elif cert.key_identifier == sid.chosen.native:
                return cert.dump()
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return None


def _der(path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)


def _describe(der: bytes | None) -> str:
    if der is None:
        return "no readable seal"
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    return f"“{cert.subject.rfc4514_string()}”, serial {cert.serial_number:x}"


def _pair_problem(key_path: Path, cert_path: Path) -> str | None:
    """Why the key and certificate cannot seal together (unreadable, or not one pair)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (ValueError, TypeError, OSError) as exc:
        return (
            f"DECISION_SIGNING_KEY ({key_path.name}) or DECISION_SIGNING_CERT ({cert_path.name}) "
            f"cannot be read ({type(exc).__name__})"
        )
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        return (
            f"DECISION_SIGNING_KEY ({key_path.name}) is not the key of DECISION_SIGNING_CERT "
            f"({cert_path.name})"
        )
    return None


def signing_key_problem(using: str = DEFAULT_DB_ALIAS) -> str | None:
    """None when no record is sealed, or when the configured key and certificate sealed the
    newest sealed record; otherwise which file is wrong, what the database holds, what to do."""
    newest = (
        DecisionRecord.objects.using(using)
        .filter(pdf__isnull=False)
        .order_by("-pk")
        .values_list("pk", "rendered_at", "pdf")
        .first()
    )
    if newest is None:
        return None
    pk, rendered_at, pdf = newest
    key_path, cert_path = signing_paths()

    def holds() -> str:  # a second query, only to word a refusal
        sealed = DecisionRecord.objects.using(using).filter(pdf__isnull=False).count()
        when = f" sealed {rendered_at:%Y-%m-%d %H:%M} UTC" if rendered_at else ""
        return f"the database holds {sealed} sealed decision record(s), the newest #{pk}{when}"

    missing = [
        f"{name} is missing ({path.name} not found)"
        for name, path in (("DECISION_SIGNING_KEY", key_path), ("DECISION_SIGNING_CERT", cert_path))
        if not path.is_file()
    ]
    if missing:
        return f"{' and '.join(missing)}, but {holds()}. {TODO}"
    pair = _pair_problem(key_path, cert_path)
    if pair is not None:
        return f"{pair}, and {holds()}. {TODO}"
    sealer = sealer_certificate(bytes(pdf))
    accepted = {_der(cert_path)}
    previous = getattr(settings, "DECISION_SIGNING_PREVIOUS_CERT", "")
    if previous and Path(previous).is_file():
        try:
            accepted.add(_der(Path(previous)))
        except ValueError:
            pass  # an unreadable previous certificate accepts nothing
    if sealer in accepted:
        return None
    return (
        f"DECISION_SIGNING_CERT is not the certificate that sealed the newest decision record: "
        f"{holds()}, sealed by {_describe(sealer)}; configured {_describe(_der(cert_path))}. "
        f"{TODO} If you renewed the certificate on purpose, set DECISION_SIGNING_PREVIOUS_CERT "
        "to the certificate it replaces until the new one has sealed a record."
    )
