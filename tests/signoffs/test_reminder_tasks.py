"""The beat task and the per-recipient task, called directly (no worker, no broker)."""

import datetime
import logging
import smtplib
from unittest import mock

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from kombu.exceptions import OperationalError

from signoffs import reminder_tasks
from signoffs.choices import DispatchStatus
from signoffs.models import ReminderDispatch
from signoffs.reminder_tasks import (
    MAX_RETRIES,
    enqueue,
    enqueue_on_commit,
    retry_countdown,
    retry_stuck_reminders,
    send_daily_reminders,
    send_review_digest,
)
from tests.factories import ActionItemFactory, ItemFactory
from tests.signoffs.reminder_helpers import BASE_URL, DAY, person, release_in_review

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.PORTAL_BASE_URL = BASE_URL
    settings.REMINDER_SEND_FOR_STATUSES = ["in_review"]


@pytest.fixture
def work():
    pm, dev, ops = person("pm"), person("dev"), person("ops")
    release, section = release_in_review(pm)
    ItemFactory(section=section, owner=dev, text="Write the runbook")
    ActionItemFactory(release=release, owner=ops, due_date=DAY - datetime.timedelta(days=1))
    return release, pm, dev, ops


# ---------------------------------------------------------------- the beat task
def test_send_daily_reminders_queues_one_task_per_recipient_by_id_when_committed(
    work, django_capture_on_commit_callbacks
):
    release, _, dev, ops = work
    with mock.patch.object(send_review_digest, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            count = send_daily_reminders(DAY.isoformat())
        delay.assert_not_called()  # nothing leaves before the commit
        for callback in callbacks:
            callback()

    assert count == 2
    assert sorted(c.args for c in delay.call_args_list) == sorted(
        [(dev.pk, release.pk, "2026-12-01"), (ops.pk, release.pk, "2026-12-01")]
    )
    assert mail.outbox == []


def test_send_daily_reminders_stops_queueing_and_logs_when_broker_down(
    work, django_capture_on_commit_callbacks, caplog
):
    refusal = OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
    with mock.patch.object(send_review_digest, "delay", side_effect=refusal) as delay:
        with django_capture_on_commit_callbacks(execute=True):
            count = send_daily_reminders(DAY.isoformat())

    assert count == 2
    assert delay.call_count == 1  # the second would only wait for the same timeout
    assert "2 of 2 digests not queued (broker unavailable)" in caplog.text


# ---------------------------------------------------------------- the per-recipient task
def test_send_review_digest_sends_once_when_message_redelivered(work):
    release, _, dev, _ = work

    first = send_review_digest(dev.pk, release.pk, DAY.isoformat())
    second = send_review_digest(dev.pk, release.pk, DAY.isoformat())

    assert (first, second) == ("sent", "already claimed")
    assert [m.to for m in mail.outbox] == [["dev@example.com"]]


def test_send_review_digest_returns_vanished_when_release_deleted(work):
    release, _, dev, _ = work
    release_id = release.pk
    release.delete()

    assert send_review_digest(dev.pk, release_id, DAY.isoformat()) == "vanished"


def test_send_review_digest_retries_and_sends_once_when_smtp_fails_once(work):
    release, _, dev, _ = work
    real_send = EmailMultiAlternatives.send
    calls = []

    def flaky(message, *args, **kwargs):
        calls.append(message.to)
        if len(calls) == 1:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return real_send(message, *args, **kwargs)

    with mock.patch.object(EmailMultiAlternatives, "send", flaky):
        send_review_digest.apply(args=(dev.pk, release.pk, DAY.isoformat()))

    assert len(calls) == 2
    assert len(mail.outbox) == 1
    dispatch = ReminderDispatch.objects.get()
    assert (dispatch.status, dispatch.attempts) == (DispatchStatus.SENT, 2)
    assert "Connection unexpectedly closed" in dispatch.last_error


def test_send_review_digest_gives_up_after_max_retries_when_smtp_keeps_failing(work):
    release, _, dev, _ = work
    refusal = smtplib.SMTPException("554 rejected")
    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=refusal):
        send_review_digest.apply(args=(dev.pk, release.pk, DAY.isoformat()))

    dispatch = ReminderDispatch.objects.get()
    assert (dispatch.status, dispatch.attempts) == (DispatchStatus.FAILED, MAX_RETRIES + 1)
    assert mail.outbox == []


