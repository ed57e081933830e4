"""The admin import page hands a large checklist to the worker and shows the job's progress,
then the same result or errors as a direct import (checklist.admin_import, issue #14 point 10).
The worker runs the task eagerly here (Celery's ``task_always_eager``)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from checklist.choices import ImportJobState
from checklist.models import ImportJob, Item, Release
from dcmms_release.celery import app
from fixtures.benchdata import Shape, checklist_markdown
from signoffs import import_jobs
from signoffs.import_jobs import ProgressFile
from tests.checklist.test_importers_limits import HEAD_LINES, hostile
from tests.factories import ImportJobFactory, UserFactory
from tests.security import test_runtime_journey

as_runtime = test_runtime_journey.as_runtime  # PostgreSQL: the connection as the runtime role

pytestmark = pytest.mark.django_db

SECOND = Path(__file__).resolve().parent.parent / "data" / "second_checklist.md"
SECOND_VERSION = "v2.0.0-rc.1"
URL = "/admin/checklist/release/import/"


@pytest.fixture(autouse=True)
def worker(settings, tmp_path):
    """The task runs in the test's thread when queued; its errors are raised, not swallowed."""
    settings.CHECKLIST_IMPORT_JOB_DIR = tmp_path / "imports"
    eager, propagates = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = eager, propagates


def _pm(username: str = "pm.big"):
    user = UserFactory(username=username, staff=True)
    user.user_permissions.add(Permission.objects.get(codename="add_release"))
    return user


def _post(client, data: bytes, name: str = "billing.md", replace: bool = False):
    payload = {"checklist": SimpleUploadedFile(name, data, content_type="text/markdown")}
    if replace:
        payload["replace"] = "on"
    return client.post(URL, payload)


def _errors(response) -> list[str]:
    return list(response.context["form"].non_field_errors())


def _job_url(job: ImportJob) -> str:
    return reverse("admin:checklist_release_import_job", args=[job.pk])


def _status_url(job: ImportJob) -> str:
    return reverse("admin:checklist_release_import_job_status", args=[job.pk])


def test_import_page_hands_a_large_file_to_the_worker_and_shows_progress_then_the_release(
    client, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.CHECKLIST_IMPORT_ASYNC_ITEMS = 5  # the 16-item checklist counts as large here
    pm = _pm()
    client.force_login(pm)

    with django_capture_on_commit_callbacks() as queued:
        response = _post(client, SECOND.read_bytes())

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == _job_url(job)
    assert not Release.objects.exists()  # nothing imported in the request
    page = client.get(_job_url(job))
    content = page.content.decode()
    assert page.status_code == 200
    assert "Queued" in content and "Waiting for the worker" in content
    assert f'data-status-url="{_status_url(job)}"' in content
    assert client.get(_status_url(job)).json()["state"] == "queued"

    # While the worker writes, the status the page polls says how far it is.
    seen: list[dict] = []
    rows = ProgressFile.rows

    def look(progress, done, total):
        rows(progress, done, total)
        seen.append(client.get(_status_url(job)).json())

    monkeypatch.setattr(ProgressFile, "rows", look)
    monkeypatch.setattr(import_jobs, "PROGRESS_EVERY_SECONDS", 0)
    for callback in queued:
        callback()  # publish: the eager task imports the file

    assert seen and all(s["state"] == "running" and not s["finished"] for s in seen)
    assert seen[0]["done"] < seen[0]["total"]
    assert re.fullmatch(r"Writing: \d+ of \d+ rows\.", seen[0]["phase"])
    assert seen[-1]["phase"].startswith("Saving")
    release = Release.objects.get(version=SECOND_VERSION)
    assert client.get(_status_url(job)).json()["finished"] is True

    done = client.get(_job_url(job), follow=True)

    assert done.redirect_chain[-1][0] == reverse(
        "admin:checklist_release_change", args=[release.pk]
    )
    messages = [str(m) for m in done.context["messages"]]
    assert messages == [
        f"Imported {release} from billing.md: {release.items.count()} items, "
        f"{release.signoff_requirements.count()} sign-off roles, "
        f"{release.criteria.count()} GO / NO-GO criteria."
    ]
    assert release.owner == pm
    assert Item.objects.filter(release=release).first().history.first().history_user == pm


def test_import_page_shows_the_same_errors_as_a_direct_import_when_the_worker_refuses(
    client, settings, django_capture_on_commit_callbacks
):
    settings.CHECKLIST_IMPORT_MAX_ITEMS = 10
    client.force_login(_pm())
    direct = _post(client, SECOND.read_bytes())  # 16 items: under the worker's threshold
    assert not ImportJob.objects.exists()
    settings.CHECKLIST_IMPORT_ASYNC_ITEMS = 5

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, SECOND.read_bytes())
    page = client.get(response.url)

    assert ImportJob.objects.get().state == ImportJobState.FAILED
    assert page.status_code == 200
    assert _errors(page) == _errors(direct)
    assert _errors(page)[0].startswith("billing.md:")
    assert "the checklist has more than 10 checkbox items" in _errors(page)[0]
    assert "the checklist has more than 10 checkbox items" in page.content.decode()
    assert f'action="{URL}"' in page.content.decode()  # the form, to upload again
    assert not Release.objects.exists() and not Item.objects.exists()


