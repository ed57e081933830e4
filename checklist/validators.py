"""What a value must look like before it is written (issue #14 points 12 and 13; docs/security.md
§2d): the release version's format, and the longest text each free-text field takes.

Both are model-level validators, so every write path that validates refuses the same values:
the admin's forms (Django runs the model's validators in ``full_clean``), the importer
(``clean_fields`` of every row, the refusal naming the file and line), and the services
(``full_clean`` before each save). A form also gets ``max_length`` (a ``maxlength`` attribute
and its own check), so the browser stops typing at the limit.

The limits are far above the longest value in the seed checklist and the bundled test
checklists (measured: item text 85 characters, criterion 56, attestation 42, risk title 38,
action 35, risk mitigation 31, notes 33); ``tests/security/test_text_limits.py`` keeps them so.
Text the portal writes itself (snapshots, failure reasons, digest summaries) is not limited.
"""

from __future__ import annotations

from django.core.validators import MaxLengthValidator, RegexValidator
from django.db import models

# ---------------------------------------------------------------- the release version
# v0.3.0, 2.1, v2.0.0-rc.1, 1.4.2+build.7: ASCII digits in one to four dot-separated parts, an
# optional leading "v", an optional "-pre-release" and "+build" of letters, digits, dots and
# hyphens. \A…\Z (not ^…$, which accepts a trailing newline) and [0-9] (not \d, which accepts
# any script's digits): the version goes into file names and headers, so nothing else passes.
VERSION_PATTERN = r"\Av?[0-9]+(\.[0-9]+){0,3}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?\Z"

validate_version = RegexValidator(
    VERSION_PATTERN,
    message=(
        "Enter a version such as v0.3.0, 2.1 or v2.0.0-rc.1: digits separated by dots, "
        "optionally a leading v, a -pre-release and a +build made of letters, digits, dots "
        "and hyphens."
    ),
    code="invalid_version",
)

# ---------------------------------------------------------------- text limits (characters)
ITEM_TEXT = 2_000  # an item's text (a task's title, a check, a metric's label)
RISK_TITLE = 1_000  # a risk's title
STATEMENT = 2_000  # an action item, a GO/NO-GO criterion, an attestation statement
NOTE = 4_000  # notes, evidence notes, a risk's mitigation
COMMENT = 2_000  # a signer's comment (also a DEFER's reason)
REASON = 1_000  # a reason typed by a person: for a change, a reopen, a revocation
EVENT_REASON = 2_000  # a signature event's reason: a typed reason and the portal's prefix


def bounded_text(limit: int, **kwargs) -> models.TextField:
    """A TextField taking at most ``limit`` characters: the form's ``max_length`` and a model
    validator (a TextField's ``max_length`` alone is never checked by ``full_clean``)."""
    return models.TextField(max_length=limit, validators=[MaxLengthValidator(limit)], **kwargs)


def length_refusals(value: str | None, *, limit: int, label: str) -> list[str]:
    """Why ``value`` is too long (empty: it is not), for services that take typed text which
    no model field validates (a reason that becomes an event's or a history row's reason)."""
    length = len(value or "")
    if length <= limit:
        return []
    return [f"{label} is at most {limit:,} characters (this one has {length:,})."]


__all__ = [
    "COMMENT",
    "EVENT_REASON",
    "ITEM_TEXT",
    "NOTE",
    "REASON",
    "RISK_TITLE",
    "STATEMENT",
    "VERSION_PATTERN",
    "bounded_text",
    "length_refusals",
    "validate_version",
]
