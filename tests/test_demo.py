import pytest
from django.core.management import call_command

from checklist.models import Release
from checklist.permissions import can_view_release, may_manage
from signoffs.choices import SignatureState
from signoffs.models import DecisionRecord, Signature, SignoffRequirement
from tests.signoffs.record_fixtures import pdf_pages, signing, signing_pair  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing")]


def test_setup_demo_loads_the_seed_once_and_prints_passwords_once(capsys, django_user_model):
    call_command("setup_demo")
    first = capsys.readouterr().out
    call_command("setup_demo")
    second = capsys.readouterr().out

    assert Release.objects.count() == 2
    release = Release.objects.get(version="v0.3.0")
    assert release.name == "Release 2"
    assert "passwords are shown once" in first
    assert "passwords are shown once" not in second and "Existing demo accounts kept" in second
    assert django_user_model.objects.count() == 10
    for line in first.splitlines():
        if line.startswith("  pm "):
            password = line.split()[-1]
    assert len(password) >= 12
    assert password not in second
    assert django_user_model.objects.get(username="pm").check_password(password)


def test_setup_demo_assigns_every_role_and_shows_each_signature_state(django_user_model):
    call_command("setup_demo")
    release = Release.objects.get(version="v0.3.0")
    pm = django_user_model.objects.get(username="pm")
    auditor = django_user_model.objects.get(username="auditor")
    assert release.owner == pm and may_manage(pm, release)
    assert can_view_release(auditor, release) and not may_manage(auditor, release)
    assignees = SignoffRequirement.objects.filter(release=release).values_list(
        "role", "assignee__username"
    )
    assert dict(assignees)["CEO"] == "ceo"
    assert dict(assignees)["Security Officer"] == "security.officer"
    states = {
        s.printed_role: (s.meaning, s.state) for s in Signature.objects.filter(release=release)
    }
    assert states == {
        "QA Lead": ("approved", SignatureState.STALE),
        "Tech Lead": ("approved", SignatureState.VALID),
        "Security Officer": ("rejected", SignatureState.VALID),
    }
    assert release.status == "in_review"


def test_setup_demo_has_a_decided_release_with_a_sealed_record_when_run_first(django_user_model):
    call_command("setup_demo")
    call_command("setup_demo")  # a second run adds nothing

    decided = Release.objects.get(version="v0.2.0")
    assert (decided.name, decided.status) == ("Release 1", "decided")
    assert decided.owner.username == "pm"
    auditor = django_user_model.objects.get(username="auditor")
    assert can_view_release(auditor, decided)
    ceo = SignoffRequirement.objects.get(release=decided, role="CEO")
    assert ceo.assignee.username == "ceo"
    record = DecisionRecord.objects.get(release=decided)
    assert record.state == "ready" and record.pdf_sha256
    assert record.signature.meaning == "defer"
    assert record.signature.comment == "Security audit outstanding"
    text = "\n".join(pdf_pages(bytes(record.pdf)))
    assert "DEFER" in text and "Security audit outstanding" in text and "Release 1" in text
    assert DecisionRecord.objects.count() == 1


def test_setup_demo_gives_stakeholders_their_own_items_risks_and_actions(django_user_model):
    from risks.models import ActionItem, Risk
    from signoffs.dashboard import my_work

    call_command("setup_demo")
    release = Release.objects.get(version="v0.3.0")
    security = django_user_model.objects.get(username="security.officer")
    owned = release.items.filter(owner=security)

    assert owned.exists()
    assert {item.section.number.split(".")[0] for item in owned} == {"3"}
    assert owned.first().history.filter(history_change_reason="Demo setup: owner assigned")
    assert Risk.objects.get(release=release, key="R-002").owner.username == "cto"
    assert ActionItem.objects.get(release=release, key="A-003").owner.username == "pm"
    work = my_work(release, security, since=None)
    assert work.items  # "My work" on the dashboard is not empty for the Security Officer


def test_setup_demo_links_seed_criteria_so_the_gate_names_concrete_shortfalls():
    from signoffs.gates import criteria_evaluate, go_refusals
    from signoffs.models import Criterion

    call_command("setup_demo")
    release = Release.objects.get(version="v0.3.0")
    p95 = Criterion.objects.get(release=release, text__startswith="API p95")
    tasks = Criterion.objects.get(release=release, text__startswith="All Sprint 18 tasks")
    approvals = Criterion.objects.get(release=release, text="All technical approvals")

    assert [item.text for item in p95.items.all()] == ["p95 latency"]
    assert tasks.items.count() == 13
    assert {r.role for r in approvals.requirements.all()} == {
        "Tech Lead",
        "QA Lead",
        "Security Officer",
    }
    assert p95.history.filter(history_change_reason="Demo setup: criterion linked").exists()
    results = {r.criterion.text: r for r in criteria_evaluate(release)}
    assert "DCMMS-091" in results[tasks.text].why  # in progress: the task criterion is not met
    refusals = go_refusals(release)
    unlinked = [r for r in refusals if "no verdict yet" in r]
    assert 0 < len(unlinked) < len(Criterion.objects.filter(release=release)) - 15


def test_setup_demo_shows_the_audit_trail_to_the_auditor_only(client, django_user_model):
    call_command("setup_demo")
    pages = ("/admin/checklist/auditevent/", "/admin/checklist/auditpurge/")
    for username in ("security.officer", "pm"):
        client.force_login(django_user_model.objects.get(username=username))
        assert [client.get(page).status_code for page in pages] == [403, 403], username
    client.force_login(django_user_model.objects.get(username="auditor"))
    assert [client.get(page).status_code for page in pages] == [200, 200]