def test_import_page_refuses_the_2mb_hostile_file_fast_with_its_line(
    client, django_capture_on_commit_callbacks
):
    client.force_login(_pm())

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, hostile(), name="hostile.md")  # over 256 KB: the worker
    page = client.get(response.url)
    elapsed = time.monotonic() - started

    assert elapsed < 10  # 113 s and 1.49 GB before the bound
    assert _errors(page)[0].startswith(
        f"hostile.md:{HEAD_LINES + 20_001}: the checklist has more than 20,000 checkbox items"
    )
    assert "(CHECKLIST_IMPORT_MAX_ITEMS)" in _errors(page)[0]
    assert not Release.objects.exists() and not Item.objects.exists()


def test_import_page_imports_a_big_but_allowed_checklist_through_the_worker_by_default(
    client, django_capture_on_commit_callbacks
):
    data = checklist_markdown(Shape("v7.7.0", 2_100, 5, 5)).encode()
    client.force_login(_pm())

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, data, name="big.md")
    done = client.get(response.url)

    job = ImportJob.objects.get()
    release = Release.objects.get(version="v7.7.0")
    assert response.url == _job_url(job) and job.state == ImportJobState.DONE
    assert done.url == reverse("admin:checklist_release_change", args=[release.pk])
    assert release.items.count() >= 2_100


def test_import_page_imports_a_small_file_in_the_request(client):
    client.force_login(_pm())

    response = _post(client, SECOND.read_bytes())

    assert response.status_code == 302 and "/change/" in response.url
    assert Release.objects.filter(version=SECOND_VERSION).exists()
    assert not ImportJob.objects.exists()


def test_import_job_page_sends_anonymous_to_login_and_refuses_staff_without_add_permission(
    client,
):
    job = ImportJobFactory(created_by=_pm())

    response = client.get(_job_url(job))
    assert response.status_code == 302 and "/login/" in response.url
    client.force_login(UserFactory(staff=True))
    assert client.get(_job_url(job)).status_code == 403
    assert client.get(_status_url(job)).status_code == 403


def test_import_job_page_answers_404_when_the_job_is_someone_elses(client):
    job = ImportJobFactory(created_by=_pm("uploader"))
    client.force_login(_pm("other.pm"))

    assert client.get(_job_url(job)).status_code == 404
    assert client.get(_status_url(job)).status_code == 404
    client.force_login(UserFactory(username="root", superuser=True))
    assert client.get(_job_url(job)).status_code == 404


def test_import_job_page_loads_its_script_from_a_static_file_under_the_csp(client):
    pm = _pm()
    job = ImportJobFactory(created_by=pm, running=True)
    client.force_login(pm)

    response = client.get(_job_url(job))

    content = response.content.decode()
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert '<script src="/static/checklist/import_job.js" defer></script>' in content
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", content)  # no inline script
    assert not re.search(r"\son[a-z]+=", content)  # no inline handlers
    assert finders.find("checklist/import_job.js") is not None
    assert '<progress id="import-job-progress"' in content


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_import_job_runs_through_the_page_and_the_worker_as_the_runtime_role(
    as_runtime, client, settings, monkeypatch
):
    from fixtures.demo import PM_GROUP
    from signoffs.import_tasks import run_import_job

    settings.CHECKLIST_IMPORT_ASYNC_ITEMS = 5
    sent: list[int] = []
    monkeypatch.setattr(import_jobs, "publish", lambda task, job_id: sent.append(job_id))
    pm = UserFactory(username="pm", staff=True)
    pm.groups.add(Group.objects.get(name=PM_GROUP))
    client.force_login(pm)

    response = _post(client, SECOND.read_bytes())
    assert [run_import_job(job_id) for job_id in sent] == ["done"]  # the worker's task
    done = client.get(response.url)

    release = Release.objects.get(version=SECOND_VERSION)
    assert done.url == reverse("admin:checklist_release_change", args=[release.pk])
    assert ImportJob.objects.get().state == ImportJobState.DONE and release.owner == pm
