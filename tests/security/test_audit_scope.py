"""Issue #14, Access 3: an auditor reads the audit trail of the releases they are an auditor of;
events tied to no release (sign-ins …) and the purge markers only an organisation-wide auditor
(the group "Organisation auditors", an explicit grant) or a superuser."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from checklist.audit import audit_record
from checklist.models_audit import AuditKind, AuditPurge
from checklist.permissions import ORGANISATION_AUDITORS, audited_releases
from signoffs.choices import MemberRole
from signoffs.services import member_set, release_access_refresh
from tests.factories import ReleaseFactory, UserFactory

pytestmark = pytest.mark.django_db

EVENTS = reverse("admin:checklist_auditevent_changelist")
PURGES = reverse("admin:checklist_auditpurge_changelist")


@pytest.fixture
def trail(db):
    """Releases Alpha and Bravo (one owner), an event of each, a sign-in tied to no release and
    a purge marker; an auditor of Alpha holding the audit trail's view permissions."""
    owner = UserFactory(username="owner", staff=True)
    alpha = ReleaseFactory(name="Alpha", owner=owner)
    bravo = ReleaseFactory(name="Bravo", owner=owner)
    for release in (alpha, bravo):
        release_access_refresh(release=release, user=owner)
    audit_record(AuditKind.RECORD_DOWNLOAD, actor=owner, release=alpha, obj="alpha-export")
    audit_record(AuditKind.RECORD_DOWNLOAD, actor=owner, release=bravo, obj="bravo-export")
    audit_record(AuditKind.LOGIN, actor=None, username="signin-sam")
    purge = audit_record(AuditKind.PURGE, actor=None, username="purger-pat")
    AuditPurge.objects.create(
        cutoff=timezone.now() - datetime.timedelta(days=7 * 366), event=purge, purged={}
    )
    auditor = UserFactory(username="alpha-auditor", staff=True)
    auditor.user_permissions.add(
        *Permission.objects.filter(codename__in=("view_auditevent", "view_auditpurge"))
    )
    member_set(release=alpha, user=auditor, role=MemberRole.AUDITOR, by=owner)
    return {"alpha": alpha, "bravo": bravo, "owner": owner, "auditor": auditor}


def _seen(client, url: str = EVENTS) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_auditor_reads_only_the_events_of_their_release_when_granted_one(client, trail):
    client.force_login(trail["auditor"])

    html = _seen(client)

    assert "alpha-export" in html
    assert "bravo-export" not in html
    assert "signin-sam" not in html and "purger-pat" not in html


def test_auditor_cannot_open_another_release_event_when_asking_for_it_by_id(client, trail):
    from checklist.models_audit import AuditEvent

    bravo = AuditEvent.objects.get(object_repr="bravo-export")
    client.force_login(trail["auditor"])

    response = client.get(
        reverse("admin:checklist_auditevent_change", args=[bravo.pk]), follow=True
    )

    assert "bravo-export" not in response.content.decode()


def test_auditor_sees_no_purge_marker_when_only_granted_a_release(client, trail):
    client.force_login(trail["auditor"])

    assert "purger-pat" not in _seen(client, PURGES)


def test_organisation_auditor_reads_every_event_and_marker_when_granted_the_group(client, trail):
    trail["auditor"].groups.add(Group.objects.get_or_create(name=ORGANISATION_AUDITORS)[0])
    client.force_login(trail["auditor"])

    html = _seen(client)

    for text in ("alpha-export", "bravo-export", "signin-sam", "purger-pat"):
        assert text in html
    assert "purger-pat" in _seen(client, PURGES)  # the marker, naming its purge event
    assert set(audited_releases(trail["auditor"])) == {trail["alpha"], trail["bravo"]}


def test_managing_a_release_does_not_show_its_audit_trail_when_not_its_auditor(client, trail):
    owner = trail["owner"]
    owner.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client.force_login(owner)

    html = _seen(client)

    assert "alpha-export" not in html and "bravo-export" not in html


def test_auditor_loses_the_trail_when_their_auditor_access_is_removed(client, trail):
    member_set(release=trail["alpha"], user=trail["auditor"], role=None, by=trail["owner"])
    client.force_login(trail["auditor"])

    assert "alpha-export" not in _seen(client)
    assert not audited_releases(trail["auditor"]).exists()


def test_refresh_release_access_restores_an_auditor_granted_before_auditor_groups_existed(
    client, trail
):
    alpha, auditor = trail["alpha"], trail["auditor"]
    auditor.groups.remove(Group.objects.get(name=f"release-{alpha.pk}-auditors"))  # as before
    client.force_login(auditor)
    assert "alpha-export" not in _seen(client)

    call_command("refresh_release_access")

    assert "alpha-export" in _seen(client)
    assert "bravo-export" not in _seen(client)


def test_superuser_reads_every_event_when_signed_in(admin_client, trail):
    html = _seen(admin_client)

    for text in ("alpha-export", "bravo-export", "signin-sam"):
        assert text in html


def test_setup_demo_makes_its_auditor_organisation_wide_so_it_sees_sign_ins(client):
    from django.contrib.auth import get_user_model

    call_command("setup_demo")
    auditor = get_user_model().objects.get(username="auditor")
    audit_record(AuditKind.LOGIN, actor=None, username="someone-signed-in")
    client.force_login(auditor)

    assert auditor.groups.filter(name=ORGANISATION_AUDITORS).exists()
    assert "someone-signed-in" in _seen(client)
