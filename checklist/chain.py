"""A keyed hash chain over the audit records, so that tampering by someone who can write the
database (even past the append-only triggers) is detected: an edited row, a deleted row, a
reordered or forged link, a row the portal did not write, and — against the anchors exported
outside the database (``checklist.anchors``) — a truncated tail.

Each protected row gets one link (``AuditChainEntry``): its table and primary key, the SHA-256
of its canonical content, the previous link's MAC, and its own MAC = HMAC-SHA256 with
``AUDIT_CHAIN_KEY`` (from the environment; never stored in the database) over all of these and
its sequence number. Without the key no valid link can be made, so a forged row cannot be given
one and a broken chain cannot be re-computed.

Which rows: every history row, signature events, audit events, and the parts of signatures and
decision records that never change (the same columns the triggers freeze).

When: **in the transaction that writes them**, just before its COMMIT. Every write of a protected
row by the portal marks the row (``chain_mark``: ``post_save``, simple-history's m2m-history
signal, and the import's bulk writes, which mark the keys they wrote); the database engine
(``dcmms_release.db``) calls ``chain_flush`` before COMMIT, which links exactly the marked rows.
Nothing ever links a row it did not see written: a row inserted straight into a table (by the
runtime role, which may INSERT, or by the owner) stays without a link, and ``verify`` reports it
as not written by the portal. There is no sweep that adopts unlinked rows.

Purges: the retention purge (``checklist.retention``) deletes chained rows but never their links.
It writes an ``AuditPurge`` marker listing exactly what it removed and links it itself, in its own
transaction and with the key (``chain_link_purge``); ``verify`` accepts a missing row only when a
marker with a valid link after the row's link lists it, and reports a marker without a valid link
as forged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from base64 import b64encode
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.models import Model
from django.db.models.signals import post_save
from simple_history.signals import post_create_historical_m2m_records

from dcmms_release.db import before_commit

from .chain_keys import chain_key_assert
from .models_audit import AuditChainEntry, AuditPurge

GENESIS = "0" * 64
CHECK_CHUNK = 500  # keys per IN (...) when linking or checking rows
LOCK_KEY = 0x0DC3_A0D1  # PostgreSQL advisory lock serialising appends to the chain
_MARKS = "audit_chain_marks"  # in connection.tx_state: {table: keys written}
FROZEN = {
    "signoffs.Signature": None,  # every column except state
    "signoffs.DecisionRecord": (
        "id",
        "release",
        "signature",
        "snapshot_json",
        "snapshot_sha256",
        "created_at",
    ),
}


# ---------------------------------------------------------------- what is chained
def chained_models() -> list[type[Model]]:
    from .triggers import FULLY_PROTECTED, OUR_APPS

    found = [
        m
        for m in apps.get_models()
        if m._meta.app_label in OUR_APPS and m.__name__.startswith("Historical")
    ]
    found += [  # the chain itself is not chained; purge markers are linked by the purge only
        apps.get_model(label)
        for label in FULLY_PROTECTED
        if label not in ("checklist.AuditChainEntry", "checklist.AuditPurge")
    ]
    found += [apps.get_model(label) for label in FROZEN]
    return sorted(found, key=lambda m: m._meta.db_table)


def _columns(model: type[Model]) -> list[str]:
    label = model._meta.label
    if label == "signoffs.Signature":
        return [f.attname for f in model._meta.concrete_fields if f.name != "state"]
    if label in FROZEN:
        return [model._meta.get_field(name).attname for name in FROZEN[label]]
    return [f.attname for f in model._meta.concrete_fields]


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return b64encode(bytes(value)).decode()
    return value


def content_sha256(row: dict) -> str:
    """SHA-256 of the row's canonical JSON (sorted keys, UTF-8, no whitespace)."""
    canonical = json.dumps(
        {key: _plain(value) for key, value in row.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def link_mac(seq: int, table: str, row_pk: int, content: str, prev_mac: str) -> str:
    message = f"{seq}|{table}|{row_pk}|{content}|{prev_mac}".encode()
    return hmac.new(settings.AUDIT_CHAIN_KEY.encode(), message, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- appending
def _lock(using: str) -> None:
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def _link(using: str, marks: dict[str, set[int]]) -> int:
    """Link the marked rows ({table: keys}) that have no link yet, in table and key order, with
    one bulk insert; the caller's transaction holds the result. Returns how many were linked."""
    _lock(using)
    chain_key_assert(using)  # never extend a chain written with another key
    last = AuditChainEntry.objects.using(using).order_by("-seq").first()
    seq, prev = (last.seq, last.mac) if last else (0, GENESIS)
    links: list[AuditChainEntry] = []
    for model in chained_models():
        table = model._meta.db_table
        keys = sorted(marks.get(table, ()))
        pk = model._meta.pk.attname
        for start in range(0, len(keys), CHECK_CHUNK):
            chunk = keys[start : start + CHECK_CHUNK]
            linked = AuditChainEntry.objects.using(using).filter(table=table, row_pk__in=chunk)
            rows = (
                model._default_manager.using(using)
                .filter(pk__in=chunk)
                .exclude(pk__in=linked.values("row_pk"))
                .order_by(pk)
                .values(*_columns(model))
            )
            for row in rows:
                seq += 1
                content = content_sha256(row)
                mac = link_mac(seq, table, row[pk], content, prev)
                links.append(
                    AuditChainEntry(
                        seq=seq,
                        table=table,
                        row_pk=row[pk],
                        content_sha256=content,
                        prev_mac=prev,
                        mac=mac,
                    )
                )
                prev = mac
    AuditChainEntry.objects.using(using).bulk_create(links, batch_size=1000)
    return len(links)


def chain_flush(using: str = DEFAULT_DB_ALIAS) -> int:
    """Link now the rows the current transaction marked (before COMMIT the engine does this by
    itself; the decision record and the purge call it to fix the head mid-transaction)."""
    connection = connections[using]
    marks = connection.tx_state.pop(_MARKS, None)
    if not marks:
        return 0
    if not connection.in_atomic_block and connection.get_autocommit():
        with transaction.atomic(using=using):
            return _link(using, marks)
    return _link(using, marks)


def _flush_before_commit(connection) -> None:
    if connection.tx_state.get(_MARKS):
        chain_flush(connection.alias)


def chain_link_purge(marker: AuditPurge, using: str = DEFAULT_DB_ALIAS) -> AuditChainEntry:
    """Link a purge's marker, after linking what the purge wrote so far (its own audit event).
    Only inside the purge's transaction: a marker is linked with the key when it is written, or
    never — nothing else links markers, so one written later is a forgery."""
    if not connections[using].in_atomic_block:
        raise RuntimeError("A purge marker is linked inside the purge's own transaction.")
    chain_flush(using)
    _lock(using)  # held to the end of the transaction, like every append
    chain_key_assert(using)
    last = AuditChainEntry.objects.using(using).order_by("-seq").first()
    seq, prev = (last.seq + 1, last.mac) if last else (1, GENESIS)
    table = AuditPurge._meta.db_table
    row = AuditPurge.objects.using(using).filter(pk=marker.pk).values(*_columns(AuditPurge)).get()
    content = content_sha256(row)
    return AuditChainEntry.objects.using(using).create(
        seq=seq,
        table=table,
        row_pk=marker.pk,
        content_sha256=content,
        prev_mac=prev,
        mac=link_mac(seq, table, marker.pk, content, prev),
    )


def chain_mark(model: type[Model], keys: Iterable[int], using: str = DEFAULT_DB_ALIAS) -> None:
    """The portal wrote these rows of a chained table in the current transaction: they are linked
    before it commits. Outside a transaction (autocommit) they are linked at once."""
    connection = connections[using]
    if not hasattr(connection, "tx_state"):
        raise RuntimeError(
            "The database ENGINE must be one of dcmms_release.db's (settings.DATABASES): the "
            "audit chain links rows before COMMIT."
        )
    keys = [key for key in keys if key is not None]
    if not keys:
        return
    marks = connection.tx_state.setdefault(_MARKS, {})
    marks.setdefault(model._meta.db_table, set()).update(keys)
    if not connection.in_atomic_block and connection.get_autocommit():
        chain_flush(using)


def _mark_saved(sender, instance, created, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    if created:
        chain_mark(sender, [instance.pk], using)


def _mark_m2m_history(sender, created_rows, **kwargs) -> None:
    keys = [row.pk for row in created_rows]
    if None in keys:  # a backend that does not return keys from a bulk insert
        raise RuntimeError(f"{sender._meta.label}: history rows were written without their keys")
    chain_mark(sender, keys, router.db_for_write(sender))


def connect() -> None:
    for model in chained_models():
        post_save.connect(
            _mark_saved, sender=model, dispatch_uid=f"dcmms_chain_{model._meta.label}"
        )
    post_create_historical_m2m_records.connect(_mark_m2m_history, dispatch_uid="dcmms_chain_m2m")
    before_commit(_flush_before_commit)


def rows_unlinked_or_changed(
    model: type[Model], keys: Iterable[int], using: str = DEFAULT_DB_ALIAS
) -> str | None:
    """None when every row of ``model`` with these keys has a link and still matches it (a
    chained model only); otherwise names the first that does not — for the retention purge,
    which must not delete rows whose dates or keys were edited to make them look due."""
    table, pk = model._meta.db_table, model._meta.pk.attname
    ordered = sorted(keys)
    for start in range(0, len(ordered), CHECK_CHUNK):
        chunk = ordered[start : start + CHECK_CHUNK]
        links = dict(
            AuditChainEntry.objects.using(using)
            .filter(table=table, row_pk__in=chunk)
            .values_list("row_pk", "content_sha256")
        )
        rows = model._default_manager.using(using).filter(pk__in=chunk).values(*_columns(model))
        for row in rows:
            if row[pk] not in links:
                return f"{table} #{row[pk]}: has no link in the audit chain"
            if content_sha256(row) != links[row[pk]]:
                return f"{table} #{row[pk]}: changed since it was linked into the audit chain"
    return None


# ---------------------------------------------------------------- head and verification
def chain_head(using: str = DEFAULT_DB_ALIAS) -> dict:
    """The last link: what an anchor file and a decision record keep outside the table."""
    last = AuditChainEntry.objects.using(using).order_by("-seq").first()
    return {"seq": last.seq, "mac": last.mac} if last else {"seq": 0, "mac": GENESIS}


def head_problem(head: dict, using: str = DEFAULT_DB_ALIAS) -> str | None:
    """Why the chain does not hold ``head`` ({"seq", "mac"}: an anchor file, or the head a
    decision record embeds), or None when it does: the link with that sequence number exists,
    has that MAC, and its MAC is its own. A query or two, no walk (that is ``verify``)."""
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


@dataclass(frozen=True)
class Problem:
    seq: int
    message: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.message}" if self.seq else self.message


def _purged_ranges(purged) -> list[tuple[str, int, int]]:
    """A marker's (table, first key, last key) runs; nothing for a malformed (forged) one."""
    try:
        return [(str(t), int(lo), int(hi)) for t, runs in purged.items() for lo, hi in runs]
    except (AttributeError, TypeError, ValueError):
        return []


class _Purged:
    """What the purge markers account for. Genuine markers (a valid link, the row unchanged since)
    cover a row listed in them when linked after it; they are held as sorted key ranges per table,
    not as keys, so memory grows with the purges' ranges, not their rows. Markers that are not
    genuine cover nothing; they are kept only to name them when a row they list is missing."""

    def __init__(self) -> None:
        self._ranges: dict[str, list[tuple[int, int, int]]] = {}
        self._starts: dict[str, list[int]] = {}
        self.false: list[tuple[str, list[tuple[str, int, int]]]] = []

    def add(self, marker_seq: int, purged) -> None:
        for table, lo, hi in _purged_ranges(purged):
            self._ranges.setdefault(table, []).append((lo, hi, marker_seq))

    def done(self) -> _Purged:
        for table, ranges in self._ranges.items():
            ranges.sort()
            self._starts[table] = [lo for lo, _, _ in ranges]
        return self

    def covers(self, table: str, row_pk: int, link_seq: int) -> bool:
        ranges = self._ranges.get(table)
        if not ranges:
            return False
        at = bisect_right(self._starts[table], row_pk) - 1  # a key is purged once: no overlaps
        return at >= 0 and ranges[at][1] >= row_pk and ranges[at][2] > link_seq

    def claimed_by(self, table: str, row_pk: int) -> str:
        for who, ranges in self.false:
            if any(t == table and lo <= row_pk <= hi for t, lo, hi in ranges):
                return f" (listed by {who})"
        return ""


def _purges(using: str) -> _Purged:
    """Every purge marker, sorted into genuine and not. Where a marker's link stands in the
    chain is checked by the walk, like any other link."""
    purged = _Purged()
    table = AuditPurge._meta.db_table
    linked: set[int] = set()
    for link in AuditChainEntry.objects.using(using).filter(table=table).order_by("seq"):
        linked.add(link.row_pk)
        own = link_mac(link.seq, link.table, link.row_pk, link.content_sha256, link.prev_mac)
        row = AuditPurge.objects.using(using).filter(pk=link.row_pk).values(*_columns(AuditPurge))
        row = row.first()
        if row is None:
            continue
        if hmac.compare_digest(link.mac, own) and content_sha256(row) == link.content_sha256:
            purged.add(link.seq, row["purged"])
        else:
            who = f"purge marker #{link.row_pk}, which does not match its link, entry {link.seq}"
            purged.false.append((f"{who}: altered or forged", _purged_ranges(row["purged"])))
    for pk, rows in (
        AuditPurge.objects.using(using).exclude(pk__in=linked).values_list("pk", "purged")
    ):
        purged.false.append(
            (f"purge marker #{pk}, which has no link: forged", _purged_ranges(rows))
        )
    return purged.done()


def verify(anchor: dict | None = None, using: str = DEFAULT_DB_ALIAS) -> tuple[int, Problem | None]:
    """Walk the chain from the start; return (links checked, the first problem or None).

    A row that is gone is a deletion unless a purge marker, linked after the row's link with a
    valid MAC and unchanged since, lists it; a marker that has no link is a forgery."""
    by_table = {model._meta.db_table: model for model in [*chained_models(), AuditPurge]}
    purged = _purges(using)
    expected_seq, prev = 1, GENESIS
    checked = 0
    for link in AuditChainEntry.objects.using(using).order_by("seq").iterator(chunk_size=2000):
        where = f"{link.table} #{link.row_pk}"
        if link.seq != expected_seq:
            return checked, Problem(
                expected_seq, f"missing (the next link is {link.seq}): links were deleted"
            )
        if link.prev_mac != prev:
            return checked, Problem(link.seq, f"{where}: does not follow the previous link")
        if not hmac.compare_digest(
            link.mac, link_mac(link.seq, link.table, link.row_pk, link.content_sha256, prev)
        ):
            return checked, Problem(link.seq, f"{where}: MAC is wrong (forged or altered link)")
        model = by_table.get(link.table)
        if model is None:
            return checked, Problem(link.seq, f"{where}: not a chained table")
        row = model._default_manager.using(using).filter(pk=link.row_pk).values(*_columns(model))
        row = row.first()
        if row is None and not purged.covers(link.table, link.row_pk, link.seq):
            claim = purged.claimed_by(link.table, link.row_pk)
            return checked, Problem(link.seq, f"{where}: the row was deleted{claim}")
        if row is not None and content_sha256(row) != link.content_sha256:
            return checked, Problem(link.seq, f"{where}: the row was changed")
        prev = link.mac
        expected_seq += 1
        checked += 1
    markers = AuditChainEntry.objects.using(using).filter(table=AuditPurge._meta.db_table)
    forged = AuditPurge.objects.using(using).exclude(pk__in=markers.values("row_pk"))
    forged = forged.order_by("pk").first()
    if forged is not None:
        return checked, Problem(
            0,
            f"{AuditPurge._meta.db_table} #{forged.pk}: a purge marker with no link "
            "(written without the key: forged)",
        )
    if anchor is not None:
        problem = head_problem(anchor, using)
        if problem is not None:
            return checked, Problem(int(anchor["seq"]), f"differs from the anchor: {problem}")
    return checked, None
