"""The start-up gate (dcmms_release/keys.py): the portal does not start with an audit chain key or
a decision-record signing pair that did not write the data, says which key and what to do, and
generates no key then. Unmarked: SQLite in `make test`, PostgreSQL in the second run of .ci/run.
The subprocess tests build their own SQLite database under a temporary var folder."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError

from checklist.audit import audit_record
from checklist.chain import chain_flush
from checklist.chain_keys import ChainKeyMismatch, chain_key_assert, key_fingerprint
from checklist.models_audit import AuditChainEntry
from dcmms_release.keys import KeysRefused, keys_check, keys_gate, keys_problems
from signoffs.signing_cert import ensure_signing_cert
from tests.signoffs import record_fixtures

content, decided = record_fixtures.content, record_fixtures.decided
signing, signing_pair = record_fixtures.signing, record_fixtures.signing_pair
ROOT = Path(__file__).resolve().parents[2]
OTHER_KEY = "a stale key file from another deployment"


@pytest.fixture
def chained(db):
    """Audit rows linked into the chain with the configured key (as at a commit)."""
    for n in range(3):
        audit_record("login", username=f"user{n}")
    chain_flush()
    assert AuditChainEntry.objects.count() >= 3
    return AuditChainEntry.objects.count()


def _refusal(where: str = "web") -> str:
    with pytest.raises(KeysRefused) as refused:
        keys_gate(where)
    return str(refused.value)


# ---------------------------------------------------------------- the shared function
def test_keys_gate_lets_the_portal_start_when_the_configured_keys_wrote_the_data(
    decided, django_assert_max_num_queries
):
    chain_flush()
    assert AuditChainEntry.objects.exists()
    with django_assert_max_num_queries(2):  # the first link, the newest sealed record
        assert keys_problems() == []
    keys_gate("web")


def test_keys_gate_lets_a_fresh_database_start_when_nothing_is_chained_or_sealed(
    db, settings, django_assert_max_num_queries
):
    settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_SOURCE = "just generated", "generated"
    with django_assert_max_num_queries(2):
        keys_gate("web")


def test_keys_gate_refuses_naming_the_chain_key_when_another_key_is_configured(chained, settings):
    settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_SOURCE = OTHER_KEY, "file"
    message = _refusal("worker")
    assert message.startswith("The dCMMS portal (worker) refuses to start.")
    assert "AUDIT_CHAIN_KEY is not the key the audit chain was written with" in message
    assert f"an audit chain of {chained} link(s)" in message
    assert "read from the key file audit_chain_key" in message
    assert f"fingerprint {key_fingerprint(OTHER_KEY)}" in message and OTHER_KEY not in message
    assert "Restore the key from your backup" in message
    assert "Never generate a new key" in message


def test_keys_gate_refuses_as_missing_and_discards_the_generated_key_when_no_key_was_kept(
    chained, settings, tmp_path
):
    key_file = tmp_path / "audit_chain_key"
    key_file.write_text("generated at this start\n")
    settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_SOURCE = (
        "generated at this start",
        "generated",
    )
    settings.AUDIT_CHAIN_KEY_FILE = key_file
    message = _refusal()
    assert "AUDIT_CHAIN_KEY is missing: it is not set and there was no key file" in message
    assert "The key generated for a fresh checkout was discarded" in message
    assert not key_file.exists()


def test_keys_gate_keeps_a_key_file_restored_meanwhile_when_it_refuses(chained, settings, tmp_path):
    key_file = tmp_path / "audit_chain_key"
    key_file.write_text("the restored key\n")
    settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_SOURCE = (
        "generated at this start",
        "generated",
    )
    settings.AUDIT_CHAIN_KEY_FILE = key_file
    _refusal()
    assert key_file.read_text() == "the restored key\n"


def test_keys_gate_starts_and_leaves_a_forged_tail_link_to_verify_audit_when_link_1_verifies(
    chained,
):
    """Link 1 is the reference: a link appended without the key (the runtime role may INSERT)
    is verify_audit's finding, not a way to stop the portal from starting."""
    last = AuditChainEntry.objects.order_by("-seq").first()
    AuditChainEntry.objects.create(
        seq=last.seq + 1,
        table=last.table,
        row_pk=10**9,
        content_sha256="0" * 64,
        prev_mac=last.mac,
        mac="f" * 64,
    )
    keys_gate("web")


