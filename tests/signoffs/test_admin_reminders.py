"""The dispatch log in the admin (read-only, scoped) and the PM's "send digests now" action."""

import smtplib
from unittest import mock

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from checklist.choices import ReleaseStatus
from signoffs.choices import DispatchStatus, MemberRole
from signoffs.models import ReminderDispatch
from signoffs.services import member_set, release_access_refresh
from tests.factories import ItemFactory, ReleaseFactory
from tests.signoffs.reminder_helpers import BASE_URL, DAY, person, release_in_review

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.PORTAL_BASE_URL = BASE_URL
    settings.REMINDER_SEND_FOR_STATUSES = ["in_review"]


@pytest.fixture
def work():
    pm, dev = person("pm"), person("dev")
    release, section = release_in_review(pm, version="v5.0.0", name="Five")
    release_access_refresh(release=release, user=pm)
    ItemFactory(section=section, owner=dev, text="Runbook")
    return release, pm, dev


def _send_now(client, release):
    return client.post(
        reverse("admin:checklist_release_changelist"),
        {"action": "send_digests_now", "_selected_action": [release.pk]},
        follow=True,
    )


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# ---------------------------------------------------------------- the dispatch log
def test_dispatch_admin_lists_who_when_status_when_pm_manages_release(work, client):
    release, pm, dev = work
    ReminderDispatch.objects.create(
        recipient=dev,
        release=release,
        date=DAY,
        status=DispatchStatus.FAILED,
        attempts=3,
        subject="[dCMMS] Five (v5.0.0): review digest",
    )
    client.force_login(pm)

    response = client.get(reverse("admin:signoffs_reminderdispatch_changelist"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "dev" in html and "v5.0.0" in html and "Failed" in html
    assert "[dCMMS] Five (v5.0.0): review digest" in html


def test_dispatch_admin_is_read_only_when_pm_opens_a_dispatch(work, client):
    release, pm, dev = work
    dispatch = ReminderDispatch.objects.create(recipient=dev, release=release, date=DAY)
    client.force_login(pm)
    url = reverse("admin:signoffs_reminderdispatch_change", args=[dispatch.pk])

    assert client.get(url).status_code == 200
    assert client.post(url, {"status": DispatchStatus.SENT}).status_code == 403
    assert client.get(reverse("admin:signoffs_reminderdispatch_add")).status_code == 403
    delete = reverse("admin:signoffs_reminderdispatch_delete", args=[dispatch.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    dispatch.refresh_from_db()
    assert dispatch.status == DispatchStatus.CLAIMED


def test_dispatch_admin_hides_dispatch_when_release_not_granted(work, client):
    release, pm, dev = work
    dispatch = ReminderDispatch.objects.create(
        recipient=dev, release=release, date=DAY, subject="[dCMMS] Five: secret digest"
    )
    other = ReleaseFactory(status=ReleaseStatus.IN_REVIEW, owner=person("other.pm"))
    stranger = person("stranger")
    member_set(release=other, user=stranger, role=MemberRole.STAKEHOLDER, by=other.owner)
    client.force_login(stranger)

    url = reverse("admin:signoffs_reminderdispatch_change", args=[dispatch.pk])
    assert client.get(url).status_code == 404
    assert (
        dispatch.subject
        not in client.get(reverse("admin:signoffs_reminderdispatch_changelist")).content.decode()
    )


def test_dispatch_admin_shows_stuck_claims_with_their_age_when_filtered_on_stuck(
    work, client, settings
):
    import datetime

    from django.utils import timezone

    release, pm, dev = work
    settings.REMINDER_CLAIM_STALE_MINUTES = 10
    qa = person("qa")
    stuck = ReminderDispatch.objects.create(
        recipient=dev, release=release, date=DAY, subject="[dCMMS] stuck digest"
    )
    stuck.claimed_at = timezone.now() - datetime.timedelta(minutes=75)
    stuck.save()
    ReminderDispatch.objects.create(
        recipient=qa, release=release, date=DAY, subject="[dCMMS] fresh digest"
    )
    client.force_login(pm)
    url = reverse("admin:signoffs_reminderdispatch_changelist")

    everything = client.get(url).content.decode()
    only_stuck = client.get(url, {"stuck": "yes"}).content.decode()

    assert "Stuck claims (over 10 min)" in everything
    assert "Stuck, 1 h 15 min" in everything and "[dCMMS] fresh digest" in everything
    assert "Stuck, 1 h 15 min" in only_stuck and "[dCMMS] stuck digest" in only_stuck
    assert "[dCMMS] fresh digest" not in only_stuck


# ---------------------------------------------------------------- send now
def test_send_digests_now_sends_once_when_pm_manages_release(work, client):
    release, pm, _ = work
    client.force_login(pm)

    first = _send_now(client, release)
    second = _send_now(client, release)

    assert [m.to for m in mail.outbox] == [["dev@example.com"]]
    assert any(
        "Five (v5.0.0): 1 digest(s) sent, 0 already sent today." in t for t in _messages(first)
    )
    assert any("0 digest(s) sent, 1 already sent today" in t for t in _messages(second))
    dispatch = ReminderDispatch.objects.get()
    assert dispatch.history.first().history_user == pm


def test_send_digests_now_sends_nothing_when_user_only_views_release(work, client):
    release, pm, _ = work
    follower = person("follower")
    member_set(release=release, user=follower, role=MemberRole.STAKEHOLDER, by=pm)
    client.force_login(follower)

    _send_now(client, release)

    assert mail.outbox == []
    assert ReminderDispatch.objects.count() == 0


def test_send_digests_now_shows_refusal_when_release_is_draft(client):
    pm = person("pm")
    release = ReleaseFactory(status=ReleaseStatus.DRAFT, owner=pm, version="v6.0.0")
    release_access_refresh(release=release, user=pm)
    client.force_login(pm)

    response = _send_now(client, release)

    assert any(
        "reminders are sent only for releases that are In review" in t for t in _messages(response)
    )
    assert mail.outbox == []


def test_send_digests_now_warns_with_error_when_mail_server_refuses(work, client):
    release, pm, _ = work
    client.force_login(pm)
    refusal = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=refusal):
        response = _send_now(client, release)

    texts = _messages(response)
    assert any("1 failed (retry later): Connection unexpectedly closed" in t for t in texts)
    assert ReminderDispatch.objects.get().status == DispatchStatus.FAILED


def test_send_digests_now_says_so_when_nobody_has_anything_to_act_on(client):
    pm = person("pm")
    release, _ = release_in_review(pm, version="v8.0.0")
    release_access_refresh(release=release, user=pm)
    client.force_login(pm)

    response = _send_now(client, release)

    assert any("(nobody has anything to act on)" in t for t in _messages(response))
