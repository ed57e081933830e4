"""Move a portal from its embedded SQLite database to PostgreSQL, with everything in it
(docs/operations.md, "Moving from SQLite to PostgreSQL").

``dumpdata`` / ``loaddata`` cannot do it: ``loaddata`` saves model by model, so the history,
guardian and chain receivers run again, and it aborts on a historical row's key. Here every row
of every table is copied **as it is**, primary keys included, with plain ``INSERT`` statements
on a raw cursor: no ``Model.save()``, no signal, so the audit chain's before-COMMIT step
(``checklist.chain``) has nothing to link and the ``AuditChainEntry`` rows arrive exactly as
SQLite holds them — their MACs name tables and primary keys, and their content hashes cover
every column, so the chain verifies on PostgreSQL only if every value came across unchanged.

The steps (``database_move``):

1. refuse unless the source is a fully migrated SQLite database and the target a PostgreSQL
   database with no rows in any table (checked before anything is written to it);
2. ``migrate`` the target (tables, and the append-only triggers, which refuse UPDATE and DELETE
   but not the INSERTs of the copy); the content types and permissions ``migrate`` writes are
   replaced by the source's, whose keys the object permissions and the admin log use;
3. in one transaction on each side (SQLite's ``BEGIN IMMEDIATE`` keeps writers out meanwhile):
   copy each table, compare its row count and an order-independent digest of its rows as read
   back from PostgreSQL with the source's, reset the sequences, install the triggers again, and
   verify the audit chain and ``verify_audit``'s other checks on both sides — the target must
   give the source's result. Any difference or error rolls the whole copy back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import environ
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Model

from dcmms_release.db import ENGINES

from .chain import content_sha256, verify
from .chain_checks import checks_run
from .triggers import install

TARGET_ALIAS = "dcmms_move_target"
BATCH = 500  # rows per INSERT batch (decision records carry their PDF)
# Rows ``migrate`` writes itself into a new database: replaced by the source's rows.
MIGRATE_WRITES = ("auth_permission", "django_content_type")
NOT_COPIED = ("django_migrations",)  # the target's own, written by its migrate
_DIGEST_MOD = 2**256


class MoveRefused(Exception):
    """The move did not start, or was rolled back: nothing was copied. ``problems`` says why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int


@dataclass
class MoveReport:
    tables: list[TableCopy] = field(default_factory=list)
    links: int = 0  # audit chain links verified on the target
    triggers: int = 0  # tables protected by the append-only triggers
    source_problems: list[str] = field(default_factory=list)  # carried over as they were

    @property
    def rows(self) -> int:
        return sum(copy.rows for copy in self.tables)


def url_redacted(url: str) -> str:
    """The target URL without its password, for messages."""
    config = environ.Env.db_url_config(url)
    user = f"{config.get('USER')}@" if config.get("USER") else ""
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{user}{config.get('HOST') or ''}{port}/{config.get('NAME') or ''}"


@contextmanager
def target_database(url: str) -> Iterator[str]:
    """A connection alias for the PostgreSQL database at ``url``, removed again afterwards."""
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several kinds for a malformed URL
        raise MoveRefused([f"--to: not a database URL ({type(exc).__name__})"]) from None
    if config.get("ENGINE") != "django.db.backends.postgresql" or not config.get("NAME"):
        raise MoveRefused(["--to must name a PostgreSQL database: postgres://USER@HOST:PORT/NAME"])
    config["ENGINE"] = ENGINES[config["ENGINE"]]  # the portal's engine (before-COMMIT step)
    connections.settings[TARGET_ALIAS] = connections.configure_settings(
        {DEFAULT_DB_ALIAS: {}, TARGET_ALIAS: config}
    )[TARGET_ALIAS]
    try:
        yield TARGET_ALIAS
    finally:
        connections[TARGET_ALIAS].close()
        del connections[TARGET_ALIAS]
        del connections.settings[TARGET_ALIAS]


def copied_models() -> list[type[Model]]:
    """Every table of the installed apps (many-to-many tables included), once, by name."""
    found: dict[str, type[Model]] = {}
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        if not opts.proxy and opts.managed:
            found.setdefault(opts.db_table, model)
    return [found[table] for table in sorted(found)]


def _unmigrated(using: str) -> bool:
    executor = MigrationExecutor(connections[using])
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def _rows_present(using: str, ignore: tuple[str, ...] = ()) -> list[str]:
    """'table: N row(s)' for every table of the database that holds rows."""
    connection = connections[using]
    found = []
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            if table in ignore:
                continue
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
            count = cursor.fetchone()[0]
            if count:
                found.append(f"{table}: {count} row(s)")
    return found


def source_refusals(source: str) -> list[str]:
    """Why this database cannot be moved from (empty: it can). Read-only."""
    vendor = connections[source].vendor
    if vendor != "sqlite":
        return [
            f"the configured database is {vendor}, not SQLite: move a PostgreSQL database "
            "with pg_dump and pg_restore (docs/operations.md, Backup and restore)"
        ]
    if _unmigrated(source):
        return ["the SQLite database is not fully migrated: run `manage.py migrate` first"]
    return []


