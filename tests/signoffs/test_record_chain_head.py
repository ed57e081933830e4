"""The audit chain head in each decision record (document format 2): linked and frozen in the
decision's transaction, printed in the PDF, and checked against the chain by `verify_record`
and `verify_audit --records`. The attacker is simulated as the owner with the purge switch
(as in tests/security/test_chain.py). Format-1 records (no head) still load, render and verify."""

import json
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from checklist.chain import chain_flush, chain_head, verify
from checklist.models_audit import AuditChainEntry
from checklist.triggers import purge_allowed
from signoffs.exports import canonical_json, snapshot_sha256
from signoffs.models import DecisionRecord, Signature
from signoffs.records import (
    DOCUMENT_FORMAT,
    draft_pdf,
    record_chain_head,
    record_document_load,
    record_pdf_unsealed,
    record_render,
)
from tests.signoffs.record_fixtures import decide, pdf_pages

pytestmark = pytest.mark.django_db


def _head(record) -> dict:
    return json.loads(record.snapshot_json)["audit_chain_head"]


def _flat(data: bytes) -> str:
    return re.sub(r"\s+", " ", "\n".join(pdf_pages(data)))


def _verify_record(record, tmp_path, capsys) -> tuple[str, str, CommandError | None]:
    path = tmp_path / "record.pdf"
    path.write_bytes(bytes(record.pdf))
    error = None
    try:
        call_command("verify_record", str(path))
    except CommandError as exc:
        error = exc
    captured = capsys.readouterr()
    return captured.out, captured.err, error


def _verify_audit_records(capsys) -> tuple[str, str, CommandError | None]:
    chain_flush()  # as at the commit of the test's transaction
    error = None
    try:
        call_command("verify_audit", "--records")
    except CommandError as exc:
        error = exc
    captured = capsys.readouterr()
    return captured.out, captured.err, error


def _format_1(record) -> DecisionRecord:
    """The record as written before heads were embedded: format 1, no head, then rendered."""
    document = json.loads(record.snapshot_json)
    del document["audit_chain_head"]
    document["format"] = 1
    with purge_allowed():
        DecisionRecord.objects.filter(pk=record.pk).update(
            snapshot_json=canonical_json(document), snapshot_sha256=snapshot_sha256(document)
        )
    return record_render(record_id=record.pk)


# ---------------------------------------------------------------- frozen with the decision
def test_record_embeds_the_chain_head_after_linking_the_decision_when_decided(
    review, password, signing
):
    release, roles = review
    record = decide(release, roles, password)
    document = record_document_load(record)
    head = document["audit_chain_head"]
    assert document["format"] == DOCUMENT_FORMAT == 2
    assert head == record_chain_head(record) and head["seq"] > 0
    assert AuditChainEntry.objects.get(seq=head["seq"]).mac == head["mac"]
    assert head == chain_head()  # nothing linked since, in the decision's transaction
    decision = Signature.objects.get(record=record)
    link = AuditChainEntry.objects.get(table=Signature._meta.db_table, row_pk=decision.pk)
    assert link.seq <= head["seq"]  # the decision itself is under the head
    assert verify()[1] is None


def test_record_pdf_prints_the_chain_head_in_the_verification_part_when_rendered(decided):
    _, record = decided
    head = _head(record)
    text = _flat(bytes(record.pdf))
    assert f"Audit chain head at decision link {head['seq']}, MAC" in text
    assert head["mac"] in text.replace(" ", "")
    assert "verify_audit --records" in text


def test_draft_pdf_has_no_chain_head_when_taken_before_a_decision(content, signing):
    text = _flat(draft_pdf(release=content))
    assert "Audit chain head" not in text


# ---------------------------------------------------------------- verify_record
def test_verify_record_reports_the_chain_head_held_when_chain_intact(decided, tmp_path, capsys):
    _, record = decided
    head = _head(record)
    out, err, error = _verify_record(record, tmp_path, capsys)
    assert error is None, err
    assert f"Audit chain head at decision: link {head['seq']}, MAC {head['mac']}: held" in out
    assert out.rstrip().endswith("record.pdf: OK")


def test_verify_record_fails_when_the_link_at_the_head_was_deleted(decided, tmp_path, capsys):
    _, record = decided
    seq = _head(record)["seq"]
    with purge_allowed():
        AuditChainEntry.objects.filter(seq=seq).delete()
    _, err, error = _verify_record(record, tmp_path, capsys)
    assert error is not None and "NOT verified (1 problem(s))" in str(error)
    assert f"MISMATCH: audit chain head at decision (link {seq}," in err
    assert f"link {seq} is missing" in err


def test_verify_record_fails_when_the_chain_was_truncated_before_the_head(
    decided, tmp_path, capsys
):
    _, record = decided
    seq = _head(record)["seq"]
    with purge_allowed():
        AuditChainEntry.objects.filter(seq__gte=seq - 1).delete()
    _, err, error = _verify_record(record, tmp_path, capsys)
    assert error is not None
    assert f"link {seq} is missing: the chain ends at link {seq - 2} (truncated)" in err


