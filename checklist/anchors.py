"""Chain heads kept outside the database: the anchor log.

Every ``AUDIT_ANCHOR_MINUTES`` the worker's beat (``checklist.chain_anchor``) appends the audit
chain's head — sequence number, MAC, time — as one JSON line to ``AUDIT_ANCHOR_LOG`` (a file the
database's users cannot reach; ship it to write-once storage) and writes the same line to the
log. A head is appended only when the chain has moved since the last line.

``verify_audit`` checks the whole series (``anchors_problem``): every head must still be in the
chain with its MAC, and the series must only grow. Deleting the newest rows and links, or
rewriting the chain, is then detected up to the last export without a hand-made anchor.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from .chain import chain_head, head_problem

logger = logging.getLogger("dcmms.audit.anchor")


def anchors_read(path: Path) -> list[dict]:
    """The heads in an anchor file: one JSON object (``export_audit_anchor --output``) or JSON
    lines (the anchor log). Raises ValueError naming the line that is not a head."""
    text = path.read_text(encoding="utf-8")
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        lines = [(1, whole)]
    else:
        lines = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    lines.append((number, json.loads(line)))
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: not a JSON chain head ({exc})") from exc
    heads = []
    for number, head in lines:
        if not isinstance(head, dict) or not {"seq", "mac"} <= head.keys():
            raise ValueError(f"{path}:{number}: a chain head needs 'seq' and 'mac'")
        heads.append({**head, "line": number})
    return heads


def anchors_problem(heads: list[dict], using: str = DEFAULT_DB_ALIAS) -> str | None:
    """None when the chain holds every head of the series and the series only grows; otherwise
    the first problem, naming the line."""
    previous = 0
    for head in heads:
        where = f"line {head.get('line', '?')} (link {head['seq']}, {head.get('exported_at', '')})"
        if int(head["seq"]) < previous:
            return f"{where}: the series goes back (link {previous} before it): edited anchor log"
        previous = int(head["seq"])
        problem = head_problem(head, using)
        if problem is not None:
            return f"{where}: {problem}"
    return None


def anchor_append(path: Path, using: str = DEFAULT_DB_ALIAS) -> dict | None:
    """Append the chain head to the anchor log (and the log) when it moved since the last line;
    returns the head appended, or None when the chain has not moved."""
    head = chain_head(using)
    last = _last_seq(path)
    if last is not None and last > head["seq"]:
        logger.error(
            "audit chain head is link %s but the anchor log %s holds link %s: the chain was "
            "truncated (run verify_audit)",
            head["seq"],
            path,
            last,
        )
        return None
    if last is not None and last == head["seq"]:
        return None
    line = {**head, "exported_at": timezone.now().isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, sort_keys=True) + "\n")
        out.flush()
        os.fsync(out.fileno())
    logger.info("audit chain head: link %s, MAC %s", line["seq"], line["mac"])
    return line


def _last_seq(path: Path) -> int | None:
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 4096))
            tail = log.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(tail):
        try:
            return int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return None
