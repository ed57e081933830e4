"""The whole journey with the portal connected as the least-privilege runtime role (PostgreSQL):
the web requests and the worker's tasks run on a connection opened as ``DCMMS_RUNTIME_ROLE``,
after the owner ran ``grant_runtime_role`` — import, edit, assign, sign, decide, seal the
decision record, send the digests, download the record and the exports; and a retention purge
is refused, because it must run as the tables' owner."""

from __future__ import annotations

import datetime
import io
import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from checklist.choices import ItemStatus, ReleaseStatus
from checklist.models import Item, Release
from checklist.models_audit import AuditEvent
from fixtures.demo import AUDITOR_GROUP, PM_GROUP, STAKEHOLDER_GROUP, ensure_groups
from signoffs import record_tasks, reminder_tasks
from signoffs.models import DecisionRecord, ReminderDispatch
from signoffs.services import release_access_refresh, requirement_assign, signature_give
from tests.factories import ReleaseFactory, SignoffRequirementFactory, UserFactory
from tests.signoffs import record_fixtures
from tests.signoffs.conftest import PASSWORD
from tests.signoffs.sign_page import sign_post

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
signing, signing_pair = record_fixtures.signing, record_fixtures.signing_pair

CHECKLIST = Path(__file__).resolve().parent.parent / "data" / "second_checklist.md"
SIGNERS = {
    "Staff Engineer": "staff.engineer",
    "Security Reviewer": "security.reviewer",
    "SRE Lead": "sre.lead",
    "COO": "coo",
}


def runtime_role_name() -> str:
    """The role .ci/run creates and exports; a PostgreSQL run without it is a broken setup."""
    role = os.environ.get("DCMMS_RUNTIME_ROLE", "")
    if not role:
        pytest.fail(
            "DCMMS_RUNTIME_ROLE is not set: the PostgreSQL run must name the runtime role "
            "(.ci/run creates dcmms_runtime and exports DCMMS_RUNTIME_ROLE=dcmms_runtime)."
        )
    return role


@pytest.fixture
def as_runtime(transactional_db):
    """Grant the role as the owner (as the deployer does after migrate), then reopen Django's
    own connection as the runtime role: every query of the test — views, services, tasks — runs
    with its privileges. The owner's connection is restored for the teardown's flush."""
    role = runtime_role_name()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE ROLE {connection.ops.quote_name(role)} LOGIN")
    call_command("grant_runtime_role", role, stdout=io.StringIO())
    ensure_groups()  # the demo's groups of model permissions, as setup_demo makes them
    owner = connection.settings_dict["USER"]
    connection.close()
    connection.settings_dict["USER"] = role
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == role
        yield role
    finally:
        connection.close()
        connection.settings_dict["USER"] = owner


@pytest.fixture
def worker(monkeypatch):
    """The worker: tasks queued by the portal are collected, then run here as the worker runs
    them (the task functions, on this runtime-role connection)."""
    queued: list[tuple] = []
    monkeypatch.setattr(
        record_tasks.render_decision_record,
        "delay",
        lambda *args: queued.append((record_tasks.render_decision_record, args)),
    )
    monkeypatch.setattr(
        reminder_tasks.send_review_digest,
        "delay",
        lambda *args: queued.append((reminder_tasks.send_review_digest, args)),
    )

    def run() -> list:
        results = []
        while queued:
            task, args = queued.pop(0)
            results.append(task(*args))
        return results

    return run


def _people():
    groups = {g.name: g for g in Group.objects.all()}
    pm = UserFactory(username="pm", staff=True, first_name="Priya", last_name="Manager")
    pm.groups.add(groups[PM_GROUP])
    signers = {}
    for role, username in SIGNERS.items():
        user = UserFactory(username=username, staff=True, first_name="Demo", last_name=role)
        user.groups.add(groups[STAKEHOLDER_GROUP])
        signers[role] = user
    auditor = UserFactory(username="auditor", staff=True, first_name="Avery", last_name="Audit")
    auditor.groups.add(groups[AUDITOR_GROUP])
    return pm, signers, auditor


