import hashlib
import json
import logging

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.test import RequestFactory
from kombu.exceptions import OperationalError as BrokerDown

from checklist.chain import chain_flush, chained_models
from checklist.choices import ReleaseStatus
from signoffs import record_tasks, records
from signoffs.exports import canonical_json, snapshot_sha256
from signoffs.models import DecisionRecord
from signoffs.record_tasks import render_decision_record
from signoffs.records import record_render, record_retry
from signoffs.services import release_reopen, signature_give
from tests.factories import ItemFactory, RiskFactory, SectionFactory
from tests.signoffs.record_fixtures import decide

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """The record IDs handed to the broker."""
    calls = []
    monkeypatch.setattr(render_decision_record, "delay", lambda record_id: calls.append(record_id))
    return calls


def test_record_create_freezes_snapshot_and_fingerprint_when_final_decision_recorded(
    review, password, queued, django_capture_on_commit_callbacks
):
    release, roles = review
    with django_capture_on_commit_callbacks(execute=True):
        record = decide(release, roles, password)
    assert record.state == "pending" and not record.pdf and record.attempts == 0
    document = json.loads(record.snapshot_json)
    assert record.snapshot_json == canonical_json(document)
    assert record.snapshot_sha256 == hashlib.sha256(record.snapshot_json.encode()).hexdigest()
    assert document["decision"]["meaning"] == "defer"
    assert document["decision"]["comment"] == "Security audit outstanding"
    assert document["decision"]["at"] == record.signature.signed_at.isoformat()
    assert document["snapshot"]["release"]["status"] == ReleaseStatus.DECIDED
    roles_signed = {s["role"]: len(s["signatures"]) for s in document["signoffs"]}
    assert roles_signed == {"QA Lead": 1, "Security Officer": 1, "CEO": 1}
    assert any("Final decision" in row["reason"] for row in document["audit"])
    assert queued == [record.pk]
    assert record.history.first().history_change_reason.startswith("Decision record created")


def test_record_create_is_not_queued_when_the_decision_rolls_back(review, password, queued):
    release, roles = review
    record = decide(release, roles, password)
    assert queued == []  # on_commit: nothing leaves before the decision commits
    assert record.signature.release_id == release.pk


