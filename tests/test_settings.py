"""Settings read from the environment: what an operator sets is what the portal uses."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READ = """
import json, django
django.setup()
from django.conf import settings
database = settings.DATABASES["default"]
print(json.dumps([database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"]]))
"""


def _database_settings(tmp_path, **extra) -> list:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DCMMS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="dcmms_release.settings",
        DCMMS_VAR_DIR=str(tmp_path / "var"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    result = subprocess.run(
        [sys.executable, "-c", READ], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_database_connections_are_per_request_when_nothing_is_set(tmp_path):
    assert _database_settings(tmp_path) == [0, False]


def test_database_connections_persist_with_health_checks_when_a_max_age_is_set(tmp_path):
    assert _database_settings(tmp_path, DATABASE_CONN_MAX_AGE="60") == [60, True]