def test_chain_key_assert_refuses_to_extend_a_chain_when_another_key_is_configured(
    chained, settings
):
    chain_key_assert()
    settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_SOURCE = OTHER_KEY, "environment"
    with pytest.raises(ChainKeyMismatch, match="not the key the audit chain was written with"):
        chain_key_assert()


def test_keys_gate_refuses_naming_the_signing_key_when_it_is_missing_and_records_are_sealed(
    decided, settings, tmp_path
):
    settings.DECISION_SIGNING_KEY = str(tmp_path / "lost-key.pem")
    message = _refusal()
    assert "DECISION_SIGNING_KEY is missing (lost-key.pem not found)" in message
    assert "the database holds 1 sealed decision record(s)" in message
    assert "Restore the signing key and certificate from your backup" in message
    assert "DECISION_SIGNING_CERT is missing" not in message


def test_keys_gate_refuses_a_new_certificate_when_another_one_sealed_the_newest_record(
    decided, settings, tmp_path
):
    key, cert = tmp_path / "new-key.pem", tmp_path / "new-cert.pem"
    ensure_signing_cert(key_path=key, cert_path=cert)
    settings.DECISION_SIGNING_KEY, settings.DECISION_SIGNING_CERT = str(key), str(cert)
    message = _refusal()
    assert (
        "DECISION_SIGNING_CERT is not the certificate that sealed the newest decision record"
        in (message)
    )
    assert "DECISION_SIGNING_PREVIOUS_CERT" in message


def test_keys_gate_accepts_a_renewed_certificate_when_the_previous_one_is_named(
    decided, settings, tmp_path, signing
):
    key, cert = tmp_path / "new-key.pem", tmp_path / "new-cert.pem"
    ensure_signing_cert(key_path=key, cert_path=cert)
    settings.DECISION_SIGNING_KEY, settings.DECISION_SIGNING_CERT = str(key), str(cert)
    settings.DECISION_SIGNING_PREVIOUS_CERT = str(signing[1])
    keys_gate("web")


def test_keys_gate_refuses_when_the_signing_key_does_not_belong_to_the_certificate(
    decided, settings, tmp_path
):
    key, cert = tmp_path / "new-key.pem", tmp_path / "new-cert.pem"
    ensure_signing_cert(key_path=key, cert_path=cert)
    settings.DECISION_SIGNING_KEY = str(key)
    message = _refusal()
    assert "DECISION_SIGNING_KEY (new-key.pem) is not the key of DECISION_SIGNING_CERT" in message


def test_ensure_signing_cert_refuses_and_creates_nothing_when_records_are_sealed_and_keys_lost(
    decided, settings, tmp_path
):
    key, cert = tmp_path / "signing" / "key.pem", tmp_path / "signing" / "cert.pem"
    settings.DECISION_SIGNING_KEY, settings.DECISION_SIGNING_CERT = str(key), str(cert)
    with pytest.raises(CommandError, match="No signing certificate created.*sealed decision"):
        call_command("ensure_signing_cert")
    assert not key.exists() and not cert.exists()


def test_ensure_signing_cert_creates_a_development_pair_when_nothing_is_sealed(
    db, settings, tmp_path
):
    key, cert = tmp_path / "signing" / "key.pem", tmp_path / "signing" / "cert.pem"
    settings.DECISION_SIGNING_KEY, settings.DECISION_SIGNING_CERT = str(key), str(cert)
    call_command("ensure_signing_cert")
    assert key.exists() and cert.exists()


def test_keys_check_reports_an_error_when_check_runs_with_the_database(chained, settings):
    settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_SOURCE = OTHER_KEY, "environment"
    assert keys_check(databases=None) == []  # like Django's database checks
    [error] = keys_check(databases=["default"])
    assert error.id == "dcmms.E001" and "not the key the audit chain" in error.msg
    with pytest.raises(SystemCheckError, match="dcmms.E001"):
        call_command("check", databases=["default"])


