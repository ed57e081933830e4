"""A decision record that could not be generated is retried by beat and shown as pending with
its reason (signoffs.record_status, records.records_retry_due, record_tasks). Unmarked tests
run on SQLite and PostgreSQL; the concurrent-run test is PostgreSQL's (row locks)."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from dcmms_release.celery import app as celery_app
from signoffs import record_tasks
from signoffs.models import DecisionRecord
from signoffs.record_status import record_status_text
from signoffs.records import record_render, record_retry, records_retry_due
from tests.signoffs.record_fixtures import decide

pytestmark = pytest.mark.django_db
MINUTE = datetime.timedelta(minutes=1)
EVIL = '<img src=x onerror="alert(1)">'


@pytest.fixture
def broker_down(monkeypatch):
    def down(*args):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(record_tasks.render_decision_record, "delay", down)


@pytest.fixture
def queued(monkeypatch):
    """Record IDs handed to the broker (no worker runs them: a lost task)."""
    calls: list[int] = []
    monkeypatch.setattr(record_tasks.render_decision_record, "delay", calls.append)
    return calls


@pytest.fixture
def key_missing(settings, tmp_path):
    settings.DECISION_SIGNING_KEY = str(tmp_path / "absent-key.pem")


def _decided(review, password, capture) -> DecisionRecord:
    release, roles = review
    with capture(execute=True):
        record = decide(release, roles, password)
    record.refresh_from_db()
    return record


# ---------------------------------------------------------------- broker down at the decision
def test_record_stays_pending_with_the_broker_reason_when_the_broker_is_down_at_the_decision(
    review, password, broker_down, django_capture_on_commit_callbacks
):
    before = timezone.now()
    record = _decided(review, password, django_capture_on_commit_callbacks)
    assert record.release.status == "decided"
    assert (record.state, record.attempts) == ("pending", 1)
    assert record.failure_reason == "the broker was unreachable"
    assert before <= record.failed_at <= timezone.now()
    assert record.next_attempt_at == record.failed_at + MINUTE
    at = record.failed_at.astimezone(datetime.UTC)
    assert record_status_text(record) == (
        f"Pending: the broker was unreachable at {at:%Y-%m-%d %H:%M} UTC; retrying "
        f"automatically (attempt 2) from {at + MINUTE:%H:%M} UTC."
    )
    assert record.history.first().history_change_reason == (
        "Rendering not queued: the broker was unreachable"
    )


def test_beat_task_seals_a_record_pending_since_the_broker_was_down_when_its_retry_is_due(
    review, password, broker_down, signing, django_capture_on_commit_callbacks
):
    record = _decided(review, password, django_capture_on_commit_callbacks)
    assert record_tasks.retry_decision_records() == 0  # due in a minute: nothing yet
    record.refresh_from_db()
    assert (record.state, record.attempts) == ("pending", 1)

    tried = records_retry_due(now=record.next_attempt_at)
    assert [r.pk for r in tried] == [record.pk]
    record.refresh_from_db()
    assert (record.state, record.attempts) == ("ready", 2)
    assert record.pdf_sha256 and record.failure_reason == "" and record.next_attempt_at is None
    assert record_status_text(record).startswith("Ready: sealed at ")
    assert records_retry_due(now=timezone.now() + 60 * MINUTE) == []  # idempotent


def test_beat_task_renders_a_record_still_pending_two_minutes_on_when_its_task_was_lost(
    review, password, queued, signing, django_capture_on_commit_callbacks
):
    record = _decided(review, password, django_capture_on_commit_callbacks)
    assert queued == [record.pk] and record.failure_reason == ""
    wait = record.next_attempt_at - record.created_at
    assert abs(wait - 2 * MINUTE) < datetime.timedelta(seconds=1)
    assert "checked again automatically from" in record_status_text(record)
    assert records_retry_due(now=record.created_at + MINUTE) == []
    (ready,) = records_retry_due(now=record.next_attempt_at)
    assert (ready.state, ready.attempts) == ("ready", 1)


def test_beat_task_renders_a_record_pending_from_before_retries_were_scheduled(
    review, password, queued, signing, django_capture_on_commit_callbacks
):
    record = _decided(review, password, django_capture_on_commit_callbacks)
    record.next_attempt_at = None  # as a record stuck pending before this release
    record.save(update_fields=["next_attempt_at"])
    assert "at beat's next run" in record_status_text(record)
    assert records_retry_due(now=record.created_at + MINUTE) == []
    (ready,) = records_retry_due(now=record.created_at + 3 * MINUTE)
    assert ready.state == "ready"


def test_beat_schedule_runs_the_record_retry_every_minute_when_configured(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["decision-record-retry"]
    assert entry == {"task": "signoffs.retry_decision_records", "schedule": 60}
    assert "signoffs.retry_decision_records" in celery_app.tasks


# ---------------------------------------------------------------- render failures
def test_render_failure_keeps_the_record_pending_with_its_reason_and_backs_off_when_retried(
    review, password, queued, signing, key_missing, django_capture_on_commit_callbacks
):
    record = _decided(review, password, django_capture_on_commit_callbacks)
    waits = []
    now = record.next_attempt_at
    for attempt in (1, 2, 3):
        (record,) = records_retry_due(now=now)
        assert (record.state, record.attempts) == ("pending", attempt)
        waits.append(record.next_attempt_at - record.failed_at)
        now = record.next_attempt_at
    assert waits == [MINUTE, 2 * MINUTE, 4 * MINUTE]
    assert record.failure_reason.startswith("rendering failed (SealError: ")
    assert "absent-key.pem" in record.failure_reason
    text = record_status_text(record)
    assert text.startswith("Pending: rendering failed (SealError: ") and "(attempt 4)" in text


def test_render_failures_stop_after_the_last_attempt_and_a_pm_retry_seals_it_when_fixed(
    review,
    password,
    queued,
    signing,
    settings,
    key_missing,
    django_capture_on_commit_callbacks,
):
    settings.DECISION_RECORD_RETRY_ATTEMPTS = 3
    good_key = str(signing[0])
    record = _decided(review, password, django_capture_on_commit_callbacks)
    late = timezone.now() + 24 * 60 * MINUTE  # every backoff long over
    for _ in range(5):
        records_retry_due(now=late)
    record.refresh_from_db()
    assert (record.state, record.attempts, record.next_attempt_at) == ("failed", 3, None)
    text = record_status_text(record)
    assert text.startswith("Failed: rendering failed (SealError: ")
    assert "no automatic retry is left (3 attempts)" in text

    settings.DECISION_SIGNING_KEY = good_key
    with django_capture_on_commit_callbacks(execute=True):
        record_retry(record=record, by=record.release.owner)
    assert queued[-1] == record.pk
    ready = record_render(record_id=record.pk)  # the worker, with the queued task
    assert (ready.state, ready.attempts) == ("ready", 4)


def test_render_fails_at_once_without_retry_when_the_snapshot_no_longer_matches(
    review, password, queued, signing, django_capture_on_commit_callbacks
):
    record = _decided(review, password, django_capture_on_commit_callbacks)
    DecisionRecord.objects.filter(pk=record.pk).update(snapshot_json=record.snapshot_json + " ")
    failed = record_render(record_id=record.pk)
    assert (failed.state, failed.attempts, failed.next_attempt_at) == ("failed", 1, None)
    assert "fingerprint" in failed.failure_reason
    assert records_retry_due(now=timezone.now() + 60 * MINUTE) == []


# ---------------------------------------------------------------- what the CEO and the PM read
def test_release_page_dashboard_and_list_show_pending_with_reason_when_the_broker_was_down(
    client, review, password, broker_down, django_capture_on_commit_callbacks
):
    record = _decided(review, password, django_capture_on_commit_callbacks)
    release, roles = review
    at = record.failed_at.astimezone(datetime.UTC)
    expected = (
        f"Pending</strong>: the broker was unreachable at {at:%Y-%m-%d %H:%M} UTC; retrying "
        "automatically (attempt 2)"
    )
    pages = (
        reverse("admin:checklist_release_change", args=[release.pk]),
        reverse("admin:checklist_release_dashboard", args=[release.pk]),
        reverse("admin:signoffs_decisionrecord_changelist") + f"?release__id__exact={release.pk}",
    )
    for user in (release.owner, roles["CEO"].assignee):
        client.force_login(user)
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, url
            assert expected in response.content.decode(), (user, url)


def test_record_status_escapes_the_reason_when_it_holds_markup(
    client, review, password, queued, django_capture_on_commit_callbacks
):
    record = _decided(review, password, django_capture_on_commit_callbacks)
    with transaction.atomic():
        locked = DecisionRecord.objects.select_for_update().get(pk=record.pk)
        locked.failure_reason, locked.failed_at = EVIL, timezone.now()
        locked.save(update_fields=["failure_reason", "failed_at"])
    release = record.release
    client.force_login(release.owner)
    for url in (
        reverse("admin:checklist_release_change", args=[release.pk]),
        reverse("admin:checklist_release_dashboard", args=[release.pk]),
    ):
        body = client.get(url).content.decode()
        assert EVIL not in body and "&lt;img src=x onerror=" in body


# ---------------------------------------------------------------- overlapping beat runs
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_beat_run_skips_a_record_another_worker_is_rendering_when_runs_overlap(
    review, password, broker_down, signing
):
    release, roles = review
    decide(release, roles, password)  # transaction=True: on_commit runs, the broker is down
    record = DecisionRecord.objects.get(release=release)
    assert record.attempts == 1
    locked, release_lock = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            DecisionRecord.objects.select_for_update().get(pk=record.pk)
            locked.set()
            release_lock.wait(10)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(10)
        (skipped,) = records_retry_due(now=record.next_attempt_at)
        assert (skipped.state, skipped.attempts) == ("pending", 1)  # not rendered twice
    finally:
        release_lock.set()
        thread.join(10)
    (ready,) = records_retry_due(now=record.next_attempt_at)
    assert (ready.state, ready.attempts) == ("ready", 2)


def test_decision_and_record_survive_when_recording_the_broker_failure_itself_fails(
    review, password, broker_down, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    from django.db import DatabaseError

    from signoffs import records

    def broken(**kwargs):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(records, "record_enqueue_failed", broken)
    record = _decided(review, password, django_capture_on_commit_callbacks)
    assert record.release.status == "decided"
    assert record.state == "pending" and record.next_attempt_at is not None  # beat's net
    assert "the failed queuing was not recorded" in caplog.text
