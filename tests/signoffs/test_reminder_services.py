"""Claim, send, record (signoffs.reminder_services): one mail per person, release and day."""

import datetime
import smtplib
from unittest import mock

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives

from checklist.choices import ReleaseStatus, ReviewCadence
from signoffs.choices import DispatchStatus
from signoffs.models import ReminderDispatch
from signoffs.reminder_services import (
    Outcome,
    digest_deliver,
    digest_render,
    digest_send,
    release_digests_send,
)
from signoffs.reminders import digest_for
from tests.factories import ActionItemFactory, ItemFactory, ReleaseFactory
from tests.signoffs.reminder_helpers import BASE_URL, DAY, SATURDAY, person, release_in_review

pytestmark = pytest.mark.django_db
XSS = "<script>alert('x')</script>"


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.PORTAL_BASE_URL = BASE_URL
    settings.REMINDER_SEND_FOR_STATUSES = ["in_review"]
    settings.DEFAULT_FROM_EMAIL = "portal@example.com"


@pytest.fixture
def work():
    """A release in review; dev owns an open item, pm owns the release."""
    pm, dev = person("pm"), person("dev")
    release, section = release_in_review(pm)
    ItemFactory(section=section, owner=dev, text="Write the runbook")
    return release, pm, dev


def _digest(release, user):
    digest = digest_for(recipient_id=user.pk, release=release, date=DAY)
    assert digest is not None
    return digest


def _html(message) -> str:
    return next(content for content, kind in message.alternatives if kind == "text/html")


# ---------------------------------------------------------------- sending once
def test_digest_send_mails_text_and_html_and_records_sent_when_first_claim(work):
    release, _, dev = work

    result = digest_send(digest=_digest(release, dev))

    assert result.outcome == Outcome.SENT
    [message] = mail.outbox
    assert message.to == ["dev@example.com"]
    assert message.from_email == "portal@example.com"
    assert "Write the runbook" in message.body and "Write the runbook" in _html(message)
    assert f"{BASE_URL}/admin/checklist/item/" in message.body
    dispatch = ReminderDispatch.objects.get()
    assert (dispatch.recipient, dispatch.release, dispatch.date) == (dev, release, DAY)
    assert dispatch.status == DispatchStatus.SENT and dispatch.sent_at is not None
    assert dispatch.attempts == 1 and dispatch.subject == message.subject
    assert "1 item(s)" in dispatch.summary


def test_digest_send_sends_nothing_when_already_sent_that_day(work):
    release, _, dev = work
    digest_send(digest=_digest(release, dev))

    again = digest_send(digest=_digest(release, dev))

    assert again.outcome == Outcome.ALREADY
    assert len(mail.outbox) == 1
    assert ReminderDispatch.objects.count() == 1


def test_digest_send_sends_nothing_when_row_claimed_by_another_worker(work):
    release, _, dev = work
    ReminderDispatch.objects.create(recipient=dev, release=release, date=DAY)

    assert digest_send(digest=_digest(release, dev)).outcome == Outcome.ALREADY
    assert mail.outbox == []


def test_digest_send_writes_history_for_each_step_when_sent(work):
    release, _, dev = work
    digest_send(digest=_digest(release, dev))

    reasons = list(
        ReminderDispatch.history.order_by("history_id").values_list(
            "status", "history_change_reason"
        )
    )
    assert reasons == [("claimed", "Claimed for sending"), ("sent", "Sent")]


# ---------------------------------------------------------------- failures
def test_digest_send_records_failure_and_raises_when_mail_server_refuses(work):
    release, _, dev = work
    refusal = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=refusal):
        with pytest.raises(smtplib.SMTPServerDisconnected):
            digest_send(digest=_digest(release, dev))

    dispatch = ReminderDispatch.objects.get()
    assert dispatch.status == DispatchStatus.FAILED
    assert "Connection unexpectedly closed" in dispatch.last_error
    assert dispatch.sent_at is None


