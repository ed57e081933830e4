"""Append-only audit records, enforced by the database itself (21 CFR Part 11 §11.10(e): record
changes must not obscure previously recorded information).

What is protected, on PostgreSQL and on SQLite alike:

- every history table (``Historical*``, including the many-to-many snapshots), signature events,
  audit events, the hash chain and the purge markers: no UPDATE, no DELETE;
- signatures: no DELETE, no UPDATE of any column except ``state`` (valid → stale/revoked is a
  new state, recorded as a signature event);
- decision records: no DELETE; only the later-filled columns (``DecisionRecord.LATER_FILLED``:
  state, failure and retry bookkeeping, PDF, its SHA-256, render time) may change — the release,
  signature, snapshot, fingerprint, creation time and any other column never do — and the PDF
  and its SHA-256 never change once set.

The triggers are created by a ``post_migrate`` handler (idempotent: dropped and re-created), not
by migration files, so they follow the models of every app without touching their migrations.

The one way past them is the *purge switch*, for the retention purge and for test-database
teardown: on PostgreSQL the setting ``dcmms.allow_purge = on`` **and** being the tables' owner
(the runtime role is not: it cannot even UPDATE or DELETE these tables, see
``manage.py grant_runtime_role``); on SQLite a row in the control table ``dcmms_trigger_control``
(SQLite has no roles: whoever can write the file can do anything, which docs/security.md says).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connections, transaction

CONTROL_TABLE = "dcmms_trigger_control"
PG_SETTING = "dcmms.allow_purge"
PG_FUNCTION = "dcmms_append_only"
OUR_APPS = {"checklist", "risks", "signoffs"}
FULLY_PROTECTED = (
    "signoffs.SignatureEvent",
    "checklist.AuditEvent",
    "checklist.AuditChainEntry",
    "checklist.AuditPurge",
)


@dataclass(frozen=True)
class Protection:
    """One table's rule: ``delete`` forbids DELETE; ``update`` is a SQL condition over OLD/NEW
    that is true when an UPDATE must be refused (``"TRUE"`` refuses every update)."""

    table: str
    delete: bool = True
    update: str | None = "TRUE"


def _distinct(columns: Iterable[str], vendor: str) -> list[str]:
    op = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    return [f'OLD."{c}" {op} NEW."{c}"' for c in columns]


def protections(vendor: str) -> list[Protection]:
    """Every protected table with its rule, from the installed models."""
    rules: list[Protection] = []
    for model in apps.get_models():
        if model._meta.app_label in OUR_APPS and model.__name__.startswith("Historical"):
            rules.append(Protection(model._meta.db_table))
    for label in FULLY_PROTECTED:
        rules.append(Protection(apps.get_model(label)._meta.db_table))

    signature = apps.get_model("signoffs.Signature")
    frozen = [f.column for f in signature._meta.concrete_fields if f.name != "state"]
    rules.append(
        Protection(signature._meta.db_table, update=" OR ".join(_distinct(frozen, vendor)))
    )

    record = apps.get_model("signoffs.DecisionRecord")
    # Frozen: every column but the later-filled ones, so a column added later is frozen too.
    frozen = [f.column for f in record._meta.concrete_fields if f.name not in record.LATER_FILLED]
    op = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    once_set = [
        f'(OLD."pdf" IS NOT NULL AND OLD."pdf" {op} NEW."pdf")',
        f'(OLD."pdf_sha256" <> \'\' AND OLD."pdf_sha256" {op} NEW."pdf_sha256")',
    ]
    rules.append(
        Protection(record._meta.db_table, update=" OR ".join(_distinct(frozen, vendor) + once_set))
    )
    return rules


def _name(table: str, op: str) -> str:
    name = f"dcmms_ao_{table}_{op}"
    if len(name) > 60:
        name = f"dcmms_ao_{hashlib.sha256(table.encode()).hexdigest()[:16]}_{op}"
    return name


# ---------------------------------------------------------------- SQL per vendor
def _sqlite_statements(rules: list[Protection]) -> Iterator[str]:
    yield f'CREATE TABLE IF NOT EXISTS "{CONTROL_TABLE}" (allow_purge INTEGER NOT NULL)'
    allowed = f'EXISTS (SELECT 1 FROM "{CONTROL_TABLE}" WHERE allow_purge = 1)'
    for rule in rules:
        for op, condition in (("upd", rule.update), ("del", "TRUE" if rule.delete else None)):
            name = _name(rule.table, op)
            yield f'DROP TRIGGER IF EXISTS "{name}"'
            if condition is None:
                continue
            event = "UPDATE" if op == "upd" else "DELETE"
            yield (
                f'CREATE TRIGGER "{name}" BEFORE {event} ON "{rule.table}" '
                f"FOR EACH ROW WHEN ({condition}) AND NOT {allowed} "
                f"BEGIN SELECT RAISE(ABORT, 'append-only: {event} on {rule.table} refused'); END"
            )


def _postgres_statements(rules: list[Protection]) -> Iterator[str]:
    yield f"""
        CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF coalesce(current_setting('{PG_SETTING}', true), '') = 'on' AND EXISTS (
                SELECT 1 FROM pg_class
                WHERE oid = TG_RELID AND pg_has_role(current_user, relowner, 'USAGE')
            ) THEN
                IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'append-only: % on % refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END
        $$"""
    for rule in rules:
        for op, condition in (("upd", rule.update), ("del", "TRUE" if rule.delete else None)):
            name = _name(rule.table, op)
            yield f'DROP TRIGGER IF EXISTS "{name}" ON "{rule.table}"'
            if condition is None:
                continue
            event = "UPDATE" if op == "upd" else "DELETE"
            when = "" if condition == "TRUE" or op == "del" else f" WHEN ({condition})"
            yield (
                f'CREATE TRIGGER "{name}" BEFORE {event} ON "{rule.table}" '
                f"FOR EACH ROW{when} EXECUTE FUNCTION {PG_FUNCTION}()"
            )


def install(using: str = DEFAULT_DB_ALIAS) -> int:
    """Create (or re-create) every trigger; returns how many tables are protected."""
    connection = connections[using]
    vendor = connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        return 0
    existing = set(connection.introspection.table_names())
    rules = [rule for rule in protections(vendor) if rule.table in existing]
    statements = (
        _postgres_statements(rules) if vendor == "postgresql" else _sqlite_statements(rules)
    )
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    return len(rules)


def install_on_migrate(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate receiver (sent once per app; the last one sees every table)."""
    install(using)


# ---------------------------------------------------------------- purge switch
def purge_allowed_set(allowed: bool, *, using: str = DEFAULT_DB_ALIAS, local: bool) -> None:
    """Open (or close) the purge switch. ``local=True`` lasts until the end of the current
    transaction (PostgreSQL ``SET LOCAL``; on SQLite the control-table write is rolled back with
    it); ``local=False`` lasts for the connection (PostgreSQL) or until closed (SQLite)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            scope = "LOCAL " if local else ""
            cursor.execute(f"SET {scope}{PG_SETTING} = %s", ["on" if allowed else "off"])
        elif connection.vendor == "sqlite":
            cursor.execute(f'DELETE FROM "{CONTROL_TABLE}"')
            if allowed:
                cursor.execute(f'INSERT INTO "{CONTROL_TABLE}" (allow_purge) VALUES (1)')


@contextmanager
def purge_allowed(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Within one transaction, let the owner delete protected rows (the retention purge)."""
    with transaction.atomic(using=using):
        purge_allowed_set(True, using=using, local=True)
        yield
        purge_allowed_set(False, using=using, local=True)
