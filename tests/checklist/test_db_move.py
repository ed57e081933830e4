"""Moving a portal from SQLite to PostgreSQL (checklist.db_move, `manage.py move_to_postgres`),
as docs/operations.md describes it and CI runs it: the demo is built in a SQLite file by the
real commands, moved into a fresh PostgreSQL database, and `verify_audit --records` and
`verify_record` pass there with the same keys. The databases made here are dropped at the end.
Transactional: the subprocesses see only committed rows."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
SQLITE_ONLY = {"sqlite_sequence", "dcmms_trigger_control"}
SMALL_CHECKLIST = """# After the move

**Project:** Moved portal
**Release:** Release 9 (v9.0.0)

## Section 1: One

- [ ] First item
- [x] Second item
"""


@dataclass(frozen=True)
class Demo:
    var: Path  # the portal's var folder: chain key, signing pair
    sqlite: Path
    anchor: Path | None = None  # a chain head exported while on SQLite

    @property
    def url(self) -> str:
        return f"sqlite:///{self.sqlite}"


def _pg(*args: str) -> None:
    database = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": str(database.get("PASSWORD") or "")}
    where = ["-h", database["HOST"] or "127.0.0.1", "-p", str(database["PORT"] or 5432)]
    where += ["-U", database["USER"] or "postgres"]
    done = subprocess.run(
        [args[0], *where, *args[1:]], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{args[0]}: {done.stderr}"


def _url(name: str) -> str:
    database = connection.settings_dict
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    return f"postgres://{database['USER'] or 'postgres'}{password}@{host}:{port}/{name}"


def _name(suffix: str) -> str:
    """A database name beside the test database's (test_NAME → NAME_suffix)."""
    return f"{connection.settings_dict['NAME'].removeprefix('test_')}_{suffix}"