def test_digest_send_sends_once_and_counts_attempts_when_retried_after_failure(work):
    release, _, dev = work
    refusal = smtplib.SMTPException("451 try again later")
    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=refusal):
        with pytest.raises(smtplib.SMTPException):
            digest_send(digest=_digest(release, dev))

    result = digest_send(digest=_digest(release, dev))
    digest_send(digest=_digest(release, dev))

    assert result.outcome == Outcome.SENT
    assert len(mail.outbox) == 1
    dispatch = ReminderDispatch.objects.get()
    assert (dispatch.status, dispatch.attempts) == (DispatchStatus.SENT, 2)
    statuses = list(
        ReminderDispatch.history.order_by("history_id").values_list("status", flat=True)
    )
    assert statuses == ["claimed", "failed", "claimed", "sent"]


# ---------------------------------------------------------------- escaping and headers
def test_digest_render_escapes_user_text_in_html_when_titles_hold_markup(work):
    release, _, dev = work
    ItemFactory(section=release.sections.get(), owner=dev, text=XSS)

    subject, text, html = digest_render(_digest(release, dev))

    assert XSS not in html
    assert "&lt;script&gt;" in html
    assert XSS in text  # plain text is not HTML: shown as typed


def test_digest_send_keeps_subject_on_one_line_when_release_name_has_line_breaks():
    pm, dev = person("pm"), person("dev")
    release, section = release_in_review(pm, name="Release\r\nBcc: victim@example.com")
    ItemFactory(section=section, owner=dev)

    digest_send(digest=_digest(release, dev))

    [message] = mail.outbox
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.bcc == []
    assert "Bcc" not in str(message.message()["Bcc"] or "")
    assert message.message()["To"] == "dev@example.com"


# ---------------------------------------------------------------- delivery by ID
def test_digest_deliver_skips_when_release_vanished(work):
    _, _, dev = work

    assert digest_deliver(recipient_id=dev.pk, release_id=10**6, date=DAY).outcome == (
        Outcome.VANISHED
    )


def test_digest_deliver_sends_nothing_when_recipient_vanished(work):
    release, _, _ = work

    result = digest_deliver(recipient_id=10**6, release_id=release.pk, date=DAY)

    assert result.outcome == Outcome.NOTHING and mail.outbox == []


def test_digest_deliver_sends_nothing_when_cadence_skips_the_day(work):
    release, _, dev = work
    release.review_cadence = ReviewCadence.WEEKDAYS
    release.save()

    result = digest_deliver(recipient_id=dev.pk, release_id=release.pk, date=SATURDAY)

    assert result.outcome == Outcome.NOT_DUE and mail.outbox == []


def test_digest_deliver_sends_nothing_when_release_decided_since_the_beat(work):
    release, _, dev = work
    release.status = ReleaseStatus.DECIDED
    release.save()

    result = digest_deliver(recipient_id=dev.pk, release_id=release.pk, date=DAY)

    assert result.outcome == Outcome.NOT_DUE and ReminderDispatch.objects.count() == 0


# ---------------------------------------------------------------- the PM's "send now"
def test_release_digests_send_mails_everyone_once_when_pm_sends_now(work):
    release, pm, dev = work
    ActionItemFactory(release=release, owner=pm, due_date=DAY - datetime.timedelta(days=1))

    first = release_digests_send(release=release, date=DAY, by=pm)
    second = release_digests_send(release=release, date=DAY, by=pm)

    assert sorted(m.to[0] for m in mail.outbox) == ["dev@example.com", "pm@example.com"]
    assert [r.outcome for r in first] == [Outcome.SENT, Outcome.SENT]
    assert [r.outcome for r in second] == [Outcome.ALREADY, Outcome.ALREADY]
    assert set(ReminderDispatch.history.values_list("history_user", flat=True)) == {pm.pk}


def test_release_digests_send_reports_failure_without_raising_when_mail_server_down(work):
    release, pm, _ = work
    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=ConnectionRefusedError()):
        results = release_digests_send(release=release, date=DAY, by=pm)

    assert [r.outcome for r in results] == [Outcome.FAILED]
    assert ReminderDispatch.objects.get().status == DispatchStatus.FAILED


def test_release_digests_send_refuses_when_release_is_draft():
    pm = person("pm")
    release = ReleaseFactory(status=ReleaseStatus.DRAFT, owner=pm)

    with pytest.raises(ValidationError, match="reminders are sent only for releases that are"):
        release_digests_send(release=release, date=DAY, by=pm)
