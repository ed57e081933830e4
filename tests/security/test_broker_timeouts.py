"""A broker (and a mail server) that accepts connections and never answers (issue #14, point 7):
/health/ answers within its limit, repeated probes do not pile up, the final DEFER request
returns although its enqueue cannot reach the broker, and every call has a timeout. The hung
endpoints are started by each test on 127.0.0.1 (tests/security/fault_servers.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.urls import reverse
from kombu import pools as kombu_pools

from checklist.choices import ReleaseStatus
from dcmms_release.celery import app as celery_app
from signoffs.models import DecisionRecord
from signoffs.services import release_access_refresh, signature_give
from tests.security.fault_servers import silent_server

ROOT = Path(__file__).resolve().parents[2]


def _health_threads(name: str) -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == f"health-{name}")


# ---------------------------------------------------------------- /health/
@pytest.mark.django_db
def test_health_answers_503_within_3_seconds_when_the_broker_never_answers(client, settings):
    with silent_server() as port:
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
        started = time.monotonic()
        response = client.get("/health/")
        elapsed = time.monotonic() - started
    assert elapsed < 3
    assert response.status_code == 503
    assert response.json() == {
        "status": "fail",
        "checks": {"database": "ok", "cache": "ok", "broker": "fail"},
    }
    assert str(port) not in response.content.decode()


@pytest.mark.django_db
def test_repeated_health_probes_keep_one_thread_per_check_when_the_broker_hangs(client, settings):
    settings.HEALTH_BROKER_TIMEOUT = 5  # the check outlives the probe's 2 s limit
    with silent_server() as port:
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
        for _ in range(4):
            started = time.monotonic()
            response = client.get("/health/")
            assert time.monotonic() - started < 3
            assert response.status_code == 503
            assert response.json()["checks"]["broker"] == "fail"
            assert _health_threads("broker") <= 1
        deadline = time.monotonic() + 10
        while _health_threads("broker") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _health_threads("broker") == 0  # the check's own timeouts end it


# ---------------------------------------------------------------- the final decision
def _reset_pools() -> None:
    kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def _broker(url: str, settings) -> Iterator[None]:
    """The Celery app on ``url`` with the settings' bounds for a Redis broker (Celery reads
    ``CELERY_BROKER_URL`` from the environment before its configuration)."""
    conf = celery_app.conf
    saved = (conf.broker_url, conf.broker_transport_options, conf.broker_connection_timeout)
    conf.broker_url = url
    conf.broker_transport_options = dict(settings.BROKER_SOCKET_TIMEOUTS)
    conf.broker_connection_timeout = settings.BROKER_TIMEOUT
    _reset_pools()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CELERY_BROKER_URL", url)
            yield
    finally:
        conf.broker_url, conf.broker_transport_options, conf.broker_connection_timeout = saved
        _reset_pools()


@pytest.mark.django_db(transaction=True)
def test_final_defer_request_returns_within_bound_when_the_broker_never_answers(
    client, review, password, settings
):
    release, roles = review
    release_access_refresh(release=release, user=release.owner)
    for role in ("QA Lead", "Security Officer"):
        requirement = roles[role]
        signature_give(
            requirement=requirement,
            user=requirement.assignee,
            username=requirement.assignee.username,
            password=password,
            meaning="approved",
        )
    ceo = roles["CEO"]
    client.force_login(ceo.assignee)
    url = reverse("admin:signoffs_signoffrequirement_sign", args=[ceo.pk])
    with silent_server(hold=10) as port, _broker(f"redis://127.0.0.1:{port}/0", settings):
        form = client.get(url)
        assert form.status_code == 200
        started = time.monotonic()
        response = client.post(
            url,
            {
                "shown": form.context["shown_token"],  # the version of the release it showed
                "meaning": "defer",
                "comment": "Security audit outstanding",
                "username": ceo.assignee.username,
                "password": password,
            },
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 302, response.content.decode()[:2000]
    assert elapsed < 8  # about BROKER_TIMEOUT (2 s), never the broker's silence (10 s)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED
    record = DecisionRecord.objects.get(release=release)
    assert record.state == "pending" and not record.pdf
    assert "broker" in record.failure_reason  # shown with the record; beat retries it


# ---------------------------------------------------------------- the configured timeouts
PUBLISH = """
import json, time, django
django.setup()
from kombu.exceptions import OperationalError
from dcmms_release.broker import publish
from dcmms_release.celery import app
from signoffs.record_tasks import render_decision_record
started = time.monotonic()
try:
    publish(render_decision_record, 0)
    error = None
except OperationalError as exc:
    error = type(exc).__name__
print(json.dumps({
    "transport_options": app.conf.broker_transport_options,
    "connection_timeout": app.conf.broker_connection_timeout,
    "publish_retries": app.conf.task_publish_retry_policy["max_retries"],
    "error": error,
    "seconds": time.monotonic() - started,
}))
"""

MAIL = """
import json, time, django
django.setup()
from django.conf import settings
from django.core.mail import get_connection, send_mail
started = time.monotonic()
try:
    send_mail("s", "b", "a@example.com", ["b@example.com"])
    error = None
except OSError as exc:
    error = type(exc).__name__
print(json.dumps({"timeout": settings.EMAIL_TIMEOUT, "connection_timeout": get_connection().timeout,
                  "error": error, "seconds": time.monotonic() - started}))
"""


def _run(code: str, tmp_path: Path, **extra: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CELERY_", "EMAIL_", "BROKER_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="dcmms_release.settings",
        DCMMS_VAR_DIR=str(tmp_path / "var"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_publish_gives_up_within_bound_when_the_configured_broker_never_answers(tmp_path):
    with silent_server(hold=20) as port:
        outcome = _run(PUBLISH, tmp_path, CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0")
    assert outcome["transport_options"] == {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    assert outcome["connection_timeout"] == 2.0 and outcome["publish_retries"] == 1
    assert outcome["error"] == "OperationalError"
    assert outcome["seconds"] < 8


def test_mail_gives_up_within_email_timeout_when_the_smtp_server_never_answers(tmp_path):
    with silent_server(hold=20) as port:
        outcome = _run(MAIL, tmp_path, EMAIL_URL=f"smtp://127.0.0.1:{port}", EMAIL_TIMEOUT="1")
    assert outcome["timeout"] == 1 and outcome["connection_timeout"] == 1
    assert outcome["error"] is not None
    assert outcome["seconds"] < 5


def test_mail_timeout_is_set_by_default_when_an_email_url_is_given(tmp_path):
    not_sending = MAIL.replace('send_mail("s", "b", "a@example.com", ["b@example.com"])', "pass")
    outcome = _run(not_sending, tmp_path, EMAIL_URL="smtp+tls://u:p@mail.example.com:587")
    assert outcome["timeout"] == 30 and outcome["connection_timeout"] == 30
