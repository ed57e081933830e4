"""The backup and restore procedure of docs/operations.md, run by CI on PostgreSQL: a decided
release with its sealed record is backed up with pg_dump, restored with pg_restore into a fresh
database, and `verify_audit` and `verify_record` pass there with the same keys; with another
chain key (or without the signing key) the restored portal refuses to start. The restored
database is dropped at the end. Transactional: pg_dump sees only committed rows."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection

from checklist.models_audit import AuditChainEntry
from signoffs.records import record_render
from tests.signoffs import record_fixtures
from tests.signoffs.record_fixtures import decide

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
content = record_fixtures.content
signing, signing_pair = record_fixtures.signing, record_fixtures.signing_pair
ROOT = Path(__file__).resolve().parents[2]


def _pg(*args: str) -> None:
    database = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": str(database.get("PASSWORD") or "")}
    where = ["-h", database["HOST"] or "127.0.0.1", "-p", str(database["PORT"] or 5432)]
    where += ["-U", database["USER"] or "postgres"]
    done = subprocess.run(
        [args[0], *where, *args[1:]], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args[0]}: {done.stderr}"


def _url(name: str) -> str:
    database = connection.settings_dict
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    return f"postgres://{database['USER'] or 'postgres'}{password}@{host}:{port}/{name}"


def _manage(var: Path, *args: str, **keys: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "DCMMS_", "CELERY_", "AUDIT_", "DECISION_"))
    }
    env.update(DJANGO_SETTINGS_MODULE="dcmms_release.settings", DCMMS_VAR_DIR=str(var), **keys)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=var.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def restored(tmp_path):
    """A fresh database's name; dropped at the end, whatever happened."""
    name = f"{connection.settings_dict['NAME']}_restored"
    _pg("dropdb", "--if-exists", "--force", name)
    yield name
    _pg("dropdb", "--if-exists", "--force", name)


def test_backup_restores_into_a_fresh_database_that_verifies_when_the_keys_are_restored(
    review, content, password, signing, restored, tmp_path, monkeypatch
):
    monkeypatch.setattr("signoffs.records.record_enqueue", lambda **kwargs: False)  # sealed here
    release, roles = review
    record = record_render(record_id=decide(release, roles, password).pk)
    assert record.state == "ready"
    pdf = tmp_path / "record.pdf"
    pdf.write_bytes(bytes(record.pdf))
    links = AuditChainEntry.objects.count()
    assert links > 0

    # Back up: the anchor first, then the dump (docs/operations.md, "Backup and restore").
    anchor = tmp_path / "anchor.json"
    call_command("export_audit_anchor", output=anchor)
    backup = tmp_path / "dcmms.dump"
    _pg("pg_dump", "--format=custom", "--file", str(backup), connection.settings_dict["NAME"])
    _pg("createdb", restored)
    _pg(
        "pg_restore",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "-d",
        restored,
        str(backup),
    )

    key, cert = signing
    keys = {
        "DATABASE_URL": _url(restored),
        "AUDIT_CHAIN_KEY": django_settings.AUDIT_CHAIN_KEY,
        "DECISION_SIGNING_KEY": str(key),
        "DECISION_SIGNING_CERT": str(cert),
    }
    var = tmp_path / "var"  # a new host: no key files, no anchor log
    checked = _manage(var, "check", "--database", "default", **keys)
    assert checked.returncode == 0, checked.stderr
    assert "dcmms.E001" not in checked.stderr + checked.stdout
    audit = _manage(var, "verify_audit", "--anchor", str(anchor), "--records", **keys)
    assert audit.returncode == 0, audit.stderr
    assert f"Audit chain intact: {links} links verified." in audit.stdout
    verified = _manage(var, "verify_record", str(pdf), **keys)
    assert verified.returncode == 0, verified.stderr
    assert "Seal: valid" in verified.stdout
    assert verified.stdout.rstrip().endswith("record.pdf: OK")

    other_key = _manage(var, "verify_audit", **{**keys, "AUDIT_CHAIN_KEY": "not the backed-up key"})
    assert other_key.returncode == 1
    assert "refuses to start" in other_key.stderr
    assert "AUDIT_CHAIN_KEY is not the key the audit chain was written with" in other_key.stderr
    assert "Audit chain intact" not in other_key.stdout

    lost = {**keys, "DECISION_SIGNING_KEY": str(var / "signing" / "record-key.pem")}
    no_signing_key = _manage(var, "verify_record", str(pdf), **lost)
    assert no_signing_key.returncode == 1
    assert "DECISION_SIGNING_KEY is missing (record-key.pem not found)" in no_signing_key.stderr
    assert "the database holds 1 sealed decision record(s)" in no_signing_key.stderr
