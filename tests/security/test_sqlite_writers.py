"""SQLite configured for a web server (issue #14, point 9): concurrent writers wait for each
other instead of failing with "database is locked" (WAL, a busy timeout, BEGIN IMMEDIATE).
The writers run in a process of their own on a SQLite file (tests/security/sqlite_writers.py):
the test database here is in memory, where SQLite locks differently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DJANGO_", "DATABASE_", "DCMMS_", "CELERY_", "SHED_", "SQLITE_", "ALLOWED_")
        )
    }
    env.update(
        DJANGO_SETTINGS_MODULE="dcmms_release.settings",
        DCMMS_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        ALLOWED_HOSTS="testserver",
        SHED_MAX_IN_FLIGHT="0",  # load shedding would refuse some of the ten; not tested here
        PYTHONPATH=str(ROOT),
    )
    return env


def test_concurrent_signing_requests_never_answer_database_is_locked_when_on_a_sqlite_file(
    tmp_path,
):
    env = _env(tmp_path)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    result = subprocess.run(
        [sys.executable, "-m", "tests.security.sqlite_writers"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "database is locked" not in result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["journal_mode"] == "wal"
    assert outcome["busy_timeout_ms"] == 20_000
    assert outcome["transaction_mode"] == "IMMEDIATE"

    same = outcome["same_requirement"]
    assert len(same["requests"]) == 10
    for request in same["requests"]:
        page, status, locked = request
        assert page == 200 and status in (200, 302) and not locked, request
    assert same["signatures"] == 1
    assert [r[1] for r in same["requests"]].count(302) == 1  # the others: refused, with a message

    own = outcome["own_requirements"]
    assert [r[1] for r in own["requests"]] == [302] * 10, own["requests"]
    assert own["signatures"] == 10
