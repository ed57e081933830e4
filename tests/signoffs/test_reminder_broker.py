"""Reminders and the broker: a broker that is down never fails a user's request (these run
everywhere, against a closed port), and a real worker on the real Redis broker sends each digest
exactly once (marked ``broker``: the Redis run of .ci/run)."""

from __future__ import annotations

import datetime
import smtplib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connections
from django.urls import reverse
from kombu import pools as kombu_pools

from checklist.choices import ItemStatus
from dcmms_release.celery import app as celery_app
from signoffs import reminder_tasks
from signoffs.choices import DispatchStatus, SignatureMeaning, SignatureState
from signoffs.models import ReminderDispatch, Signature
from signoffs.reminder_tasks import enqueue, send_daily_reminders, send_review_digest
from tests.factories import ActionItemFactory, ItemFactory, SignoffRequirementFactory
from tests.signoffs.reminder_helpers import BASE_URL, DAY, person, release_in_review
from tests.signoffs.sign_page import sign_post

CLOSED_BROKER = "redis://127.0.0.1:1/0"
WAIT_SECONDS = 30


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.PORTAL_BASE_URL = BASE_URL
    settings.REMINDER_SEND_FOR_STATUSES = ["in_review"]
    settings.REMINDER_ESCALATE_OVERDUE_DAYS = 2
    settings.REMINDER_ESCALATE_SIGNOFF_DAYS = 3


def _reset_broker_pools() -> None:
    """The app keeps its broker connections; forget them so the next send uses the new URL."""
    kombu_pools.reset()  # closes and forgets every cached connection and producer pool
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def _broker(url: str, options: dict | None = None) -> Iterator[None]:
    saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = options or {}
    _reset_broker_pools()
    try:
        yield
    finally:
        celery_app.conf.broker_url, celery_app.conf.broker_transport_options = saved
        _reset_broker_pools()


@pytest.fixture
def broker_down(settings, monkeypatch):
    settings.CELERY_BROKER_URL = CLOSED_BROKER
    # Celery reads the environment before its configuration (the Redis run of .ci/run sets it).
    monkeypatch.setenv("CELERY_BROKER_URL", CLOSED_BROKER)
    with _broker(CLOSED_BROKER):
        yield


# ================================================================ broker down (runs everywhere)
@pytest.mark.django_db
def test_enqueue_returns_false_quickly_when_broker_port_closed(broker_down, caplog):
    started = time.monotonic()

    assert enqueue(send_review_digest, 1, 2, DAY.isoformat()) is False

    assert time.monotonic() - started < 15
    assert "Broker unavailable, signoffs.send_review_digest(1, 2, '2026-12-01')" in caplog.text


@pytest.mark.django_db
def test_send_daily_reminders_returns_without_error_when_broker_port_closed(
    broker_down, caplog, django_capture_on_commit_callbacks
):
    pm, dev = person("pm"), person("dev")
    _, section = release_in_review(pm)
    ItemFactory(section=section, owner=dev)

    with django_capture_on_commit_callbacks(execute=True):
        assert send_daily_reminders(DAY.isoformat()) == 1

    assert "1 of 1 digests not queued (broker unavailable)" in caplog.text


def _change_form_data(response) -> dict:
    """What the admin's change form would post back unchanged."""
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = value
    return data


@pytest.mark.django_db
def test_item_admin_save_succeeds_when_broker_down(broker_down, client):
    pm = person("pm", is_superuser=True)
    _, section = release_in_review(pm)
    item = ItemFactory(section=section, owner=pm, text="Runbook")
    client.force_login(pm)
    url = reverse("admin:checklist_item_change", args=[item.pk])
    data = _change_form_data(client.get(url))
    data["status"] = ItemStatus.COMPLETE
    data["change_reason"] = "Runbook written"  # required while the release is in review

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    item.refresh_from_db()
    assert item.status == ItemStatus.COMPLETE


@pytest.mark.django_db
def test_sign_page_signing_succeeds_when_broker_down(broker_down, client, review, password):
    release, roles = review
    requirement = roles["QA Lead"]
    client.force_login(requirement.assignee)

    response = sign_post(
        client,
        requirement,
        {
            "meaning": SignatureMeaning.APPROVED,
            "comment": "",
            "username": requirement.assignee.username,
            "password": password,
        },
    )

    assert response.status_code == 302
    signature = Signature.objects.get(requirement=requirement)
    assert signature.state == SignatureState.VALID


