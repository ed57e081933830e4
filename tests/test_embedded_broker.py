"""The embedded broker (kombu's filesystem transport) keeps all its files under the var folder:
publishing a task must not leave a ``control/`` folder in the directory the portal runs from."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PUBLISH = """
import django
django.setup()
from dcmms_release.celery import app
with app.connection_for_write() as connection:
    app.send_task("dcmms.embedded_broker_probe", connection=connection)
"""


def test_embedded_broker_keeps_queue_and_control_files_under_var_when_a_task_is_sent(tmp_path):
    var = tmp_path / "var"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY_", "DATABASE_URL", "DCMMS_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="dcmms_release.settings",
        DCMMS_VAR_DIR=str(var),
        PYTHONPATH=str(ROOT),
    )

    result = subprocess.run(
        [sys.executable, "-c", PUBLISH],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "control").exists()
    assert (var / "broker" / "control" / "celery.exchange").exists()
    assert len(list((var / "broker" / "in").iterdir())) == 1