def target_refusals(target: str) -> list[str]:
    """Why the move may not write into the target (empty: it may). Read-only. The target may
    have been migrated already: the rows ``migrate`` writes itself do not count."""
    try:
        present = _rows_present(target, (*MIGRATE_WRITES, *NOT_COPIED))
    except DatabaseError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return [f"the target database cannot be read ({type(exc).__name__}: {first})"]
    if not present:
        return []
    more = f" and {len(present) - 10} more table(s)" if len(present) > 10 else ""
    return [
        f"the target database is not empty: {', '.join(present[:10])}{more}. Move into a new, "
        "empty database (createdb)"
    ]


def _digest_add(total: int, names: list[str], row: tuple) -> int:
    return (total + int(content_sha256(dict(zip(names, row, strict=True))), 16)) % _DIGEST_MOD


def _read(model: type[Model], using: str) -> Iterator[tuple]:
    names = [f.attname for f in model._meta.concrete_fields]
    rows = model._base_manager.using(using).order_by("pk").values_list(*names)
    return rows.iterator(chunk_size=BATCH)


def _table_digest(model: type[Model], using: str) -> tuple[int, int]:
    names = [f.attname for f in model._meta.concrete_fields]
    count = total = 0
    for row in _read(model, using):
        count, total = count + 1, _digest_add(total, names, row)
    return count, total


def _copy_table(model: type[Model], source: str, target: str) -> tuple[int, int]:
    """INSERT every source row into the target as it is; (rows, digest of the rows read)."""
    connection = connections[target]
    fields = model._meta.concrete_fields
    names = [f.attname for f in fields]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    count = total = 0
    batch: list[list] = []
    with connection.cursor() as cursor:
        for row in _read(model, source):
            count, total = count + 1, _digest_add(total, names, row)
            values = zip(fields, row, strict=True)
            batch.append([f.get_db_prep_save(value, connection) for f, value in values])
            if len(batch) == BATCH:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
    return count, total


def _audit_result(using: str) -> tuple[int, list[str]]:
    checked, problem = verify(using=using)
    problems = [str(problem)] if problem else []
    return checked, problems + [f"{kind}: {text}" for kind, text in checks_run(using)]


def _copy_all(source: str, target: str, report: MoveReport, progress: Callable) -> None:
    models = copied_models()
    connection = connections[target]
    with connection.cursor() as cursor:
        for table in MIGRATE_WRITES:  # permissions first: they point at content types
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")
    for model in models:
        table = model._meta.db_table
        if table in NOT_COPIED:
            continue
        try:
            rows, digest = _copy_table(model, source, target)
        except DatabaseError as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise MoveRefused([f"{table}: PostgreSQL refused a row ({first})"]) from None
        if _table_digest(model, target) != (rows, digest):
            raise MoveRefused([f"{table}: the rows read back from PostgreSQL differ"])
        report.tables.append(TableCopy(table, rows))
        progress(f"  {table}: {rows} row(s)")
    ContentType.objects.clear_cache()  # the cache still holds the ids migrate gave the target
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)
    report.triggers = install(target)


def database_move(
    *, target_url: str, source: str = DEFAULT_DB_ALIAS, progress: Callable[[str], None] = print
) -> MoveReport:
    """Copy the portal's SQLite database into an empty PostgreSQL database, all or nothing.

    The rule an auditor reads: every row keeps its primary key and every column its value, the
    audit chain is copied link for link and never re-linked, and the copy is committed only when
    PostgreSQL gives the same audit verification result as SQLite."""
    report = MoveReport()
    with target_database(target_url) as target:
        problems = source_refusals(source) or target_refusals(target)
        if problems:
            raise MoveRefused(problems)
        progress(f"Migrating {url_redacted(target_url)} …")
        call_command("migrate", database=target, interactive=False, verbosity=0)
        problems = target_refusals(target)  # again: nothing but what migrate wrote
        if problems:
            raise MoveRefused(problems)
        progress("Copying (one transaction; nothing is kept unless everything verifies):")
        with transaction.atomic(using=source), transaction.atomic(using=target):
            _copy_all(source, target, report, progress)
            before, after = _audit_result(source), _audit_result(target)
            if after != before:
                raise MoveRefused(
                    [
                        "the audit trail does not verify on PostgreSQL as it does on SQLite "
                        f"(SQLite: {before[0]} link(s), {before[1] or 'intact'}; "
                        f"PostgreSQL: {after[0]} link(s), {after[1] or 'intact'})"
                    ]
                )
            if connections[target].tx_state:  # nothing may be linked again at COMMIT
                raise MoveRefused(["the copy left work for the before-COMMIT step: refused"])
            report.links, report.source_problems = after
    return report