def _manage(var: Path, database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "DCMMS_", "CELERY_", "AUDIT_", "DECISION_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="dcmms_release.settings",
        DCMMS_VAR_DIR=str(var),
        DATABASE_URL=database_url,
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=var.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def _sqlite_rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def _pg_rows(name: str, sql: str) -> list[tuple]:
    with psycopg.connect(_url(name)) as db:
        return [tuple(row) for row in db.execute(sql).fetchall()]


def _counts(demo: Demo) -> dict[str, int]:
    tables = _sqlite_rows(demo.sqlite, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {
        table: _sqlite_rows(demo.sqlite, f'SELECT COUNT(*) FROM "{table}"')[0][0]
        for (table,) in tables
        if table not in SQLITE_ONLY
    }


def _pg_counts(name: str, tables) -> dict[str, int]:
    return {table: _pg_rows(name, f'SELECT COUNT(*) FROM "{table}"')[0][0] for table in tables}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    """The demo in a SQLite file, built by the commands a new team runs, and its chain head."""
    home = tmp_path_factory.mktemp("sqlite_portal")
    built = Demo(var=home / "var", sqlite=home / "dcmms.sqlite3", anchor=home / "anchor.json")
    for command in (
        ["migrate", "--noinput"],
        ["ensure_signing_cert"],
        ["setup_demo"],
        ["export_audit_anchor", "--output", str(built.anchor)],
    ):
        _ok(_manage(built.var, built.url, *command))
    return built


@pytest.fixture(scope="module")
def moved(demo):
    """The demo moved into a fresh PostgreSQL database (its name); dropped at the end."""
    name = _name("moved")
    _pg("dropdb", "--if-exists", "--force", name)
    _pg("createdb", name)
    try:
        output = _ok(_manage(demo.var, demo.url, "move_to_postgres", "--to", _url(name)))
        yield name, output
    finally:
        _pg("dropdb", "--if-exists", "--force", name)


@pytest.fixture
def fresh():
    name = _name("move_fresh")
    _pg("dropdb", "--if-exists", "--force", name)
    _pg("createdb", name)
    yield name
    _pg("dropdb", "--if-exists", "--force", name)


def test_move_to_postgres_copies_every_table_row_for_row_when_the_target_is_empty(demo, moved):
    name, output = moved
    counts = _counts(demo)
    assert counts["checklist_historicalitem"] > 0 and counts["signoffs_signature"] > 0
    assert _pg_counts(name, counts) == counts
    assert f"Copied {sum(counts.values()) - counts['django_migrations']} row(s)" in output
    # Keys kept: users, groups, memberships, object permissions and the content types and
    # permissions they name are the same rows with the same primary keys.
    for sql in (
        "SELECT id, username, password, is_superuser, is_staff, is_active FROM auth_user",
        "SELECT id, name FROM auth_group",
        "SELECT id, user_id, group_id FROM auth_user_groups",
        "SELECT id, group_id, permission_id FROM auth_group_permissions",
        "SELECT id, app_label, model FROM django_content_type",
        "SELECT id, content_type_id, codename FROM auth_permission",
        "SELECT id, object_pk, content_type_id, group_id, permission_id "
        "FROM guardian_groupobjectpermission",
    ):
        source = _sqlite_rows(demo.sqlite, f"{sql} ORDER BY id")
        assert source and _pg_rows(name, f"{sql} ORDER BY id") == source, sql


def test_move_to_postgres_copies_the_audit_chain_and_records_as_they_are_when_moved(demo, moved):
    name, output = moved
    sql = (
        'SELECT seq, "table", row_pk, content_sha256, prev_mac, mac '
        "FROM checklist_auditchainentry ORDER BY seq"
    )
    links = _sqlite_rows(demo.sqlite, sql)
    assert len(links) > 1000
    assert _pg_rows(name, sql) == links  # link for link: nothing re-linked, nothing added
    assert f"Audit chain: {len(links)} link(s) copied as they were" in output
    record = "SELECT id, pdf, pdf_sha256, snapshot_sha256 FROM signoffs_decisionrecord ORDER BY id"
    source = [(pk, bytes(pdf), *rest) for pk, pdf, *rest in _sqlite_rows(demo.sqlite, record)]
    assert source and source[0][1].startswith(b"%PDF")
    assert [(pk, bytes(pdf), *rest) for pk, pdf, *rest in _pg_rows(name, record)] == source


def test_verify_audit_and_verify_record_pass_on_postgres_when_moved_with_the_same_keys(
    demo, moved, tmp_path
):
    name, _ = moved
    links = _sqlite_rows(demo.sqlite, "SELECT COUNT(*) FROM checklist_auditchainentry")[0][0]
    anchor = str(demo.anchor)
    audit = _ok(_manage(demo.var, _url(name), "verify_audit", "--anchor", anchor, "--records"))
    assert f"Audit chain intact: {links} links verified." in audit
    assert "Anchors: the chain holds all 1 head(s)" in audit
    assert "Decision records: 1 of 1 chain head(s) held." in audit
    assert audit.rstrip().endswith("Audit trail intact.")
    pdf = tmp_path / "decision-record.pdf"
    pdf.write_bytes(_sqlite_rows(demo.sqlite, "SELECT pdf FROM signoffs_decisionrecord")[0][0])
    verified = _ok(_manage(demo.var, _url(name), "verify_record", str(pdf)))
    assert "Seal: valid" in verified
    assert verified.rstrip().endswith("decision-record.pdf: OK")
    checked = _manage(demo.var, _url(name), "check", "--database", "default")
    assert checked.returncode == 0 and "dcmms.E001" not in checked.stdout + checked.stderr


def test_move_to_postgres_refuses_and_copies_nothing_when_the_target_is_not_empty(demo, moved):
    name, _ = moved
    before = _pg_counts(name, _counts(demo))
    again = _manage(demo.var, demo.url, "move_to_postgres", "--to", _url(name))
    assert again.returncode == 1
    assert "Not moved: nothing was copied." in again.stderr
    assert "the target database is not empty: auth_group: 10 row(s)" in again.stderr
    assert _pg_counts(name, before) == before


def test_moved_portal_keeps_writing_and_chaining_when_its_sequences_were_reset(
    demo, moved, tmp_path
):
    name, _ = moved
    links = _pg_rows(name, "SELECT COUNT(*) FROM checklist_auditchainentry")[0][0]
    checklist = tmp_path / "small.md"
    checklist.write_text(SMALL_CHECKLIST, encoding="utf-8")
    imported = _ok(_manage(demo.var, _url(name), "import_checklist", str(checklist)))
    assert "Imported Release 9 (v9.0.0)" in imported
    audit = _ok(_manage(demo.var, _url(name), "verify_audit", "--records"))
    linked = _pg_rows(name, "SELECT COUNT(*) FROM checklist_auditchainentry")[0][0]
    assert linked > links
    assert f"Audit chain intact: {linked} links verified." in audit
    # the append-only triggers came with the move: history refuses an UPDATE on PostgreSQL
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        _pg_rows(name, "UPDATE checklist_historicalitem SET history_change_reason = 'x'")


def test_move_to_postgres_rolls_everything_back_when_postgres_refuses_a_row(demo, fresh, tmp_path):
    broken = Demo(var=demo.var, sqlite=tmp_path / "broken.sqlite3")  # same keys
    with sqlite3.connect(demo.sqlite) as source, sqlite3.connect(broken.sqlite) as copy:
        source.backup(copy)
        copy.execute("UPDATE checklist_item SET text = ? WHERE id = 1", ["NUL \x00 byte"])
    moved = _manage(demo.var, broken.url, "move_to_postgres", "--to", _url(fresh))
    assert moved.returncode == 1
    assert "Not moved: nothing was copied." in moved.stderr
    assert "checklist_item: PostgreSQL refused a row" in moved.stderr
    counts = _pg_counts(fresh, _counts(demo))
    assert counts["auth_user"] == counts["checklist_auditchainentry"] == 0
    assert {table for table, rows in counts.items() if rows} == {
        "auth_permission",
        "django_content_type",
        "django_migrations",
    }


def test_move_to_postgres_refuses_when_the_configured_database_is_not_sqlite(fresh):
    with pytest.raises(CommandError, match="is postgresql, not SQLite") as refused:
        call_command("move_to_postgres", to=_url(fresh))
    assert "nothing was copied" in str(refused.value)
    assert _pg_rows(fresh, "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_move_to_postgres_refuses_when_the_target_is_not_postgres(tmp_path):
    with pytest.raises(CommandError, match="--to must name a PostgreSQL database"):
        call_command("move_to_postgres", to=f"sqlite:///{tmp_path / 'other.sqlite3'}")
    assert not (tmp_path / "other.sqlite3").exists()
