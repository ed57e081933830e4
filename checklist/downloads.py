"""Files handed out by the portal (decision records, DRAFT records, JSON / Markdown / CSV
exports): one way to build the response, so that no download header is assembled by hand.

The version went into a file name unchecked, and ``filename*=UTF-8''evil.html`` was injected
into a DRAFT record's ``Content-Disposition`` (issue #14 point 12). Now the version has a
format (``checklist.validators.validate_version``), a file name keeps only letters, digits and
``. _ + -`` of what it is made of, and the header is Django's own
``content_disposition_header``: a quoted ASCII name with its quotes escaped, or an RFC 5987
``filename*=utf-8''…`` for any other name (a legacy version with non-ASCII letters).
"""

from __future__ import annotations

import re

from django.http import HttpResponse
from django.utils.http import content_disposition_header

# Anything but letters and digits (any script), dots, underscores, plus and hyphen: quotes,
# semicolons, spaces, slashes, backslashes, control characters.
_UNSAFE = re.compile(r"[^\w.+-]+")


def download_filename(*parts: object, extension: str) -> str:
    """``draft-record-v0.3.0.pdf`` from ("draft-record", "v0.3.0"): each part stripped of
    anything a file name or a header should not carry, joined by hyphens."""
    cleaned = (_UNSAFE.sub("_", str(part)).strip("._") or "_" for part in parts)
    return f"{'-'.join(cleaned)[:150]}.{extension}"


def attachment_response(data: bytes, *, filename: str, content_type: str) -> HttpResponse:
    """The bytes as a download named ``filename`` (the header built by Django's helper)."""
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


__all__ = ["attachment_response", "download_filename"]