def test_decision_succeeds_and_record_stays_pending_when_broker_is_down(
    review, password, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def down(record_id):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(render_decision_record, "delay", down)
    release, roles = review
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        record = decide(release, roles, password)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED
    record.refresh_from_db()
    assert record.state == "pending"
    assert "stays pending: broker unreachable" in caplog.text


def test_record_render_stores_sealed_pdf_once_when_rendered_twice(
    review, content, password, signing
):
    release, roles = review
    record = decide(release, roles, password)
    ready = record_render(record_id=record.pk)
    assert ready.state == "ready" and ready.attempts == 1 and ready.rendered_at
    pdf = bytes(ready.pdf)
    assert ready.pdf_sha256 == hashlib.sha256(pdf).hexdigest()
    assert b"/ByteRange" in pdf and b"/adbe.pkcs7.detached" not in pdf  # PAdES (ETSI.CAdES)
    again = record_render(record_id=record.pk)
    assert bytes(again.pdf) == pdf and again.attempts == 1
    assert again.history.count() == 2  # created, rendered: nothing more


def test_record_render_fails_with_reason_and_retry_recovers_when_key_is_missing(
    review, password, settings, tmp_path, signing, queued, django_capture_on_commit_callbacks
):
    release, roles = review
    record = decide(release, roles, password)
    good_key = settings.DECISION_SIGNING_KEY
    settings.DECISION_SIGNING_KEY = str(tmp_path / "absent-key.pem")
    settings.DECISION_RECORD_RETRY_ATTEMPTS = 1  # the first failure is the last attempt
    failed = record_render(record_id=record.pk)
    assert failed.state == "failed" and not failed.pdf and not failed.pdf_sha256
    assert "absent-key.pem" in failed.failure_reason and "SealError" in failed.failure_reason

    settings.DECISION_SIGNING_KEY = good_key
    with django_capture_on_commit_callbacks(execute=True):
        retried = record_retry(record=failed, by=release.owner)
    assert retried.state == "pending" and retried.failure_reason == ""
    assert queued[-1] == record.pk
    ready = record_render(record_id=record.pk)
    assert ready.state == "ready" and ready.attempts == 2


def test_record_retry_refuses_when_the_record_is_ready(decided):
    release, record = decided
    with pytest.raises(ValidationError, match="ready record never changes"):
        record_retry(record=record, by=release.owner)


def test_record_render_refuses_a_stored_snapshot_when_it_no_longer_matches_its_fingerprint(
    review, password, signing
):
    release, roles = review
    record = decide(release, roles, password)
    DecisionRecord.objects.filter(pk=record.pk).update(snapshot_json=record.snapshot_json + " ")
    failed = record_render(record_id=record.pk)
    assert failed.state == "failed" and "fingerprint" in failed.failure_reason


def test_reopen_and_new_decision_add_a_second_record_when_first_is_kept(decided, password):
    release, first = decided
    first_pdf = bytes(first.pdf)
    release_reopen(release=release, by=release.owner, reason="Pen test booked")  # in review
    ceo = release.signoff_requirements.get(role="CEO")
    signature_give(
        requirement=ceo,
        user=ceo.assignee,
        username=ceo.assignee.username,
        password=password,
        meaning="defer",
        comment="Still waiting for the pen test",
        request=RequestFactory().post("/"),
    )
    assert DecisionRecord.objects.filter(release=release).count() == 2
    second = DecisionRecord.objects.get(release=release, state="pending")
    assert second.snapshot_sha256 != first.snapshot_sha256
    document = json.loads(second.snapshot_json)
    ceo_row = next(r for r in document["signoffs"] if r["role"] == "CEO")
    states = [(s["state"], s["state_reason"]) for s in ceo_row["signatures"]]
    assert ("stale", "Release reopened: Pen test booked") in states
    first.refresh_from_db()
    assert bytes(first.pdf) == first_pdf and first.state == "ready"


def test_render_task_renders_by_id_and_tolerates_a_vanished_row_when_run(review, password, signing):
    release, roles = review
    record = decide(release, roles, password)
    assert render_decision_record.apply(args=[record.pk]).get() == "ready"
    assert render_decision_record.apply(args=[record.pk + 1000]).get() == "missing"


def test_render_task_retries_only_when_the_database_is_unavailable(monkeypatch):
    calls = []

    def flaky(*, record_id):
        calls.append(record_id)
        raise OperationalError("database is locked")

    monkeypatch.setattr(records, "record_render", flaky)
    result = render_decision_record.apply(args=[7])
    assert len(calls) == 1 + render_decision_record.max_retries
    assert isinstance(result.result, OperationalError)

    calls.clear()

    def broken(*, record_id):
        calls.append(record_id)
        raise RuntimeError("a bug")

    monkeypatch.setattr(records, "record_render", broken)
    result = render_decision_record.apply(args=[7])
    assert calls == [7] and isinstance(result.result, RuntimeError)
    assert record_tasks.render_decision_record is render_decision_record


def test_record_create_query_count_is_bounded_when_the_release_grows(
    review, content, password, django_assert_max_num_queries
):
    release, roles = review
    for role in ("QA Lead", "Security Officer"):
        requirement = roles[role]
        signature_give(
            requirement=requirement,
            user=requirement.assignee,
            username=requirement.assignee.username,
            password=password,
            meaning="approved",
            comment="ok",
            request=RequestFactory().post("/"),
        )
    ceo = roles["CEO"]
    section = SectionFactory(release=release, number="9", title="Grown")
    for n in range(30):
        ItemFactory(section=section, text=f"Grown {n}", failing=n % 2 == 0)
    for n in range(5):
        RiskFactory(release=release, key=f"R-1{n:02d}")
    chain_flush()  # as at every commit: only the decision's own rows are left to link
    # 88 with or without the added rows, plus linking the decision's rows into the audit chain
    # (one query per chained table, 19 today) and 5 to open it, lock, insert and read its head.
    with django_assert_max_num_queries(90 + len(chained_models()) + 5):
        signature_give(
            requirement=ceo,
            user=ceo.assignee,
            username=ceo.assignee.username,
            password=password,
            meaning="defer",
            comment="wait",
            request=RequestFactory().post("/"),
        )
    record = DecisionRecord.objects.get(release=release)
    assert record.snapshot_sha256 == snapshot_sha256(json.loads(record.snapshot_json))