@pytest.mark.django_db
def test_send_digests_now_action_succeeds_when_broker_down(broker_down, client):
    pm, dev = person("pm"), person("dev")
    release, section = release_in_review(pm)
    ItemFactory(section=section, owner=dev, text="Runbook")
    client.force_login(person("root", is_superuser=True))

    response = client.post(
        reverse("admin:checklist_release_changelist"),
        {"action": "send_digests_now", "_selected_action": [release.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert [m.to for m in mail.outbox] == [["dev@example.com"]]
    texts = [str(m) for m in response.context["messages"]]
    assert any("1 digest(s) sent, 0 already sent today" in t for t in texts)


# ================================================================ a real worker on Redis
class FlakyBackend(EmailBackend):
    """The locmem backend, refusing the first message it is given (a mail server hiccup)."""

    failures_left = 0
    attempts = 0

    def send_messages(self, messages):
        FlakyBackend.attempts += 1
        if FlakyBackend.failures_left > 0:
            FlakyBackend.failures_left -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


def _close_connections(**kwargs) -> None:
    connections.close_all()  # the worker thread's own connection, after each task


@pytest.fixture
def worker(settings, monkeypatch):
    """A real worker (solo pool, in a thread) on the Redis broker from the settings, with the
    results in Redis so that a test can wait for a task."""
    monkeypatch.setattr(reminder_tasks, "RETRY_BASE_SECONDS", 1)
    saved_backend = celery_app.conf.result_backend
    celery_app.conf.result_backend = settings.CELERY_BROKER_URL
    celery_app._local.__dict__.pop("backend", None)
    celery_app.control.purge()
    task_postrun.connect(_close_connections)
    try:
        with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=20):
            yield celery_app
    finally:
        task_postrun.disconnect(_close_connections)
        celery_app.conf.result_backend = saved_backend
        celery_app._local.__dict__.pop("backend", None)


def _drain() -> None:
    """Wait until every task queued so far has run: the solo worker takes the queue in order,
    so a last task's result means the ones before it are done."""
    sentinel = send_review_digest.delay(0, 0, DAY.isoformat())
    assert sentinel.get(timeout=WAIT_SECONDS) == "vanished"


def _wait_for(condition, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the worker"
        time.sleep(0.1)


@pytest.fixture
def team():
    """A release in review: dev owns a failing metric, ops an action 4 days overdue, qa a
    sign-off; the PM owns the release (escalation: the overdue action)."""
    pm, dev, ops, qa = person("pm"), person("dev"), person("ops"), person("qa")
    release, section = release_in_review(pm, version="v7.0.0", name="Seven")
    ItemFactory(section=section, owner=dev, text="p95 latency", failing=True)
    ActionItemFactory(
        release=release, owner=ops, key="A-004", due_date=DAY - datetime.timedelta(days=4)
    )
    SignoffRequirementFactory(release=release, role="QA Lead", assignee=qa)
    return release


def _outbox() -> dict[str, object]:
    return {message.to[0].split("@")[0]: message for message in mail.outbox}


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_worker_sends_one_digest_per_recipient_when_beat_runs_for_fixed_date(worker, team):
    assert send_daily_reminders.delay(DAY.isoformat()).get(timeout=WAIT_SECONDS) == 4
    _drain()

    sent = _outbox()
    assert sorted(sent) == ["dev", "ops", "pm", "qa"]
    assert "[FAILING] p95 latency" in sent["dev"].body
    assert "[OVERDUE 4 day(s)] A-004" in sent["ops"].body
    assert f"{BASE_URL}/admin/signoffs/signoffrequirement/" in sent["qa"].body
    assert "ESCALATIONS" in sent["pm"].body and "A-004" in sent["pm"].body
    assert all("Seven (v7.0.0)" in m.subject for m in sent.values())
    assert ReminderDispatch.objects.filter(status=DispatchStatus.SENT, date=DAY).count() == 4


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_worker_sends_each_digest_once_when_beat_runs_twice(worker, team):
    send_daily_reminders.delay(DAY.isoformat()).get(timeout=WAIT_SECONDS)
    send_daily_reminders.delay(DAY.isoformat()).get(timeout=WAIT_SECONDS)
    _drain()

    assert sorted(m.to[0] for m in mail.outbox) == [
        "dev@example.com",
        "ops@example.com",
        "pm@example.com",
        "qa@example.com",
    ]


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_worker_sends_each_digest_once_when_beats_run_concurrently(worker, team):
    errors: list[BaseException] = []

    def beat() -> None:
        try:
            send_daily_reminders(DAY.isoformat())  # computes here, fans out to the worker
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=beat) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)
    _drain()

    assert errors == []
    assert len(mail.outbox) == 4
    assert ReminderDispatch.objects.count() == 4


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_worker_sends_once_when_digest_message_redelivered(worker, team):
    qa = team.signoff_requirements.get().assignee
    results = [send_review_digest.delay(qa.pk, team.pk, DAY.isoformat()) for _ in range(3)]

    outcomes = [result.get(timeout=WAIT_SECONDS) for result in results]

    assert outcomes == ["sent", "already claimed", "already claimed"]
    assert [m.to for m in mail.outbox] == [["qa@example.com"]]


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_worker_retries_and_sends_once_when_smtp_fails_once(worker, team, settings):
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"
    FlakyBackend.failures_left, FlakyBackend.attempts = 1, 0
    qa = team.signoff_requirements.get().assignee

    send_review_digest.delay(qa.pk, team.pk, DAY.isoformat())
    _wait_for(
        lambda: ReminderDispatch.objects.filter(recipient=qa, status=DispatchStatus.SENT).exists()
    )

    assert [m.to for m in mail.outbox] == [["qa@example.com"]]
    dispatch = ReminderDispatch.objects.get(recipient=qa)
    assert dispatch.attempts == 2 and FlakyBackend.attempts == 2
    assert "Connection unexpectedly closed" in dispatch.last_error


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_worker_escalates_only_past_thresholds_when_beat_runs(worker):
    pm, ops, ceo = person("pm"), person("ops"), person("ceo")
    release, _ = release_in_review(pm, go_no_go_date=DAY + datetime.timedelta(days=3))
    ActionItemFactory(release=release, owner=ops, key="A-002", due_date=DAY - datetime.timedelta(2))
    ActionItemFactory(release=release, owner=ops, key="A-003", due_date=DAY - datetime.timedelta(3))
    SignoffRequirementFactory(release=release, role="CEO", assignee=ceo)

    send_daily_reminders.delay(DAY.isoformat()).get(timeout=WAIT_SECONDS)
    _drain()

    body = _outbox()["pm"].body
    escalations = body.split("ESCALATIONS", 1)[1].split("What changed", 1)[0]
    assert "A-003" in escalations and "A-002" not in escalations
    assert "Sign-offs still missing, go/no-go in 3 day(s)" in escalations
    assert "CEO" in escalations


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_worker_sends_no_mail_when_nothing_is_due(worker):
    pm, dev = person("pm"), person("dev")
    _, section = release_in_review(pm)
    ItemFactory(section=section, owner=dev, complete=True)

    assert send_daily_reminders.delay(DAY.isoformat()).get(timeout=WAIT_SECONDS) == 0
    _drain()

    assert mail.outbox == []
    assert ReminderDispatch.objects.count() == 0


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_worker_mails_seed_release_roles_when_demo_is_set_up(worker, settings):
    from fixtures.demo import demo_setup
    from signoffs.models import SignoffRequirement

    release, _, _ = demo_setup()
    day = DAY
    send_daily_reminders.delay(day.isoformat()).get(timeout=WAIT_SECONDS)
    _drain()

    sent = _outbox()
    unsigned = {
        r.assignee.username: r.role
        for r in SignoffRequirement.objects.filter(release=release).select_related("assignee")
        if not r.signatures.filter(state=SignatureState.VALID).exists()
    }
    stale = set(
        Signature.objects.filter(release=release, state=SignatureState.STALE).values_list(
            "signer__username", flat=True
        )
    )
    assert unsigned and set(unsigned) <= set(sent)
    for username, role in unsigned.items():
        body = sent[username].body
        heading = "stale signatures to renew" if username in stale else "Sign-offs waiting for you"
        assert heading in body and role in body
        assert f"{BASE_URL}/admin/signoffs/signoffrequirement/" in body
    signed = set(
        Signature.objects.filter(release=release, state=SignatureState.VALID).values_list(
            "signer__username", flat=True
        )
    )
    assert not (signed & set(sent)) or all(
        "Sign-offs waiting for you" not in sent[u].body for u in signed & set(sent)
    )
    assert all(release.version in m.subject for m in mail.outbox)
    assert len(mail.outbox) == len(sent)  # one mail per person


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_send_review_digest_sends_once_when_called_concurrently_from_threads(team):
    """Several workers handed the same message at once: one claims the row, the rest send
    nothing (the unique constraint decides, under real concurrency on PostgreSQL)."""
    qa = team.signoff_requirements.get().assignee
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def deliver() -> None:
        try:
            barrier.wait()
            outcomes.append(send_review_digest(qa.pk, team.pk, DAY.isoformat()))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)

    assert sorted(outcomes) == ["already claimed"] * 5 + ["sent"]
    assert [m.to for m in mail.outbox] == [["qa@example.com"]]
    dispatch = ReminderDispatch.objects.get()
    assert (dispatch.status, dispatch.attempts) == (DispatchStatus.SENT, 1)
