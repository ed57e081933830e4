import pytest
from django.core.management import call_command

from checklist.models import Release
from checklist.permissions import can_manage_release, can_view_release
from signoffs.choices import SignatureState
from signoffs.models import Signature, SignoffRequirement

pytestmark = pytest.mark.django_db


def test_setup_demo_loads_the_seed_once_and_prints_passwords_once(capsys, django_user_model):
    call_command("setup_demo")
    first = capsys.readouterr().out
    call_command("setup_demo")
    second = capsys.readouterr().out

    assert Release.objects.count() == 1
    release = Release.objects.get()
    assert (release.version, release.name) == ("v0.3.0", "Release 2")
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
    release = Release.objects.get()
    pm = django_user_model.objects.get(username="pm")
    auditor = django_user_model.objects.get(username="auditor")
    assert release.owner == pm and can_manage_release(pm, release)
    assert can_view_release(auditor, release) and not can_manage_release(auditor, release)
    assignees = SignoffRequirement.objects.filter(release=release).values_list(
        "role", "assignee__username"
    )
    assert dict(assignees)["CEO"] == "ceo"
    assert dict(assignees)["Security Officer"] == "security.officer"
    states = {s.printed_role: (s.meaning, s.state) for s in Signature.objects.all()}
    assert states == {
        "QA Lead": ("approved", SignatureState.STALE),
        "Tech Lead": ("approved", SignatureState.VALID),
        "Security Officer": ("rejected", SignatureState.VALID),
    }
    assert release.status == "in_review"
