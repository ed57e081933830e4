import hashlib
import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from checklist.models_audit import AuditEvent
from signoffs.choices import MemberRole
from signoffs.models import DecisionRecord
from signoffs.record_tasks import render_decision_record
from signoffs.records import record_render
from signoffs.services import member_set
from tests.factories import UserFactory
from tests.signoffs.record_fixtures import decide, pdf_pages

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:signoffs_decisionrecord_changelist"


def _download(record):
    return reverse("admin:signoffs_decisionrecord_download", args=[record.pk])


def _draft(release):
    return reverse("admin:signoffs_decisionrecord_draft", args=[release.pk])


@pytest.fixture
def auditor(decided):
    release, _ = decided
    user = UserFactory(username="avery", staff=True)
    member_set(release=release, user=user, role=MemberRole.AUDITOR, by=release.owner)
    return user


@pytest.fixture
def stakeholder(content):
    """A stakeholder of the release, granted before the decision: a decided release is frozen,
    only an auditor's access is granted after it."""
    user = UserFactory(staff=True)
    member_set(release=content, user=user, role=MemberRole.STAKEHOLDER, by=content.owner)
    return user


@pytest.mark.parametrize("who", ["auditor", "pm", "stakeholder", "signer"])
def test_download_returns_the_stored_sealed_pdf_and_logs_it_when_user_may_see_release(
    client, stakeholder, decided, auditor, who
):
    release, record = decided
    if who == "auditor":
        user = auditor
    elif who == "pm":
        user = release.owner
    elif who == "stakeholder":
        user = stakeholder
    else:
        user = release.signoff_requirements.get(role="QA Lead").assignee
    client.force_login(user)
    response = client.get(_download(record))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    assert response.content == bytes(record.pdf)
    event = AuditEvent.objects.get(kind="record_download", actor=user)
    assert event.release_id == release.pk
    assert (event.detail["record"], event.detail["state"]) == (record.pk, "sealed")
    assert event.detail["sha256"] == record.pdf_sha256


def test_download_and_draft_answer_404_when_user_is_not_granted_the_release(client, decided):
    release, record = decided
    stranger = UserFactory(staff=True)
    client.force_login(stranger)
    assert client.get(_download(record)).status_code == 404
    assert client.get(_draft(release)).status_code == 404
    assert not AuditEvent.objects.filter(kind="record_download").exists()


def test_download_redirects_to_login_when_anonymous(client, decided):
    _, record = decided
    response = client.get(_download(record))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_download_answers_404_when_the_record_is_not_rendered_yet(client, review, password):
    release, roles = review
    record = decide(release, roles, password)
    client.force_login(release.owner)
    assert client.get(_download(record)).status_code == 404


def test_draft_download_is_watermarked_and_logged_when_any_release_is_requested(
    client, content, signing
):
    release = content
    client.force_login(release.owner)
    response = client.get(_draft(release))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    pages = pdf_pages(response.content)
    assert pages and all("DRAFT" in page for page in pages)
    event = AuditEvent.objects.get(kind="record_download", actor=release.owner)
    assert event.release_id == release.pk and event.detail["state"] == "draft"
    assert event.detail["sha256"] == hashlib.sha256(response.content).hexdigest()


def test_release_page_links_the_draft_record_when_viewed(client, content):
    client.force_login(content.owner)
    response = client.get(reverse("admin:checklist_release_change", args=[content.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert _draft(content) in body and "Draft record (PDF)" in body


def test_changelist_shows_each_state_and_failure_reason_when_records_differ(
    client, decided, auditor, settings, tmp_path, django_assert_max_num_queries
):
    from django.test import RequestFactory

    from signoffs.services import release_reopen, signature_give

    release, ready = decided
    release_reopen(release=release, by=release.owner, reason="Pen test booked")  # in review
    ceo = release.signoff_requirements.get(role="CEO")
    signature_give(
        requirement=ceo,
        user=ceo.assignee,
        username=ceo.assignee.username,
        password="correct horse battery staple",
        meaning="defer",
        comment="Again",
        request=RequestFactory().post("/"),
    )
    settings.DECISION_SIGNING_KEY = str(tmp_path / "gone.pem")
    settings.DECISION_RECORD_RETRY_ATTEMPTS = 1  # the first failure is the last attempt
    failed = record_render(record_id=DecisionRecord.objects.get(state="pending").pk)
    assert failed.state == "failed"
    client.force_login(auditor)
    with django_assert_max_num_queries(20):
        response = client.get(reverse(CHANGELIST))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Ready" in body and "Failed" in body and "gone.pem" in body
    assert _download(ready) in body and _download(failed) not in body
    assert "retry_rendering" not in body  # an auditor does not retry


def test_retry_action_requeues_a_failed_record_when_the_pm_asks(
    client,
    review,
    password,
    settings,
    tmp_path,
    signing,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    release, roles = review
    record = decide(release, roles, password)
    good_key = settings.DECISION_SIGNING_KEY
    settings.DECISION_SIGNING_KEY = str(tmp_path / "gone.pem")
    settings.DECISION_RECORD_RETRY_ATTEMPTS = 1  # the first failure is the last attempt
    assert record_render(record_id=record.pk).state == "failed"
    settings.DECISION_SIGNING_KEY = good_key
    queued = []
    monkeypatch.setattr(render_decision_record, "delay", queued.append)
    client.force_login(release.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse(CHANGELIST),
            {"action": "retry_rendering", "_selected_action": [record.pk]},
            follow=True,
        )
    assert "Rendering queued again for 1 record(s)." in response.content.decode()
    record.refresh_from_db()
    assert record.state == "pending" and queued == [record.pk]
    assert record_render(record_id=record.pk).state == "ready"


def test_retry_action_refuses_when_the_record_is_ready(client, decided):
    release, record = decided
    client.force_login(release.owner)
    response = client.post(
        reverse(CHANGELIST),
        {"action": "retry_rendering", "_selected_action": [record.pk]},
        follow=True,
    )
    assert "a ready record never changes" in response.content.decode()
    record.refresh_from_db()
    assert record.state == "ready"


def test_downloaded_pdf_opens_with_a_seal_field_when_read(client, decided, auditor):
    _, record = decided
    client.force_login(auditor)
    reader = PdfReader(io.BytesIO(client.get(_download(record)).content))
    fields = reader.get_fields() or {}
    assert any(field.get("/FT") == "/Sig" for field in fields.values())
