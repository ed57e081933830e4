"""The decision record and the broker: a broker that is down never fails the decision (runs
everywhere, against a closed port), and a real worker on the real Redis broker renders and seals
the record once the decision commits (marked ``broker``: the Redis run of .ci/run)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connections
from kombu import pools as kombu_pools

from checklist.choices import ReleaseStatus
from dcmms_release.celery import app as celery_app
from signoffs.models import DecisionRecord
from tests.signoffs.record_fixtures import decide

CLOSED_BROKER = "redis://127.0.0.1:1/0"
WAIT_SECONDS = 60


def _reset_pools() -> None:
    kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def _broker(url: str) -> Iterator[None]:
    saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = url, {}
    _reset_pools()
    try:
        yield
    finally:
        celery_app.conf.broker_url, celery_app.conf.broker_transport_options = saved
        _reset_pools()


@pytest.mark.django_db
def test_decision_is_recorded_and_record_stays_pending_when_broker_port_is_closed(
    review, password, settings, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    settings.CELERY_BROKER_URL = CLOSED_BROKER
    monkeypatch.setenv("CELERY_BROKER_URL", CLOSED_BROKER)
    release, roles = review
    started = time.monotonic()
    with _broker(CLOSED_BROKER), django_capture_on_commit_callbacks(execute=True):
        record = decide(release, roles, password)
    assert time.monotonic() - started < 20
    release.refresh_from_db()
    record.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED
    assert record.state == "pending" and not record.pdf
    assert "broker unreachable" in caplog.text


def _close_connections(**kwargs) -> None:
    connections.close_all()


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_worker_renders_and_seals_the_record_when_the_decision_commits(review, password, signing):
    celery_app.control.purge()
    task_postrun.connect(_close_connections)
    try:
        with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=20):
            release, roles = review
            record = decide(release, roles, password)
            deadline = time.monotonic() + WAIT_SECONDS
            while time.monotonic() < deadline:
                record.refresh_from_db()
                if record.state != "pending":
                    break
                time.sleep(0.2)
    finally:
        task_postrun.disconnect(_close_connections)
    assert record.state == "ready", record.failure_reason
    assert record.pdf_sha256 and bytes(record.pdf).startswith(b"%PDF")
    assert DecisionRecord.objects.filter(release=release).count() == 1
