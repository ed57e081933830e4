"""Stuck claims (signoffs.reminder_recovery, issue #14 point 8): a worker that dies between claim
and send leaves its digest claimed; after the stale limit the sweep sends it, once, with the
dispatch's own Message-ID."""

import datetime
import smtplib
import threading
from unittest import mock

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import connection
from django.utils import timezone

from signoffs import reminder_recovery, reminder_services
from signoffs.choices import DispatchStatus
from signoffs.models import ReminderDispatch
from signoffs.reminder_recovery import stuck_dispatches, stuck_dispatches_retry
from signoffs.reminder_services import (
    Outcome,
    digest_render,
    digest_send,
    dispatch_claim,
    dispatch_mail,
    dispatch_message_id,
)
from signoffs.reminders import digest_for
from tests.factories import ItemFactory
from tests.signoffs.reminder_helpers import BASE_URL, person, release_in_review

pytestmark = pytest.mark.django_db
STALE = 10


class Killed(BaseException):
    """The worker process dies: nothing after this point runs, nothing catches it."""


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.PORTAL_BASE_URL = BASE_URL
    settings.REMINDER_SEND_FOR_STATUSES = ["in_review"]
    settings.REMINDER_CLAIM_STALE_MINUTES = STALE


@pytest.fixture
def work():
    """A release in review; dev owns an open item (so dev has a digest today)."""
    pm, dev = person("pm"), person("dev")
    release, section = release_in_review(pm)
    ItemFactory(section=section, owner=dev, text="Write the runbook")
    return release, pm, dev


def _digest(release, user, date=None):
    digest = digest_for(recipient_id=user.pk, release=release, date=date or timezone.localdate())
    assert digest is not None
    return digest


def _claim_and_die(release, user, date=None) -> ReminderDispatch:
    """What a worker killed after its claim leaves behind: a claimed row, no mail."""
    digest = _digest(release, user, date)
    dispatch = dispatch_claim(digest=digest, subject=digest_render(digest)[0])
    assert dispatch is not None and dispatch.status == DispatchStatus.CLAIMED
    return dispatch


def _age(dispatch: ReminderDispatch, minutes: int) -> ReminderDispatch:
    """Let ``minutes`` pass since the claim."""
    dispatch.claimed_at = timezone.now() - datetime.timedelta(minutes=minutes)
    dispatch.save()
    return dispatch


# ---------------------------------------------------------------- the sweep
def test_stuck_dispatches_retry_sends_once_with_dispatch_message_id_when_worker_died_before_send(
    work,
):
    release, _, dev = work
    dispatch = _age(_claim_and_die(release, dev), STALE + 1)
    assert mail.outbox == []

    results = stuck_dispatches_retry()
    again = stuck_dispatches_retry()

    assert [r.outcome for r in results] == [Outcome.SENT] and again == []
    [message] = mail.outbox
    assert message.to == ["dev@example.com"]
    assert message.extra_headers["Message-ID"] == dispatch_message_id(dispatch)
    assert (
        message.message()["Message-ID"]
        == f"<dispatch-{dispatch.pk}.{dispatch.date:%Y%m%d}@portal.example>"
    )
    dispatch.refresh_from_db()
    assert dispatch.status == DispatchStatus.SENT and dispatch.attempts == 2
    reasons = [h.history_change_reason for h in dispatch.history.order_by("history_id")]
    assert any(
        r.startswith("Claimed again (attempt 2): the previous claim was stuck") for r in reasons
    )
    assert reasons[-1] == "Sent"


def test_stuck_dispatches_retry_resends_under_same_message_id_when_worker_died_after_smtp(work):
    release, _, dev = work
    with mock.patch.object(reminder_services, "_record", side_effect=Killed):
        with pytest.raises(Killed):
            digest_send(digest=_digest(release, dev))
    [first] = mail.outbox  # it reached the mail server, the row never heard of it
    dispatch = _age(ReminderDispatch.objects.get(), STALE + 1)
    assert dispatch.status == DispatchStatus.CLAIMED

    stuck_dispatches_retry()

    first_id, second_id = (m.message()["Message-ID"] for m in mail.outbox)
    assert len(mail.outbox) == 2
    assert first_id == second_id == dispatch_message_id(dispatch)
    assert first.subject == mail.outbox[1].subject
    dispatch.refresh_from_db()
    assert dispatch.status == DispatchStatus.SENT


def test_stuck_dispatches_retry_sends_nothing_when_claim_younger_than_stale_limit(work):
    release, _, dev = work
    dispatch = _age(_claim_and_die(release, dev), STALE - 1)

    results = stuck_dispatches_retry()

    assert results == [] and mail.outbox == []
    assert list(stuck_dispatches()) == []
    dispatch.refresh_from_db()
    assert (dispatch.status, dispatch.attempts) == (DispatchStatus.CLAIMED, 1)


def test_stuck_dispatches_retry_leaves_sent_and_failed_rows_when_they_are_old(work):
    release, _, dev = work
    digest_send(digest=_digest(release, dev))
    sent = _age(ReminderDispatch.objects.get(), 60)

    assert stuck_dispatches_retry() == []
    sent.refresh_from_db()
    assert sent.status == DispatchStatus.SENT and len(mail.outbox) == 1


