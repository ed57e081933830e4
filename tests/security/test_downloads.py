"""Record downloads audited (§11.10(e)): every decision record handed out (sealed or DRAFT) and
every release export (JSON, Markdown, CSV) is an append-only, chained ``record_download`` audit
event naming who, which release and record, the state, the format and the SHA-256 of the bytes
handed out; a refused download records nothing."""

import hashlib

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from checklist.chain import chain_flush, verify
from checklist.models_audit import AuditChainEntry, AuditEvent
from checklist.triggers import purge_allowed
from signoffs.choices import MemberRole
from signoffs.services import member_set
from tests.factories import UserFactory
from tests.signoffs import record_fixtures
from tests.signoffs.record_fixtures import decide

# The decision-record fixtures, shared with tests/signoffs.
content, decided = record_fixtures.content, record_fixtures.decided
signing, signing_pair = record_fixtures.signing, record_fixtures.signing_pair

pytestmark = pytest.mark.django_db
EXPORTS = ("json", "md", "csv")


def _download(record):
    return reverse("admin:signoffs_decisionrecord_download", args=[record.pk])


def _draft(release):
    return reverse("admin:signoffs_decisionrecord_draft", args=[release.pk])


def _export(release, fmt):
    return reverse("admin:checklist_release_export", args=[release.pk, fmt])


def _downloads():
    return AuditEvent.objects.filter(kind="record_download")


@pytest.fixture
def auditor(decided):
    release, _ = decided
    user = UserFactory(username="avery", staff=True)
    member_set(release=release, user=user, role=MemberRole.AUDITOR, by=release.owner)
    return user


def test_sealed_download_writes_an_audit_event_with_actor_release_and_digest_when_granted(
    client, decided, auditor
):
    release, record = decided
    client.force_login(auditor)
    response = client.get(_download(record), REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200
    event = _downloads().get()
    assert (event.actor, event.username, event.release_id) == (auditor, "avery", release.pk)
    assert event.ip == "203.0.113.7" and str(record.release.version) in event.object_repr
    assert event.detail == {
        "what": "decision record",
        "record": record.pk,
        "state": "sealed",
        "format": "pdf",
        "bytes": len(response.content),
        "sha256": hashlib.sha256(response.content).hexdigest(),
        "fingerprint": record.snapshot_sha256,
    }
    assert event.detail["sha256"] == record.pdf_sha256  # what was handed out is what was sealed
    assert not LogEntry.objects.exists()  # one record of a download: the audit event


def test_draft_download_writes_an_audit_event_marked_draft_when_granted(client, content, signing):
    release = content
    client.force_login(release.owner)
    response = client.get(_draft(release))
    assert response.status_code == 200
    event = _downloads().get()
    assert (event.actor, event.release_id) == (release.owner, release.pk)
    assert event.detail["record"] is None
    assert (event.detail["what"], event.detail["state"], event.detail["format"]) == (
        "DRAFT decision record",
        "draft",
        "pdf",
    )
    assert event.detail["sha256"] == hashlib.sha256(response.content).hexdigest()


@pytest.mark.parametrize("fmt", EXPORTS)
def test_release_export_writes_an_audit_event_with_format_and_digest_when_granted(
    client, decided, auditor, fmt
):
    release, _ = decided
    client.force_login(auditor)
    response = client.get(_export(release, fmt))
    assert response.status_code == 200
    event = _downloads().get()
    assert (event.actor, event.release_id) == (auditor, release.pk)
    assert event.detail == {
        "what": "release export",
        "record": None,
        "state": "live",
        "format": fmt,
        "bytes": len(response.content),
        "sha256": hashlib.sha256(response.content).hexdigest(),
    }


def test_refused_downloads_write_no_download_event_when_release_not_granted(client, decided):
    release, record = decided
    client.force_login(UserFactory(staff=True))
    urls = [_download(record), _draft(release), *(_export(release, fmt) for fmt in EXPORTS)]
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert client.get(_export(release, "xlsx")).status_code == 404
    assert not _downloads().exists()


def test_anonymous_downloads_write_no_download_event_when_sent_to_login(client, decided):
    release, record = decided
    for url in (_download(record), _draft(release), _export(release, "csv")):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert not _downloads().exists()


def test_unrendered_record_download_writes_no_download_event_when_refused(client, review, password):
    release, roles = review
    record = decide(release, roles, password)
    client.force_login(release.owner)
    assert client.get(_download(record)).status_code == 404
    assert not _downloads().exists()


def test_download_event_is_chained_so_editing_it_is_detected_when_verified(
    client, decided, auditor
):
    _, record = decided
    client.force_login(auditor)
    client.get(_download(record))
    chain_flush()
    event = _downloads().get()
    assert AuditChainEntry.objects.filter(table=AuditEvent._meta.db_table, row_pk=event.pk)
    assert verify()[1] is None
    with purge_allowed():
        AuditEvent.objects.filter(pk=event.pk).update(detail={**event.detail, "state": "draft"})
    problem = verify()[1]
    assert problem is not None and "the row was changed" in problem.message


def test_download_view_query_count_is_pinned_when_the_auditor_downloads(
    client, decided, auditor, django_assert_max_num_queries
):
    _, record = decided
    client.force_login(auditor)
    client.get(reverse("admin:index"))  # session and permission caches warm, as in use
    # session, user, the record (its release check folded in), the event, the session saved
    with django_assert_max_num_queries(7):
        response = client.get(_download(record))
    assert response.status_code == 200 and _downloads().count() == 1