def test_send_review_digest_retries_with_backoff_countdown_when_smtp_fails(work):
    release, _, dev, _ = work
    refusal = smtplib.SMTPException("451 later")
    with (
        mock.patch.object(EmailMultiAlternatives, "send", side_effect=refusal),
        mock.patch.object(send_review_digest, "retry", side_effect=RuntimeError("retry")) as retry,
    ):
        with pytest.raises(RuntimeError):
            send_review_digest(dev.pk, release.pk, DAY.isoformat())

    assert retry.call_args.kwargs["countdown"] == 60
    assert isinstance(retry.call_args.kwargs["exc"], smtplib.SMTPException)


def test_send_review_digest_does_not_retry_when_error_is_not_a_send_error(work):
    release, _, dev, _ = work
    with (
        mock.patch.object(reminder_tasks, "digest_deliver", side_effect=ValueError("bug")),
        mock.patch.object(send_review_digest, "retry") as retry,
    ):
        with pytest.raises(ValueError):
            send_review_digest(dev.pk, release.pk, DAY.isoformat())

    retry.assert_not_called()


def test_retry_countdown_doubles_when_retries_grow():
    assert [retry_countdown(n) for n in range(5)] == [60, 120, 240, 480, 960]


# ---------------------------------------------------------------- enqueue
def test_enqueue_returns_false_and_logs_when_broker_refuses(caplog):
    task = mock.Mock(name="task")
    task.name = "signoffs.send_review_digest"
    task.delay.side_effect = OperationalError("connection refused")

    with caplog.at_level(logging.WARNING, logger="signoffs.reminder_tasks"):
        assert enqueue(task, 1, 2, "2026-12-01") is False

    assert "Broker unavailable, signoffs.send_review_digest(1, 2, '2026-12-01')" in caplog.text


def test_enqueue_on_commit_queues_after_commit_when_in_transaction(
    django_capture_on_commit_callbacks,
):
    task = mock.Mock(name="task")
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit(task, 7)
        task.delay.assert_not_called()

    task.delay.assert_called_once_with(7)


def test_beat_schedule_runs_daily_reminders_at_reminder_hour(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["send-daily-reminders"]

    assert entry["task"] == send_daily_reminders.name
    assert entry["schedule"].hour == {settings.REMINDER_HOUR}
    assert entry["schedule"].minute == {0}


# ---------------------------------------------------------------- stuck claims (#14 point 8)
def _stuck_claim(release, user, minutes: int) -> ReminderDispatch:
    """A claim whose worker was killed ``minutes`` ago, before it sent anything."""
    from django.utils import timezone

    from signoffs.reminder_services import digest_render, dispatch_claim
    from signoffs.reminders import digest_for

    digest = digest_for(recipient_id=user.pk, release=release, date=timezone.localdate())
    dispatch = dispatch_claim(digest=digest, subject=digest_render(digest)[0])
    dispatch.claimed_at = timezone.now() - datetime.timedelta(minutes=minutes)
    dispatch.save()
    return dispatch


def test_retry_stuck_reminders_sends_the_stuck_digest_once_when_its_claim_is_stale(work, settings):
    release, _, dev, _ = work
    settings.REMINDER_CLAIM_STALE_MINUTES = 10
    dispatch = _stuck_claim(release, dev, 11)

    assert retry_stuck_reminders() == 1
    assert retry_stuck_reminders() == 0

    assert [m.to for m in mail.outbox] == [["dev@example.com"]]
    dispatch.refresh_from_db()
    assert dispatch.status == DispatchStatus.SENT


def test_retry_stuck_reminders_queues_a_retry_with_backoff_when_mail_server_refuses(work, settings):
    release, _, dev, _ = work
    settings.REMINDER_CLAIM_STALE_MINUTES = 10
    dispatch = _stuck_claim(release, dev, 11)
    refusal = smtplib.SMTPServerDisconnected("down")

    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=refusal):
        with mock.patch.object(send_review_digest, "delay") as delay:
            retry_stuck_reminders()

    delay.assert_called_once_with(dev.pk, release.pk, dispatch.date.isoformat())
    dispatch.refresh_from_db()
    assert (dispatch.status, dispatch.attempts) == (DispatchStatus.FAILED, 2)


def test_beat_schedule_sweeps_stuck_claims_every_few_minutes_when_configured(settings):
    from dcmms_release.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["retry-stuck-reminders"]

    assert entry["task"] == retry_stuck_reminders.name == "signoffs.retry_stuck_reminders"
    assert entry["schedule"] == settings.REMINDER_SWEEP_MINUTES * 60
    assert settings.REMINDER_SWEEP_MINUTES < settings.REMINDER_CLAIM_STALE_MINUTES
    assert settings.REMINDER_CLAIM_STALE_MINUTES * 60 > settings.EMAIL_TIMEOUT
    app.loader.import_default_modules()
    assert retry_stuck_reminders.name in app.tasks
