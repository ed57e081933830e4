"""The audit records are append-only in the database (checklist.triggers). Unmarked tests run on
SQLite in `make test` and again on PostgreSQL in the second run of .ci/run."""

import datetime

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from checklist.audit import audit_record
from checklist.models import Release
from checklist.models_audit import AuditEvent
from checklist.triggers import protections, purge_allowed
from signoffs.choices import SignatureMeaning, SignatureState
from signoffs.models import DecisionRecord, Signature, SignatureEvent
from signoffs.services import requirement_assign, signature_give, signature_revoke
from tests.factories import ReleaseFactory, UserFactory

pytestmark = pytest.mark.django_db

HISTORY_MODELS = sorted(
    m._meta.label
    for m in apps.get_models()
    if m.__name__.startswith("Historical")
    and m._meta.app_label in {"checklist", "risks", "signoffs"}
)


def _refused(action) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        action()


def _signature(release=None) -> Signature:
    from tests.factories import SignoffRequirementFactory

    requirement = SignoffRequirementFactory(**({"release": release} if release else {}))
    return Signature.objects.create(
        requirement=requirement,
        release=requirement.release,
        signer=UserFactory(),
        printed_name="Dana Signer",
        printed_role=requirement.role,
        meaning=SignatureMeaning.GO,
        signed_at=timezone.now(),
        snapshot_sha256="0" * 64,
    )


def test_protection_covers_every_history_table_and_the_event_tables():
    tables = {rule.table for rule in protections(connection.vendor)}
    expected = {apps.get_model(label)._meta.db_table for label in HISTORY_MODELS}
    expected |= {"signoffs_signatureevent", "checklist_auditevent", "signoffs_signature"}
    expected |= {"signoffs_decisionrecord"}
    assert expected <= tables and len(HISTORY_MODELS) >= 10


def test_history_row_update_and_delete_refused_when_append_only(append_only):
    release = ReleaseFactory(name="Original name")
    history = Release.history.model
    row = history.objects.get(id=release.pk)
    _refused(lambda: history.objects.filter(pk=row.pk).update(name="Forged name"))
    _refused(lambda: history.objects.filter(pk=row.pk).delete())
    row.refresh_from_db()
    assert row.name == "Original name" and history.objects.filter(id=release.pk).count() == 1


def _triggers_on(table: str) -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [table],
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table]
            )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.parametrize("label", HISTORY_MODELS)
def test_every_history_table_has_update_and_delete_triggers_when_migrated(label):
    table = apps.get_model(label)._meta.db_table
    names = _triggers_on(table)
    assert {n for n in names if n.endswith("_upd")} and {n for n in names if n.endswith("_del")}


@pytest.mark.parametrize("label", ["risks.Risk", "signoffs.SignoffRequirement"])
def test_history_of_other_apps_refuses_raw_sql_update_and_delete_when_append_only(
    append_only, label
):
    from tests.factories import RiskFactory, SignoffRequirementFactory

    {"risks.Risk": RiskFactory, "signoffs.SignoffRequirement": SignoffRequirementFactory}[label]()
    model = apps.get_model(label).history.model
    table = connection.ops.quote_name(model._meta.db_table)
    count = model.objects.count()
    assert count >= 1

    def run(sql):
        with connection.cursor() as cursor:
            cursor.execute(sql)

    _refused(lambda: run(f"UPDATE {table} SET history_change_reason = 'forged'"))
    _refused(lambda: run(f"DELETE FROM {table}"))
    assert model.objects.count() == count
    assert not model.objects.filter(history_change_reason="forged").exists()


def test_audit_and_signature_events_refuse_update_and_delete_when_append_only(append_only):
    event = audit_record("login", username="dana")
    _refused(lambda: AuditEvent.objects.filter(pk=event.pk).update(username="mallory"))
    _refused(lambda: AuditEvent.objects.filter(pk=event.pk).delete())
    signature = _signature()
    moved = SignatureEvent.objects.create(
        signature=signature, to_state=SignatureState.VALID, at=timezone.now(), reason="signed"
    )
    _refused(lambda: SignatureEvent.objects.filter(pk=moved.pk).update(reason="forged"))
    _refused(lambda: SignatureEvent.objects.filter(pk=moved.pk).delete())
    event.refresh_from_db()
    moved.refresh_from_db()
    assert (event.username, moved.reason) == ("dana", "signed")


