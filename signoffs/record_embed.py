"""The record's canonical snapshot, attached to its PDF so the file proves itself.

The sealed decision record carries, as an embedded file named ``SNAPSHOT_NAME``, the exact
canonical JSON bytes whose SHA-256 is the record's fingerprint. It is attached in the same
incremental update as the seal, before the signature is computed, so the seal covers it; the
rendered (unsealed) PDF is untouched and still renders to the same bytes.

This module imports neither Django nor the portal's settings: the offline verifier
(``signoffs.verify``) reads the attachment with it on a machine without the portal.
"""

from __future__ import annotations

import io

SNAPSHOT_NAME = "decision-record-snapshot.json"
SNAPSHOT_DESCRIPTION = (
    "Canonical JSON snapshot of the decision record (sorted keys, no insignificant white space, "
    "UTF-8); its SHA-256 is the record's fingerprint"
)


def embed_snapshot(writer, snapshot: bytes) -> None:
    """Attach ``snapshot`` to the PDF being written by a pyHanko writer (before sealing)."""
    from pyhanko.pdf_utils import embed

    data = embed.EmbeddedFileObject.from_file_data(
        writer,
        data=snapshot,
        mime_type="application/json",
        params=embed.EmbeddedFileParams(embed_size=True, embed_checksum=True),
    )
    spec = embed.FileSpec(
        file_spec_string=SNAPSHOT_NAME,
        file_name=SNAPSHOT_NAME,
        embedded_data=data,
        description=SNAPSHOT_DESCRIPTION,
    )
    embed.embed_file(writer, spec)


def embedded_snapshot(pdf: bytes) -> bytes | None:
    """The attached snapshot's bytes, or None when the PDF carries none. Raises whatever pypdf
    raises on an unreadable file: the caller reports it as one problem."""
    from pypdf import PdfReader

    attachments = PdfReader(io.BytesIO(pdf), strict=False).attachments
    found = attachments.get(SNAPSHOT_NAME) or []
    return bytes(found[-1]) if found else None
