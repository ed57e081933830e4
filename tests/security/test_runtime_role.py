"""On PostgreSQL the portal runs as a role that owns no table: it cannot UPDATE, DELETE,
TRUNCATE or DISABLE TRIGGER on the audit records, even with the purge switch set."""

import os

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from checklist.audit import audit_record
from checklist.models import Release
from checklist.models_audit import AuditEvent
from signoffs.choices import SignatureMeaning, SignatureState
from signoffs.models import Signature
from tests.factories import ReleaseFactory, SignoffRequirementFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROLE = os.environ.get("DCMMS_RUNTIME_ROLE", "dcmms_runtime")


@pytest.fixture
def runtime(db):
    """A connection as the runtime role, after `grant_runtime_role` (as .ci/run and the
    deployment do). The role is created here too when the cluster does not have it yet."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE ROLE {connection.ops.quote_name(ROLE)} LOGIN")
    call_command("grant_runtime_role", ROLE)
    params = connection.settings_dict
    conn = psycopg.connect(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        dbname=params["NAME"],
        user=ROLE,
        autocommit=True,
    )
    yield conn
    conn.close()


def _refused(conn, sql, params=()):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql, params)


def test_runtime_role_cannot_update_delete_truncate_or_disable_triggers(runtime):
    release = ReleaseFactory(name="Original")
    event = audit_record("login", username="dana")
    history = Release.history.model._meta.db_table
    for table in (history, "checklist_auditevent", "signoffs_signatureevent"):
        _refused(runtime, f'UPDATE "{table}" SET id = id')
        _refused(runtime, f'DELETE FROM "{table}"')
        _refused(runtime, f'TRUNCATE "{table}"')
        _refused(runtime, f'ALTER TABLE "{table}" DISABLE TRIGGER ALL')
    runtime.execute("SET dcmms.allow_purge = on")  # the switch is for the owner only
    _refused(runtime, f'DELETE FROM "{history}"')
    assert Release.history.filter(id=release.pk).get().name == "Original"
    assert AuditEvent.objects.get(pk=event.pk).username == "dana"


def test_runtime_role_reads_adds_and_changes_only_signature_state(runtime):
    requirement = SignoffRequirementFactory()
    signature = Signature.objects.create(
        requirement=requirement,
        release=requirement.release,
        signer=UserFactory(),
        printed_name="Dana Signer",
        printed_role=requirement.role,
        meaning=SignatureMeaning.APPROVED,
        signed_at=timezone.now(),
        snapshot_sha256="0" * 64,
    )
    count = runtime.execute('SELECT count(*) FROM "checklist_auditevent"').fetchone()[0]
    runtime.execute(
        'INSERT INTO "checklist_auditevent" (at, username, kind, object_repr, detail) '
        "VALUES (now(), 'runtime', 'login', '', '{}')"
    )
    runtime.execute('UPDATE "signoffs_signature" SET state = %s', [SignatureState.STALE])
    _refused(runtime, "UPDATE \"signoffs_signature\" SET printed_name = 'Mallory'")
    _refused(runtime, 'DELETE FROM "signoffs_signature"')
    signature.refresh_from_db()
    assert (signature.state, signature.printed_name) == (SignatureState.STALE, "Dana Signer")
    assert AuditEvent.objects.count() == count + 1


def test_runtime_role_updates_only_later_filled_record_columns_when_granted(runtime):
    from signoffs.models import DecisionRecord

    requirement = SignoffRequirementFactory()
    signature = Signature.objects.create(
        requirement=requirement,
        release=requirement.release,
        signer=UserFactory(),
        printed_name="Dana Signer",
        printed_role=requirement.role,
        meaning=SignatureMeaning.DEFER,
        signed_at=timezone.now(),
        snapshot_sha256="0" * 64,
    )
    record = DecisionRecord.objects.create(
        release=requirement.release, signature=signature, snapshot_json="{}", snapshot_sha256="a"
    )
    # What a failed attempt and a seal write (signoffs.records saves exactly these columns).
    runtime.execute(
        'UPDATE "signoffs_decisionrecord" SET state = %s, failure_reason = %s, failed_at = now(), '
        "attempts = 1, next_attempt_at = now(), pdf = %s, pdf_sha256 = %s, rendered_at = now()",
        ["ready", "", b"%PDF-1", "b" * 64],
    )
    # FOR UPDATE (record_render's lock) needs an UPDATE privilege: the column grants give it.
    runtime.execute('SELECT id FROM "signoffs_decisionrecord" FOR UPDATE SKIP LOCKED')
    for column, value in (("snapshot_json", "{}"), ("snapshot_sha256", "c"), ("created_at", None)):
        _refused(runtime, f'UPDATE "signoffs_decisionrecord" SET {column} = %s', [value])
    _refused(runtime, 'DELETE FROM "signoffs_decisionrecord"')
    record.refresh_from_db()
    assert (record.state, record.attempts, record.snapshot_json) == ("ready", 1, "{}")