def test_signature_changes_only_its_state_when_append_only(append_only):
    signature = _signature()
    Signature.objects.filter(pk=signature.pk).update(state=SignatureState.STALE)  # allowed
    _refused(lambda: Signature.objects.filter(pk=signature.pk).update(printed_name="Mallory"))
    _refused(lambda: Signature.objects.filter(pk=signature.pk).update(meaning="defer"))
    _refused(lambda: Signature.objects.filter(pk=signature.pk).delete())
    signature.refresh_from_db()
    assert (signature.printed_name, signature.state) == ("Dana Signer", SignatureState.STALE)


def test_decision_record_keeps_snapshot_and_sealed_pdf_when_append_only(append_only):
    signature = _signature()
    record = DecisionRecord.objects.create(
        release=signature.release, signature=signature, snapshot_json="{}", snapshot_sha256="a" * 64
    )
    records = DecisionRecord.objects.filter(pk=record.pk)
    records.update(state="ready", pdf=b"%PDF-1", pdf_sha256="b" * 64, attempts=1)  # first seal
    _refused(lambda: records.update(snapshot_json='{"forged": true}'))
    _refused(lambda: records.update(snapshot_sha256="c" * 64))
    _refused(lambda: records.update(pdf=b"%PDF-forged"))
    _refused(lambda: records.update(pdf_sha256="d" * 64))
    _refused(lambda: records.delete())
    record.refresh_from_db()
    assert (record.snapshot_json, bytes(record.pdf), record.pdf_sha256) == (
        "{}",
        b"%PDF-1",
        "b" * 64,
    )


def test_decision_record_changes_only_its_later_filled_columns_when_append_only(append_only):
    signature = _signature()
    record = DecisionRecord.objects.create(
        release=signature.release, signature=signature, snapshot_json="{}", snapshot_sha256="a" * 64
    )
    records = DecisionRecord.objects.filter(pk=record.pk)
    now = timezone.now()
    records.update(  # the retry bookkeeping, as a failed attempt writes it: allowed
        state="pending",
        failure_reason="the broker was unreachable",
        failed_at=now,
        attempts=2,
        next_attempt_at=now,
        rendered_at=now,
    )
    other = _signature()
    frozen = {
        "id": record.pk + 1000,
        "release": other.release,
        "signature": other,
        "snapshot_json": "{}  ",
        "snapshot_sha256": "e" * 64,
        "created_at": now - datetime.timedelta(days=1),
    }
    later_filled = set(DecisionRecord.LATER_FILLED)
    columns = {f.name for f in DecisionRecord._meta.concrete_fields}
    assert columns - later_filled == set(frozen)  # a new column is frozen unless listed
    for name, value in frozen.items():
        _refused(lambda name=name, value=value: records.update(**{name: value}))
    record.refresh_from_db()
    assert (record.release_id, record.signature_id, record.attempts) == (
        signature.release_id,
        signature.pk,
        2,
    )
    assert record.failure_reason == "the broker was unreachable"


def test_purge_switch_lets_the_owner_delete_inside_one_transaction(append_only):
    event = audit_record("login", username="old")
    with purge_allowed():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert not AuditEvent.objects.filter(pk=event.pk).exists()
    fresh = audit_record("login", username="new")
    _refused(lambda: AuditEvent.objects.filter(pk=fresh.pk).delete())  # switch closed again


def test_services_sign_revoke_and_reassign_work_when_append_only(append_only, review, password):
    release, roles = review
    qa = roles["QA Lead"]
    signed = signature_give(
        requirement=qa,
        user=qa.assignee,
        username=qa.assignee.username,
        password=password,
        meaning=SignatureMeaning.APPROVED,
    )
    signature_revoke(signature=signed, by=qa.assignee, reason="signed too early")
    again = signature_give(
        requirement=qa,
        user=qa.assignee,
        username=qa.assignee.username,
        password=password,
        meaning=SignatureMeaning.APPROVED,
    )
    requirement_assign(requirement=qa, assignee=UserFactory(staff=True), by=release.owner)
    again.refresh_from_db()
    assert again.state == SignatureState.STALE
    assert SignatureEvent.objects.filter(signature__requirement=qa).count() >= 4
