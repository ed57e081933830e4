"""`manage.py send_review_reminders [--date] [--dry-run]`: the daily run by hand."""

import datetime
import smtplib
from io import StringIO
from unittest import mock

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.core.management import CommandError, call_command

from checklist.choices import ReviewCadence
from signoffs.choices import DispatchStatus
from signoffs.models import ReminderDispatch
from tests.factories import ActionItemFactory, ItemFactory
from tests.signoffs.reminder_helpers import BASE_URL, DAY, SATURDAY, person, release_in_review

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.PORTAL_BASE_URL = BASE_URL
    settings.REMINDER_SEND_FOR_STATUSES = ["in_review"]


@pytest.fixture
def work():
    pm, dev = person("pm"), person("dev")
    release, section = release_in_review(pm, version="v9.9.9", name="Nine")
    ItemFactory(section=section, owner=dev, text="Write the runbook")
    ActionItemFactory(release=release, owner=dev, due_date=DAY - datetime.timedelta(days=3))
    return release, pm, dev


def _run(*args: str) -> str:
    out = StringIO()
    call_command("send_review_reminders", *args, stdout=out)
    return out.getvalue()


def test_command_prints_who_would_get_what_and_sends_nothing_when_dry_run(work):
    output = _run("--date", DAY.isoformat(), "--dry-run")

    assert "Review digests for 2026-12-01: 2 due." in output
    assert "Dev Tester (dev) <dev@example.com> would get Nine (v9.9.9): 1 item(s); " in output
    assert "1 action(s) (1 overdue)" in output
    assert "Pm Tester (pm) <pm@example.com> would get Nine (v9.9.9)" in output
    assert "escalations: 1 overdue action(s)" in output
    assert "Dry run: nothing sent, nothing recorded." in output
    assert mail.outbox == [] and ReminderDispatch.objects.count() == 0


def test_command_sends_each_digest_once_when_run_twice(work):
    first = _run("--date", DAY.isoformat())
    second = _run("--date", DAY.isoformat())

    assert sorted(m.to[0] for m in mail.outbox) == ["dev@example.com", "pm@example.com"]
    assert "Done: 2 sent." in first
    assert "Done: 2 already claimed." in second
    assert ReminderDispatch.objects.filter(status=DispatchStatus.SENT).count() == 2


def test_command_reports_failure_and_continues_when_mail_server_refuses(work):
    refusal = smtplib.SMTPRecipientsRefused({"dev@example.com": (550, b"no such user")})
    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=refusal):
        output = _run("--date", DAY.isoformat())

    assert "Done: 2 failed." in output
    assert ReminderDispatch.objects.filter(status=DispatchStatus.FAILED).count() == 2


def test_command_sends_nothing_when_cadence_skips_the_day(work):
    release, _, _ = work
    release.review_cadence = ReviewCadence.WEEKDAYS
    release.save()

    output = _run("--date", SATURDAY.isoformat())

    assert "Review digests for 2026-12-05: 0 due." in output
    assert "Done: nothing to send." in output
    assert mail.outbox == []


def test_command_refuses_date_when_not_iso():
    with pytest.raises(CommandError, match="--date must be YYYY-MM-DD"):
        _run("--date", "01/12/2026")
