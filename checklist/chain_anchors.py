"""A chain head kept outside the chain's table — an anchor file, or the head a decision record
embeds — checked against the audit hash chain (``checklist.chain``).

``head_problem`` answers one question cheaply (a query or two, no walk): does the chain still
hold the link with that sequence number and that MAC, and is that link's MAC its own? A chain
truncated before the head, a link deleted or rewritten at the head, or a link made without the
key is named; the walk over the whole chain (every link, every row) stays ``chain.verify``.
"""

from __future__ import annotations

import hmac

from django.db import DEFAULT_DB_ALIAS

from .chain import GENESIS, chain_head, link_mac
from .models_audit import AuditChainEntry


def head_problem(head: dict, using: str = DEFAULT_DB_ALIAS) -> str | None:
    """Why the chain does not hold ``head`` ({"seq", "mac"}), or None when it does."""
    seq, mac = int(head["seq"]), str(head["mac"])
    if seq == 0:
        return None if mac == GENESIS else "link 0 is the empty chain but the MAC is not"
    link = AuditChainEntry.objects.using(using).filter(seq=seq).first()
    if link is None:
        last = chain_head(using)["seq"]
        if last < seq:
            return f"link {seq} is missing: the chain ends at link {last} (truncated)"
        return f"link {seq} is missing (the chain goes on to link {last}): links were deleted"
    if not hmac.compare_digest(link.mac, mac):
        return f"link {seq} has another MAC than the head kept: the chain was rewritten"
    own = link_mac(link.seq, link.table, link.row_pk, link.content_sha256, link.prev_mac)
    if not hmac.compare_digest(link.mac, own):
        return f"link {seq}: its MAC is wrong (forged or altered link)"
    return None
