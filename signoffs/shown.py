"""What a signer was shown (21 CFR Part 11 §11.50, §11.70): a signature is linked to the
version of the release its signer read, never to one that changed while they were reading.

The sign page fingerprints the release's content as it renders it — the SHA-256 of the canonical
JSON of ``signoffs.exports.release_content``: the release, its sections, items, risks, action
items, sign-off requirements and criteria — and carries that fingerprint and the time it was
taken in a token signed with Django's ``signing`` (the server's secret key), bound to the
requirement and the signer, so a posted fingerprint or time cannot be made up. ``signature_give``
compares it, under the release's row lock, with the content as it stands and refuses when they
differ (``ReleaseChanged``); the page then lists what changed since the time in the token.

The status summary is left out of the fingerprint on purpose: it is derived from the items plus
the state of the other signatures, and another stakeholder signing while you read changes what
the release says no more than it changes what you affirm (the gate still decides GO on the
signatures as they are). The signature itself still records the SHA-256 of the whole snapshot.

Reading a 10,000-item release to fingerprint it costs about as much as the rest of the page, so
the page keeps the fingerprint in Django's cache under the release's *content stamp* (how many
history records each content model has for the release, the newest one's id, and today's date,
which the overdue flags depend on): every write of the content writes a history record, so a
changed release gets a new stamp. The cache only ever saves work: the service always reads the
content itself under the lock, so a cached fingerprint that is wrong (an edit by SQL, which
writes no history) can only make a signing refuse, and that refusal forgets it.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import Count, Max
from django.utils import timezone

from checklist.models import Release
from dcmms_release.cache_guard import cache_delete, cache_get, cache_set

from .changes import CONTENT_MODELS
from .changes import _scope as content_scope
from .exports import release_content, snapshot_sha256

SALT = "signoffs.shown"
CACHE_SECONDS = 24 * 3600
RELEASE_CHANGED = (
    "The release changed while you were reading: see what changed below, review it and sign "
    "again. Nothing was signed."
)
NOT_SHOWN = (
    "This page did not say which version of the release you read: reload the sign page, review "
    "it and sign again. Nothing was signed."
)
NOT_ISSUED = (
    "The version of the release on this page could not be verified: reload the sign page, "
    "review it and sign again. Nothing was signed."
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Shown:
    """A version of the release's content: its fingerprint and when it was taken."""

    sha256: str
    at: datetime.datetime


class ReleaseChanged(ValidationError):
    """The release's content is no longer the one the signer was shown; ``current`` is the
    content as the refusing service found it, for the page that shows what changed."""

    def __init__(self, current: Shown) -> None:
        super().__init__(RELEASE_CHANGED, code="release_changed")
        self.current = current


def content_fingerprint(content: dict[str, Any]) -> str:
    """The SHA-256 of the canonical JSON of ``release_content``."""
    return snapshot_sha256(content)


def content_stamp(release: Release) -> str:
    """What changes whenever the release's content may have: per content model, how many
    history records it has for the release and the newest one's id (history is append-only:
    every committed write adds one), and today's date. One aggregate query per model."""
    parts = []
    for model in CONTENT_MODELS:
        stamp = model.history.filter(content_scope(model, release)).aggregate(
            records=Count("history_id"), newest=Max("history_id")
        )
        parts.append(f"{stamp['records']}.{stamp['newest']}")
    return ":".join([*parts, timezone.localdate().isoformat()])


def _cache_key(release: Release) -> str:
    return f"signoffs:shown:v1:{release.pk}"


def release_shown(release: Release) -> Shown:
    """The release's content fingerprint now, for the sign page. The time is taken first and
    the stamp before the content, so that a change committed meanwhile is listed as after the
    time and gives a new stamp (never a stamp that stands for content it does not hold)."""
    at = timezone.now()
    stamp = content_stamp(release)
    cached = cache_get(_cache_key(release))  # a miss while the cache is down
    if isinstance(cached, tuple) and len(cached) == 2 and cached[0] == stamp:
        return Shown(cached[1], at)
    sha256 = content_fingerprint(release_content(release))
    cache_set(_cache_key(release), (stamp, sha256), timeout=CACHE_SECONDS)
    return Shown(sha256, at)


def release_shown_forget(release: Release) -> None:
    """Drop the cached fingerprint: a signing found the content differs from it."""
    cache_delete(_cache_key(release))


def shown_token(shown: Shown, *, requirement_id: int, user_id: int) -> str:
    """The fingerprint and its time, signed for this requirement and this signer."""
    payload = {
        "sha256": shown.sha256,
        "at": shown.at.isoformat(),
        "requirement": requirement_id,
        "user": user_id,
    }
    return signing.dumps(payload, salt=SALT, compress=False)


def shown_read(token: str, *, requirement_id: int, user_id: int) -> Shown | None:
    """The version a token of this page names, or None when the portal did not issue it to this
    signer for this requirement (altered, made up, or taken from another page)."""
    try:
        payload = signing.loads(token, salt=SALT)
        sha256, at = payload["sha256"], datetime.datetime.fromisoformat(payload["at"])
        issued_for = (payload["requirement"], payload["user"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if issued_for != (requirement_id, user_id) or not isinstance(sha256, str):
        return None
    if not _SHA256.fullmatch(sha256) or timezone.is_naive(at):
        return None
    return Shown(sha256, at)