def test_stuck_dispatches_retry_closes_without_mail_when_the_digest_day_is_too_old(work):
    release, _, dev = work
    old_day = timezone.localdate() - datetime.timedelta(days=2)
    dispatch = _age(_claim_and_die(release, dev, old_day), STALE + 1)

    [result] = stuck_dispatches_retry()

    assert result.outcome == Outcome.NOT_DUE and mail.outbox == []
    dispatch.refresh_from_db()
    assert dispatch.status == DispatchStatus.FAILED
    assert "too old to send late" in dispatch.last_error
    assert stuck_dispatches_retry() == []


def test_stuck_dispatches_retry_sends_yesterdays_digest_when_stuck_overnight(work):
    release, _, dev = work
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    _age(_claim_and_die(release, dev, yesterday), 600)

    [result] = stuck_dispatches_retry()

    assert result.outcome == Outcome.SENT and len(mail.outbox) == 1
    assert yesterday.isoformat() in mail.outbox[0].subject


def test_stuck_dispatches_retry_closes_as_nothing_to_send_when_release_stopped_sending(
    work, settings
):
    release, _, dev = work
    dispatch = _age(_claim_and_die(release, dev), STALE + 1)
    settings.REMINDER_SEND_FOR_STATUSES = []

    [result] = stuck_dispatches_retry()

    assert result.outcome == Outcome.NOTHING and mail.outbox == []
    dispatch.refresh_from_db()
    assert dispatch.status == DispatchStatus.EMPTY
    reason = dispatch.history.order_by("history_id").last().history_change_reason
    assert "reminders are not sent for a release that is In review" in reason


def test_stuck_dispatches_retry_records_failure_when_mail_server_refuses(work):
    release, _, dev = work
    dispatch = _age(_claim_and_die(release, dev), STALE + 1)
    refusal = smtplib.SMTPServerDisconnected("gone")

    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=refusal):
        [result] = stuck_dispatches_retry()

    assert result.outcome == Outcome.FAILED and "gone" in result.error
    dispatch.refresh_from_db()
    assert (dispatch.status, dispatch.attempts) == (DispatchStatus.FAILED, 2)
    assert "SMTPServerDisconnected: gone" in dispatch.last_error


# ---------------------------------------------------------------- claims and outcomes
def test_dispatch_mail_records_nothing_when_the_claim_was_taken_over_by_a_retry(work):
    release, _, dev = work
    digest = _digest(release, dev)
    rendered = digest_render(digest)
    slow = dispatch_claim(digest=digest, subject=rendered[0])  # a worker that hung, not died
    _age(ReminderDispatch.objects.get(), STALE + 1)
    stuck_dispatches_retry()  # the sweep sends it
    refusal = smtplib.SMTPServerDisconnected("late")

    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=refusal):
        with pytest.raises(smtplib.SMTPServerDisconnected):
            dispatch_mail(dispatch=slow, digest=digest, rendered=rendered)

    row = ReminderDispatch.objects.get()
    assert (row.status, row.attempts, row.last_error) == (DispatchStatus.SENT, 2, "")


def test_dispatch_claim_restarts_claim_age_when_failed_row_claimed_again(work):
    release, _, dev = work
    with mock.patch.object(
        EmailMultiAlternatives, "send", side_effect=smtplib.SMTPServerDisconnected("x")
    ):
        with pytest.raises(smtplib.SMTPServerDisconnected):
            digest_send(digest=_digest(release, dev))
    _age(ReminderDispatch.objects.get(), 60)

    again = dispatch_claim(digest=_digest(release, dev), subject="s")  # the task's retry

    assert again is not None and again.attempts == 2
    assert timezone.now() - again.claimed_at < datetime.timedelta(minutes=1)
    assert stuck_dispatches_retry() == [] and mail.outbox == []


def test_dispatch_message_id_stays_the_same_when_the_dispatch_is_sent_again(work, settings):
    release, _, dev = work
    dispatch = _claim_and_die(release, dev)
    first = dispatch_message_id(dispatch)
    dispatch.attempts = 3

    assert dispatch_message_id(dispatch) == first
    settings.PORTAL_BASE_URL = "https://[2001:db8::1]:8443"
    assert dispatch_message_id(dispatch).endswith("@[2001:db8::1]>")


# ---------------------------------------------------------------- two sweeps at once
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_stuck_dispatches_retry_sends_once_when_two_sweeps_run_concurrently(settings):
    settings.PORTAL_BASE_URL = BASE_URL
    settings.REMINDER_SEND_FOR_STATUSES = ["in_review"]
    settings.REMINDER_CLAIM_STALE_MINUTES = STALE
    pm, dev = person("pm"), person("dev")
    release, section = release_in_review(pm)
    ItemFactory(section=section, owner=dev, text="Write the runbook")
    dispatch = _age(_claim_and_die(release, dev), STALE + 1)
    both_saw_it_stuck = threading.Barrier(2, timeout=20)
    real_render = reminder_recovery.digest_render
    outcomes: list[str] = []

    def render_then_race(digest):
        both_saw_it_stuck.wait()  # each sweep has read the row as stuck before either claims
        return real_render(digest)

    def sweep():
        try:
            outcomes.extend(r.outcome for r in stuck_dispatches_retry())
        finally:
            connection.close()

    with mock.patch.object(reminder_recovery, "digest_render", side_effect=render_then_race):
        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert sorted(outcomes) == sorted([Outcome.SENT, Outcome.ALREADY])
    assert len(mail.outbox) == 1
    dispatch.refresh_from_db()
    assert (dispatch.status, dispatch.attempts) == (DispatchStatus.SENT, 2)
