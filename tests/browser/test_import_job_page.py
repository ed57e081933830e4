"""The import job page in a real browser, under the Content-Security-Policy (no inline script):
its static script moves the progress bar while the worker writes, and shows the release once the
job has ended (checklist.admin_import, checklist/static/checklist/import_job.js)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from checklist.models import Release
from signoffs.import_jobs import ProgressFile, import_job_run
from tests.factories import ImportJobFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECOND = Path(__file__).resolve().parent.parent / "data" / "second_checklist.md"


def test_import_job_page_follows_the_worker_and_lands_on_the_release(
    open_session, settings, tmp_path
):
    from playwright.sync_api import expect  # only once the browser fixture found Playwright

    settings.CHECKLIST_IMPORT_JOB_DIR = tmp_path / "imports"
    pm = UserFactory(username="pm", staff=True)
    pm.user_permissions.add(Permission.objects.get(codename="add_release"))
    data = SECOND.read_bytes()
    job = ImportJobFactory(created_by=pm, running=True, data=data, source_name="billing.md")
    worker = ProgressFile(job.pk)
    worker.rows(5, 40)
    me = open_session()
    page = me.page
    me.goto("/admin/")
    me.login("pm")

    me.goto(reverse("admin:checklist_release_import_job", args=[job.pk]))

    assert page.locator("#import-job-phase").inner_text() == "Writing: 5 of 40 rows."
    assert page.locator("#import-job-progress").get_attribute("value") == "5"
    me.shot("import-job-progress")

    worker.rows(30, 40)  # the worker goes on: the script shows it without a reload
    expect(page.locator("#import-job-phase")).to_have_text("Writing: 30 of 40 rows.")
    assert page.locator("#import-job-progress").get_attribute("value") == "30"

    import_job_run(job_id=job.pk)  # the job ends: the page reloads onto the release
    page.wait_for_url(re.compile(r"/admin/checklist/release/\d+/change/$"), timeout=20_000)
    release = Release.objects.get(version="v2.0.0-rc.1")
    assert f"Imported {release} from billing.md" in page.locator(".messagelist").inner_text()
    assert me.csp_violations() == []
