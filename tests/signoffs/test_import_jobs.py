"""Large checklist uploads imported by the worker (signoffs.import_jobs, issue #14 point 10):
the job's life, its progress, and the same outcome and refusals as a direct import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from kombu.exceptions import OperationalError

from checklist.choices import ImportJobState
from checklist.models import AuditEvent, AuditKind, ImportJob, Item, Release
from checklist.retention_rows import release_rows
from signoffs import import_jobs
from signoffs.import_jobs import (
    NOT_QUEUED,
    ProgressFile,
    import_job_create,
    import_job_run,
    import_job_status,
    upload_needs_worker,
)
from signoffs.services import release_access_refresh
from tests.factories import ImportJobFactory, ReleaseFactory, UserFactory

pytestmark = pytest.mark.django_db

SECOND = Path(__file__).resolve().parent.parent / "data" / "second_checklist.md"
SECOND_VERSION = "v2.0.0-rc.1"


@pytest.fixture(autouse=True)
def _job_dir(settings, tmp_path):
    settings.CHECKLIST_IMPORT_JOB_DIR = tmp_path / "imports"
    return settings.CHECKLIST_IMPORT_JOB_DIR


@pytest.fixture
def queued(monkeypatch):
    """Tasks queued by the service, instead of the broker."""
    sent: list[int] = []
    monkeypatch.setattr(import_jobs, "publish", lambda task, job_id: sent.append(job_id))
    return sent


def _pm(username: str = "pm.jobs"):
    user = UserFactory(username=username, staff=True)
    user.user_permissions.add(Permission.objects.get(codename="add_release"))
    return user


def _job(user, data: bytes, name: str = "billing.md", replace: bool = False, capture=None):
    with capture(execute=True):
        return import_job_create(user=user, data=data, source_name=name, replace=replace)


def test_upload_needs_worker_when_past_either_threshold(settings):
    settings.CHECKLIST_IMPORT_ASYNC_ITEMS = 3
    settings.CHECKLIST_IMPORT_ASYNC_BYTES = 1_000

    assert not upload_needs_worker(b"- [ ] a\n- [ ] b\n- [ ] c\n")
    assert upload_needs_worker(b"- [ ] a\n  - [x] b\n* [ ] c\n+ [X] d\n")
    assert upload_needs_worker(b"x" * 1_001)


def test_import_job_create_keeps_the_file_and_queues_it_after_commit(
    queued, django_capture_on_commit_callbacks
):
    pm = _pm()
    data = SECOND.read_bytes()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = import_job_create(user=pm, data=data, source_name="billing.md", replace=False)
        assert queued == []  # nothing is queued before the upload is committed
    for callback in callbacks:
        callback()

    job.refresh_from_db()
    assert queued == [job.pk]
    assert job.state == ImportJobState.QUEUED and bytes(job.data) == data
    assert job.size == len(data) and len(job.sha256) == 64 and job.created_by == pm


@pytest.mark.django_db(transaction=True)  # the refusal is written after the rollback
def test_import_job_create_refuses_and_keeps_nothing_when_the_user_may_not_import(queued):
    stakeholder = UserFactory(staff=True)

    with pytest.raises(PermissionDenied, match="you may not add releases"):
        import_job_create(user=stakeholder, data=b"x", source_name="a.md", replace=False)

    assert not ImportJob.objects.exists() and queued == []
    assert AuditEvent.objects.filter(kind=AuditKind.PERMISSION_DENIED, actor=stakeholder).exists()


def test_import_job_fails_with_a_message_when_the_broker_does_not_answer(
    monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(task, job_id):
        raise OperationalError("timed out")

    monkeypatch.setattr(import_jobs, "publish", broker_down)

    job = _job(_pm(), SECOND.read_bytes(), capture=django_capture_on_commit_callbacks)

    job.refresh_from_db()
    assert job.state == ImportJobState.FAILED and job.errors == [NOT_QUEUED]
    assert bytes(job.data) == b"" and not Release.objects.exists()


def test_import_job_run_imports_as_the_uploader_and_reports_rows_written(
    queued, monkeypatch, django_capture_on_commit_callbacks
):
    pm = _pm()
    job = _job(pm, SECOND.read_bytes(), capture=django_capture_on_commit_callbacks)
    seen: list[dict] = []
    write = ProgressFile._write

    def spy(self):
        write(self)
        seen.append(json.loads(self.path.read_text()))
        seen[-1]["state"] = ImportJob.objects.get(pk=job.pk).state

    monkeypatch.setattr(ProgressFile, "_write", spy)
    monkeypatch.setattr(import_jobs, "PROGRESS_EVERY_SECONDS", 0)

    job = import_job_run(job_id=job.pk)

    release = Release.objects.get(version=SECOND_VERSION)
    assert (
        job.state == ImportJobState.DONE and job.imported_release == release and job.attempts == 1
    )
    assert job.summary == (
        f"Imported {release} from billing.md: {release.items.count()} items, "
        f"{release.signoff_requirements.count()} sign-off roles, "
        f"{release.criteria.count()} GO / NO-GO criteria."
    )
    assert seen[0] == {"phase": "checking", "done": 0, "total": 0, "state": "running"}
    writing = [s for s in seen if s["phase"] == "writing"]
    assert [s["done"] for s in writing] == sorted(s["done"] for s in writing)
    assert writing[-1]["done"] == writing[-1]["total"] > writing[0]["done"] > 0
    assert all(s["state"] == ImportJobState.RUNNING for s in seen)
    assert bytes(job.data) == b"" and job.finished_at is not None
    assert not (Path(import_jobs.settings.CHECKLIST_IMPORT_JOB_DIR) / f"job-{job.pk}.json").exists()
    assert release.owner == pm
    history = Item.objects.filter(release=release).first().history.first()
    assert history.history_user == pm
    assert history.history_change_reason == "Imported from billing.md"
    entry = LogEntry.objects.get(object_id=str(release.pk))
    assert entry.user == pm and entry.action_flag == ADDITION
    assert entry.change_message == "Imported from billing.md."


def test_import_job_run_fails_with_file_and_line_and_writes_nothing_when_file_is_refused(
    queued, settings, django_capture_on_commit_callbacks
):
    settings.CHECKLIST_IMPORT_MAX_ITEMS = 10
    job = _job(_pm(), SECOND.read_bytes(), capture=django_capture_on_commit_callbacks)

    job = import_job_run(job_id=job.pk)

    assert job.state == ImportJobState.FAILED
    assert len(job.errors) == 1
    assert job.errors[0].startswith("billing.md:")
    assert "the checklist has more than 10 checkbox items" in job.errors[0]
    assert "(CHECKLIST_IMPORT_MAX_ITEMS)" in job.errors[0]
    assert bytes(job.data) == b"" and job.imported_release is None
    assert not Release.objects.exists() and not Item.objects.exists()


def test_import_job_run_refuses_when_the_uploader_may_no_longer_import(
    queued, django_capture_on_commit_callbacks
):
    pm = _pm()
    job = _job(pm, SECOND.read_bytes(), capture=django_capture_on_commit_callbacks)
    pm.is_active = False
    pm.save()

    job = import_job_run(job_id=job.pk)

    assert job.state == ImportJobState.FAILED
    assert job.errors == ["Import a checklist refused: you may not add releases."]
    assert not Release.objects.exists()


@pytest.mark.django_db(transaction=True)  # the refusal is written after the rollback
def test_import_job_run_refuses_and_audits_a_replace_of_a_release_not_managed(
    queued, django_capture_on_commit_callbacks
):
    owner = _pm("owner")
    release = ReleaseFactory(version=SECOND_VERSION, owner=owner, sprint="kept")
    release_access_refresh(release=release, user=owner)
    other = _pm("other.pm")
    job = _job(other, SECOND.read_bytes(), replace=True, capture=django_capture_on_commit_callbacks)

    job = import_job_run(job_id=job.pk)

    assert job.state == ImportJobState.FAILED
    assert "you do not manage it" in job.errors[0]
    release.refresh_from_db()
    assert release.sprint == "kept" and not release.items.exists()
    event = AuditEvent.objects.get(kind=AuditKind.PERMISSION_DENIED, actor=other)
    assert event.release_id == release.pk


def test_import_job_run_leaves_an_ended_job_alone_when_the_task_is_delivered_again(
    queued, django_capture_on_commit_callbacks
):
    job = _job(_pm(), SECOND.read_bytes(), capture=django_capture_on_commit_callbacks)
    import_job_run(job_id=job.pk)

    assert import_job_run(job_id=job.pk) is None
    assert import_job_run(job_id=job.pk + 1000) is None  # vanished
    assert Release.objects.count() == 1


def test_import_job_run_fails_the_job_when_the_worker_stopped_too_often(queued):
    job = ImportJobFactory(running=True, attempts=import_jobs.MAX_ATTEMPTS)

    assert import_job_run(job_id=job.pk) is None

    job.refresh_from_db()
    assert job.state == ImportJobState.FAILED
    assert "the worker stopped 3 times" in job.errors[0]


def test_import_job_run_again_imports_when_a_lost_attempt_left_it_running(
    queued, django_capture_on_commit_callbacks
):
    job = _job(_pm(), SECOND.read_bytes(), capture=django_capture_on_commit_callbacks)
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJobState.RUNNING, attempts=1)

    job = import_job_run(job_id=job.pk)

    assert job.state == ImportJobState.DONE and job.attempts == 2
    assert Release.objects.filter(version=SECOND_VERSION).exists()


def test_import_job_status_says_what_the_worker_is_doing():
    job = ImportJobFactory()
    assert import_job_status(job)["phase"].startswith("Waiting for the worker (queued")

    job = ImportJobFactory(running=True)
    assert import_job_status(job)["phase"] == "Checking the file."
    progress = ProgressFile(job.pk)
    progress.rows(250, 1_000)
    status = import_job_status(job)
    assert (status["done"], status["total"]) == (250, 1_000)
    assert status["phase"] == "Writing: 250 of 1,000 rows."
    progress.rows(1_000, 1_000)
    assert import_job_status(job)["phase"] == "Saving 1,000 rows and linking their audit trail."
    assert import_job_status(job)["finished"] is False

    failed = ImportJobFactory(failed=True)
    assert import_job_status(failed)["finished"] is True


def test_progress_file_that_cannot_be_written_does_not_stop_the_import(
    queued, settings, tmp_path, django_capture_on_commit_callbacks
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    settings.CHECKLIST_IMPORT_JOB_DIR = blocker
    job = _job(_pm(), SECOND.read_bytes(), capture=django_capture_on_commit_callbacks)

    job = import_job_run(job_id=job.pk)

    assert job.state == ImportJobState.DONE
    assert import_job_status(job)["finished"] is True


def test_retention_purge_of_a_release_takes_its_import_job_along(
    queued, django_capture_on_commit_callbacks
):
    job = _job(_pm(), SECOND.read_bytes(), capture=django_capture_on_commit_callbacks)
    job = import_job_run(job_id=job.pk)
    other = ImportJobFactory(failed=True)

    rows = release_rows([job.imported_release_id])

    assert rows[ImportJob] == {job.pk}  # not another job, not the uploader's other jobs
    assert other.pk not in rows[ImportJob]
