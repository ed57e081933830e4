"""Is the configured ``AUDIT_CHAIN_KEY`` the key the audit chain was written with?

Checked against the data, not against a file: the MAC of the chain's first link is computed
again with the configured key (``chain.link_mac``). A stale key file, a key copied from another
deployment or one generated a moment ago (``settings.AUDIT_CHAIN_KEY_SOURCE == "generated"``:
no key was set and no key file existed) does not give the MAC the database holds. Link 1 is the
reference because it is written once and can neither be replaced (``seq`` is unique) nor
changed or deleted (the append-only triggers); a forged link appended at the tail by someone
with INSERT rights therefore cannot stop the portal from starting (``verify_audit`` names it).

One query, read-only: the start-up gate (``dcmms_release.keys``) calls ``chain_key_problem``;
``chain_key_assert`` is for the chain itself, before it appends links (a process that never
passed the gate, e.g. a script, must not extend the chain with another key).
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from .models_audit import AuditChainEntry

FINGERPRINT_LABEL = b"dcmms audit chain key fingerprint"
_verified: set[tuple[str, str]] = set()  # (database alias, key fingerprint) found to match


class ChainKeyMismatch(RuntimeError):
    """The configured key did not write this database's audit chain."""


def key_fingerprint(key: str | None = None) -> str:
    """A short, non-secret identifier of a key, safe to print and to note in a backup log:
    HMAC-SHA256(key, a fixed label), first 16 hex digits. It does not reveal the key."""
    key = settings.AUDIT_CHAIN_KEY if key is None else key
    return hmac.new(key.encode(), FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def _first_link(using: str) -> AuditChainEntry | None:
    return AuditChainEntry.objects.using(using).filter(seq__gte=1).order_by("seq").first()


def _written_with_configured_key(link: AuditChainEntry) -> bool:
    from .chain import link_mac  # here, so that the chain may import this module

    own = link_mac(link.seq, link.table, link.row_pk, link.content_sha256, link.prev_mac)
    return hmac.compare_digest(link.mac, own)


def _source_text() -> str:
    source = getattr(settings, "AUDIT_CHAIN_KEY_SOURCE", "environment")
    if source == "environment":
        return "set in the environment"
    return "read from the key file audit_chain_key in the var folder"


def chain_key_problem(using: str = DEFAULT_DB_ALIAS) -> str | None:
    """None when the database holds no audit chain or the configured key wrote it; otherwise
    what an operator must read: which key, what the database holds, what to do."""
    first = _first_link(using)
    if first is None or _written_with_configured_key(first):
        return None
    last = AuditChainEntry.objects.using(using).order_by("-seq").first()
    links = last.seq if last else first.seq
    holds = (
        f"the database holds an audit chain of {links} link(s), the first written "
        f"{first.chained_at:%Y-%m-%d %H:%M} UTC"
    )
    todo = (
        "Restore the key from your backup (set AUDIT_CHAIN_KEY, or put the audit_chain_key "
        "file back in the var folder) and start again; `manage.py check --database default` "
        "confirms it. Never generate a new key: links made with another key cannot be "
        "verified, and verify_audit would report the whole audit trail as forged."
    )
    if getattr(settings, "AUDIT_CHAIN_KEY_SOURCE", "") == "generated":
        return (
            "AUDIT_CHAIN_KEY is missing: it is not set and there was no key file "
            f"(audit_chain_key in the var folder), but {holds}. The key generated for a fresh "
            f"checkout was discarded. {todo}"
        )
    return (
        "AUDIT_CHAIN_KEY is not the key the audit chain was written with: "
        f"{holds}, and link {first.seq} does not verify with the configured key "
        f"({_source_text()}; fingerprint {key_fingerprint()}). {todo}"
    )


def chain_key_assert(using: str = DEFAULT_DB_ALIAS) -> None:
    """Raise ``ChainKeyMismatch`` unless the configured key wrote the chain (or there is no
    chain yet). For the chain to call before it appends links: one query per process and key
    until the first success, none after."""
    memo = (using, key_fingerprint())
    if memo in _verified:
        return
    first = _first_link(using)
    if first is None:
        return  # the first link is about to be written with this key
    if not _written_with_configured_key(first):
        raise ChainKeyMismatch(chain_key_problem(using))
    _verified.add(memo)