def _weekday() -> datetime.date:
    """Today, or the Monday after a weekend: the imported checklist's cadence is weekdays."""
    day = datetime.date.today()
    while day.weekday() >= 5:
        day += datetime.timedelta(days=1)
    return day


def test_runtime_role_runs_the_whole_journey_and_seals_the_record_when_granted(
    as_runtime, worker, client, signing, tmp_path
):
    pm, signers, auditor = _people()

    # Import: the PM uploads the checklist in the admin.
    client.force_login(pm)
    upload = SimpleUploadedFile(CHECKLIST.name, CHECKLIST.read_bytes(), "text/markdown")
    response = client.post(reverse("admin:checklist_release_import"), {"checklist": upload})
    assert response.status_code == 302, response.content.decode()[:2000]
    release = Release.objects.get(version="v2.0.0-rc.1")
    assert release.owner == pm and release.items.count() > 10

    # Edit: an item's actual value through its change form, statuses through the bulk action.
    item = Item.objects.get(release=release, text__startswith="Ledger write rate")
    change = reverse("admin:checklist_item_change", args=[item.pk])
    form = client.get(change).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update(actual_value="2500000", status=ItemStatus.IN_PROGRESS)
    response = client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    item.refresh_from_db()
    assert item.actual_value == 2500000 and item.history.count() == 2
    tasks = Item.objects.filter(release=release, key__startswith="BILL-")
    response = client.post(
        reverse("admin:checklist_item_changelist"),
        {"action": "mark_complete", "_selected_action": [t.pk for t in tasks], "index": 0},
    )
    assert response.status_code == 302
    assert set(tasks.values_list("status", flat=True)) == {ItemStatus.COMPLETE}

    # Assign: every signing role and the auditor on the roles page.
    roles_url = reverse("admin:checklist_release_roles", args=[release.pk])
    form = client.get(roles_url).context["form"]
    data = {"owner": pm.pk, "add_user": auditor.pk, "add_role": "auditor"}
    for requirement in form.requirements:
        data[f"signer_{requirement.pk}"] = signers[requirement.role].pk
    response = client.post(roles_url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert release.signoff_requirements.filter(assignee__isnull=True).count() == 0

    # Open the review (the release list's action).
    response = client.post(
        reverse("admin:checklist_release_changelist"),
        {"action": "open_review", "_selected_action": [release.pk], "index": 0},
    )
    release.refresh_from_db()
    assert release.status == ReleaseStatus.IN_REVIEW

    # The daily digests: beat's task, then the worker's per-person tasks.
    day = _weekday().isoformat()
    assert reminder_tasks.send_daily_reminders(day) > 0
    outcomes = worker()
    assert outcomes and set(outcomes) == {"sent"}, outcomes
    assert len(mail.outbox) == len(outcomes)
    assert ReminderDispatch.objects.filter(release=release, status="sent").count() == len(outcomes)

    # Sign: each approver on their sign page, then the COO's final decision (DEFER).
    for role in ("Staff Engineer", "Security Reviewer", "SRE Lead", "COO"):
        requirement = release.signoff_requirements.get(role=role)
        client.force_login(signers[role])
        meaning = "defer" if requirement.final_decision else "approved"
        response = sign_post(  # the page first: the post carries the version it showed
            client,
            requirement,
            {
                "meaning": meaning,
                "comment": f"{role}: checked",
                "username": signers[role].username,  # the session's first signing asks for it
                "password": PASSWORD,
            },
        )
        assert response.status_code == 302, response.content.decode()[:3000]
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED

    # Seal: the worker renders and seals the record queued when the decision committed.
    record = DecisionRecord.objects.get(release=release)
    assert record.state == "pending"
    assert worker() == ["ready"]
    record.refresh_from_db()
    assert record.state == "ready" and record.pdf_sha256

    # Download: the auditor gets the sealed PDF and every export; each is audited.
    client.force_login(auditor)
    response = client.get(reverse("admin:signoffs_decisionrecord_download", args=[record.pk]))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    for fmt in ("json", "md", "csv"):
        response = client.get(reverse("admin:checklist_release_export", args=[release.pk, fmt]))
        assert response.status_code == 200, fmt
    assert AuditEvent.objects.filter(kind="record_download", actor=auditor).count() == 4
    pdf = tmp_path / "record.pdf"
    pdf.write_bytes(bytes(record.pdf))
    out = io.StringIO()
    call_command("verify_record", str(pdf), stdout=out)
    assert "OK" in out.getvalue()

    # The PM and the COO see the sealed record on the release page and the dashboard.
    for user in (pm, signers["COO"]):
        client.force_login(user)
        page = client.get(reverse("admin:checklist_release_change", args=[release.pk]))
        dashboard = client.get(reverse("admin:checklist_release_dashboard", args=[release.pk]))
        for response in (page, dashboard):
            assert response.status_code == 200
            assert "Ready</strong>: sealed at" in response.content.decode()

    # Purge: refused for the runtime role, even with a sign-in event long past retention (the
    # role may add rows, so it could write one), and nothing is deleted or recorded as purged.
    old = AuditEvent.objects.create(
        at=timezone.now() - datetime.timedelta(days=366 * 9), username="long-gone", kind="login"
    )
    events = AuditEvent.objects.count()
    with pytest.raises(CommandError, match="run it as the tables' owner.*Nothing was deleted"):
        call_command("purge_records", stdout=io.StringIO())
    assert AuditEvent.objects.count() == events and AuditEvent.objects.filter(pk=old.pk).exists()
    assert not AuditEvent.objects.filter(kind="purge").exists()


def test_runtime_role_seals_by_beat_a_record_left_pending_when_the_broker_was_down(
    as_runtime, signing, settings, monkeypatch, client
):
    """The decision commits while the broker is down: the record is pending with the reason
    for the CEO and the PM; beat's task, on the worker as the runtime role, seals it."""
    settings.DECISION_RECORD_RETRY_SECONDS = 0  # due at once: no waiting in a test

    def down(*args):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(record_tasks.render_decision_record, "delay", down)
    pm, signers, _ = _people()
    release = ReleaseFactory(status=ReleaseStatus.IN_REVIEW, owner=pm, name="Billing")
    requirement = SignoffRequirementFactory(release=release, role="COO", final_decision=True)
    requirement_assign(requirement=requirement, assignee=signers["COO"], by=pm)
    release_access_refresh(release=release, user=pm)
    signature_give(
        requirement=requirement,
        user=signers["COO"],
        username="coo",
        password=PASSWORD,
        meaning="defer",
        comment="Gateway sandbox still down",
        request=RequestFactory().post("/"),
    )
    record = DecisionRecord.objects.get(release=release)
    assert (record.state, record.attempts) == ("pending", 1)
    assert record.failure_reason == "the broker was unreachable"
    client.force_login(pm)
    page = client.get(reverse("admin:checklist_release_change", args=[release.pk])).content
    assert "Pending</strong>: the broker was unreachable at " in page.decode()
    assert "retrying automatically (attempt 2)" in page.decode()

    assert record_tasks.retry_decision_records() == 1  # beat's task, as the worker runs it
    record.refresh_from_db()
    assert record.state == "ready" and record.attempts == 2 and record.pdf_sha256
    assert record.next_attempt_at is None and record.failure_reason == ""
    response = client.get(reverse("admin:signoffs_decisionrecord_download", args=[record.pk]))
    assert response.status_code == 200 and response.content == bytes(record.pdf)
    assert record_tasks.retry_decision_records() == 0  # nothing left to do