def test_verify_record_fails_when_the_link_at_the_head_was_rewritten(decided, tmp_path, capsys):
    _, record = decided
    seq = _head(record)["seq"]
    with purge_allowed():
        AuditChainEntry.objects.filter(seq=seq).update(mac="f" * 64)
    _, err, error = _verify_record(record, tmp_path, capsys)
    assert error is not None
    assert f"link {seq} has another MAC than the head kept: the chain was rewritten" in err


def test_verify_record_fails_when_the_head_link_content_was_altered_keeping_its_mac(
    decided, tmp_path, capsys
):
    _, record = decided
    seq = _head(record)["seq"]
    with purge_allowed():
        AuditChainEntry.objects.filter(seq=seq).update(content_sha256="0" * 64)
    _, err, error = _verify_record(record, tmp_path, capsys)
    assert error is not None and f"link {seq}: its MAC is wrong" in err


# ---------------------------------------------------------------- verify_audit --records
def test_verify_audit_records_confirms_each_head_when_chain_intact(decided, capsys):
    out, err, error = _verify_audit_records(capsys)
    assert error is None, err
    assert "Audit chain intact" in out and "Decision records: 1 of 1 chain head(s) held." in out


def test_verify_audit_records_detects_a_truncated_chain_without_an_anchor_file(decided, capsys):
    _, record = decided
    chain_flush()  # the decision's transaction commits
    seq = _head(record)["seq"]
    with purge_allowed():
        AuditChainEntry.objects.filter(seq__gt=seq - 3).delete()
    assert verify()[1] is None  # the walk alone: a shorter chain still looks valid
    out, err, error = _verify_audit_records(capsys)
    assert error is not None and "does not hold the head of 1 decision record(s)" in str(error)
    assert f"MISMATCH: decision record #{record.pk} of {record.release.version}" in err
    assert f"the chain ends at link {seq - 3} (truncated)" in err
    assert "Decision records: 0 of 1 chain head(s) held." in out


def test_verify_audit_records_detects_a_rewritten_head_link(decided, capsys):
    _, record = decided
    seq = _head(record)["seq"]
    with purge_allowed():
        AuditChainEntry.objects.filter(seq=seq).update(mac="0" * 64)
    _, err, error = _verify_audit_records(capsys)
    assert error is not None  # the walk names the forged link first
    assert f"entry {seq}" in str(error) and "rewritten" in err


def test_verify_audit_records_names_a_record_whose_document_was_altered(decided, capsys):
    _, record = decided
    altered = record.snapshot_json.replace("Security audit outstanding", "All clear")
    with purge_allowed():
        DecisionRecord.objects.filter(pk=record.pk).update(snapshot_json=altered)
    _, err, error = _verify_audit_records(capsys)
    assert error is not None
    assert "does not match the record's fingerprint" in err


# ---------------------------------------------------------------- format 1 still works
def test_format_1_record_renders_and_verifies_without_a_chain_head(decided, tmp_path, capsys):
    release, record = decided
    old = _format_1(decide_again(release, record))
    assert old.state == "ready" and record_chain_head(old) is None
    assert "Audit chain head" not in _flat(record_pdf_unsealed(old))
    out, err, error = _verify_record(old, tmp_path, capsys)
    assert error is None, err
    assert "Audit chain head: not recorded (document format 1" in out
    out, err, error = _verify_audit_records(capsys)
    assert error is None, err
    assert "1 of 1 chain head(s) held; 1 older record(s) embed no head" in out


def decide_again(release, record):
    """Reopen and decide again: a second, still pending record beside the first."""
    from django.test import RequestFactory

    from signoffs.services import release_reopen, signature_give

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
    return DecisionRecord.objects.exclude(pk=record.pk).get(release=release)


# ---------------------------------------------------------------- PostgreSQL: the head holds
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_chain_head_stays_a_link_when_another_commit_links_during_the_decision(review, password):
    """The decision holds the chain's advisory lock to its commit: another transaction's commit
    waits to link its rows, then links them after the head, which stays in the chain."""
    import threading

    from django.db import connection, transaction

    from checklist.audit import audit_record
    from checklist.models_audit import AuditEvent

    release, roles = review
    started, done = threading.Event(), threading.Event()

    def other_commit():
        started.wait(10)
        try:
            audit_record("logout", username="someone else")  # links (waits), then commits
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=other_commit)
    thread.start()
    with transaction.atomic():
        record = decide(release, roles, password)
        started.set()
        assert not done.wait(1), "the other commit must wait for the decision to commit"
    thread.join(30)
    assert done.is_set()
    head = _head(record)
    event = AuditEvent.objects.get(username="someone else")
    link = AuditChainEntry.objects.get(table=AuditEvent._meta.db_table, row_pk=event.pk)
    assert link.seq > head["seq"]
    assert AuditChainEntry.objects.get(seq=head["seq"]).mac == head["mac"]
    assert verify()[1] is None
    call_command("verify_audit", "--records")