# ---------------------------------------------------------------- the processes
def _env(var: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "DCMMS_", "CELERY_", "AUDIT_", "DECISION_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="dcmms_release.settings",
        DCMMS_VAR_DIR=str(var),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def _run(args: list[str], var: Path, timeout: int = 120, **extra: str):
    return subprocess.run(
        args,
        cwd=var.parent,
        env=_env(var, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _manage(var: Path, *args: str, **extra: str):
    return _run([sys.executable, str(ROOT / "manage.py"), *args], var, **extra)


@pytest.fixture(scope="module")
def portal_var(tmp_path_factory) -> Path:
    """A var folder with a migrated SQLite database whose audit chain was written with the key
    generated there (a fresh checkout's `make run`)."""
    var = tmp_path_factory.mktemp("portal") / "var"
    assert _manage(var, "migrate", "--noinput", "-v0").returncode == 0
    write = "from checklist.audit import audit_record; audit_record('login', username='probe')"
    done = _manage(var, "shell", "-c", write)
    assert done.returncode == 0, done.stderr
    assert (var / "audit_chain_key").exists()
    return var


@pytest.fixture
def var(portal_var, tmp_path) -> Path:
    """This test's copy of the portal's var folder."""
    return Path(shutil.copytree(portal_var, tmp_path / "var"))


def test_manage_py_runs_when_the_key_that_wrote_the_chain_is_there(var):
    result = _manage(var, "verify_audit")
    assert result.returncode == 0, result.stderr
    assert "refuses to start" not in result.stderr


def test_manage_py_refuses_to_start_naming_the_key_when_another_chain_key_is_set(var):
    result = _manage(var, "verify_audit", AUDIT_CHAIN_KEY=OTHER_KEY)
    assert result.returncode == 1
    assert "The dCMMS portal (manage.py verify_audit) refuses to start." in result.stderr
    assert "AUDIT_CHAIN_KEY is not the key the audit chain was written with" in result.stderr
    assert "set in the environment" in result.stderr
    assert "Audit chain" not in result.stdout  # the command itself never ran


def test_manage_py_refuses_and_keeps_no_new_key_when_the_key_file_is_lost(var):
    (var / "audit_chain_key").unlink()
    for _ in range(2):  # the second start again finds no key: none was generated and kept
        result = _manage(var, "verify_audit")
        assert result.returncode == 1
        assert "AUDIT_CHAIN_KEY is missing: it is not set and there was no key file" in (
            result.stderr
        )
        assert not (var / "audit_chain_key").exists()


def test_manage_py_runs_migrate_and_check_reports_the_error_when_the_key_is_lost(var):
    (var / "audit_chain_key").unlink()
    migrated = _manage(var, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    assert "dcmms.W001" in migrated.stderr + migrated.stdout
    checked = _manage(var, "check", "--database", "default")
    assert checked.returncode == 1
    assert "dcmms.E001" in checked.stderr and "AUDIT_CHAIN_KEY is missing" in checked.stderr
    assert not (var / "audit_chain_key").exists()


def test_wsgi_application_refuses_to_load_when_another_chain_key_is_set(var):
    result = _run(
        [sys.executable, "-c", "import dcmms_release.wsgi"], var, AUDIT_CHAIN_KEY=OTHER_KEY
    )
    assert result.returncode != 0
    assert "The dCMMS portal (web) refuses to start." in result.stderr
    assert "AUDIT_CHAIN_KEY is not the key the audit chain was written with" in result.stderr


def test_celery_worker_refuses_to_start_when_another_chain_key_is_set(var):
    worker = [sys.executable, "-m", "celery", "-A", "dcmms_release", "worker", "--pool", "solo"]
    result = _run(worker, var, timeout=90, AUDIT_CHAIN_KEY=OTHER_KEY)
    assert result.returncode == 1
    assert "The dCMMS portal (worker) refuses to start." in result.stderr
    assert "AUDIT_CHAIN_KEY is not the key the audit chain was written with" in result.stderr
