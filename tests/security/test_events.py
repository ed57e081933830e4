"""Rate limit, permission-denied and role-change audit events; the audit admin is read-only."""

import pytest
from django.urls import reverse

from checklist.audit import audit_record
from checklist.models_audit import AuditEvent
from signoffs.choices import MemberRole
from signoffs.models import ReleaseMember
from signoffs.services import release_access_refresh
from tests.factories import ReleaseFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(db):
    pm = UserFactory(username="pm", staff=True)
    release = ReleaseFactory(owner=pm, name="Release <b>2</b>")
    release_access_refresh(release=release, user=pm)
    return release


def _roles_url(release):
    return reverse("admin:checklist_release_roles", args=[release.pk])


# ---------------------------------------------------------------- rate limit
def test_rate_limit_answers_429_with_retry_after_and_changes_nothing_when_over_limit(
    client, release, settings
):
    settings.RATE_LIMIT_PER_MINUTE = 5
    auditor = UserFactory(staff=True)
    client.force_login(release.owner)
    for _ in range(5):
        assert client.get("/admin/").status_code == 200
    response = client.post(
        _roles_url(release), {"add_user": auditor.pk, "add_role": MemberRole.AUDITOR}
    )
    assert response.status_code == 429
    assert 55 <= int(response["Retry-After"]) <= 65  # sliding window: 60 s, within one bucket
    assert not ReleaseMember.objects.filter(user=auditor).exists()
    assert client.get("/admin/").status_code == 429
    assert AuditEvent.objects.filter(kind="rate_limited", actor=release.owner).count() == 1


def test_rate_limit_leaves_other_users_unaffected_when_one_user_is_limited(
    client, release, settings
):
    from django.test import Client

    settings.RATE_LIMIT_PER_MINUTE = 3
    client.force_login(release.owner)
    for _ in range(4):
        client.get("/admin/")
    assert client.get("/admin/").status_code == 429
    other = Client()
    other.force_login(UserFactory(staff=True))
    assert other.get("/admin/").status_code == 200


def test_rate_limit_allows_100_requests_per_minute_when_default():
    from django.conf import settings

    assert settings.RATE_LIMIT_PER_MINUTE == 100


# ---------------------------------------------------------------- permission denied
def test_permission_denied_is_audited_when_staff_without_permission_opens_a_page(client):
    user = UserFactory(username="mallory", staff=True)
    client.force_login(user)
    url = reverse("admin:checklist_auditevent_changelist")
    assert client.get(url).status_code == 403
    event = AuditEvent.objects.get(kind="permission_denied")
    assert event.actor == user and event.detail == {"path": url, "method": "GET", "status": 403}


def test_permission_denied_is_audited_when_a_stakeholder_posts_role_changes(client, release):
    stakeholder, target = UserFactory(staff=True), UserFactory(staff=True)
    from signoffs.services import member_set

    member_set(release=release, user=stakeholder, role=MemberRole.STAKEHOLDER, by=release.owner)
    client.force_login(stakeholder)
    response = client.post(
        _roles_url(release), {"add_user": target.pk, "add_role": MemberRole.AUDITOR}
    )
    assert response.status_code == 403
    assert not ReleaseMember.objects.filter(user=target).exists()
    assert AuditEvent.objects.filter(kind="permission_denied", actor=stakeholder).exists()


# ---------------------------------------------------------------- role changes
def test_role_change_is_audited_with_release_and_changes_when_roles_saved(client, release):
    auditor = UserFactory(username="aud.itor", staff=True)
    client.force_login(release.owner)
    response = client.post(
        _roles_url(release), {"add_user": auditor.pk, "add_role": MemberRole.AUDITOR}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(kind="release_member_changed")
    assert event.release_id == release.pk and event.actor == release.owner
    assert event.object_repr == "aud.itor"
    assert event.detail == {
        "user": "aud.itor",
        "role": {"old": None, "new": "auditor"},
        "by": "pm",
    }


def test_role_page_writes_no_event_when_nothing_changed(client, release):
    client.force_login(release.owner)
    before = AuditEvent.objects.count()
    assert client.post(_roles_url(release), {"owner": release.owner_id}).status_code == 302
    assert AuditEvent.objects.count() == before


# ---------------------------------------------------------------- audit_record and the admin
def test_audit_record_refuses_an_unknown_kind():
    with pytest.raises(ValueError):
        audit_record("made_up_kind")


def test_audit_record_takes_release_from_object_when_given_an_item(release):
    from tests.factories import ItemFactory, SectionFactory

    item = ItemFactory(section=SectionFactory(release=release))
    event = audit_record("record_download", actor=release.owner, obj=item, detail={"format": "md"})
    assert event.release_id == release.pk and event.username == "pm"
    assert event.object_repr == str(item)[:300]


def test_audit_admin_is_read_only_when_superuser_tries_to_change_or_delete(admin_client):
    event = audit_record("login", username="dana")
    change = reverse("admin:checklist_auditevent_change", args=[event.pk])
    admin_client.post(change, {"username": "someone else", "kind": "logout"})
    delete = reverse("admin:checklist_auditevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:checklist_auditevent_add")).status_code == 403
    event.refresh_from_db()
    assert (event.username, event.kind) == ("dana", "login")


def test_purge_markers_are_listed_read_only_when_superuser_opens_them(admin_client):
    from django.utils import timezone

    from checklist.models_audit import AuditPurge

    event = audit_record("purge", username="ops")
    marker = AuditPurge.objects.create(
        cutoff=timezone.now(), event=event, purged={"checklist_item": [[1, 9]]}
    )

    listing = admin_client.get(reverse("admin:checklist_auditpurge_changelist"))
    change = reverse("admin:checklist_auditpurge_change", args=[marker.pk])
    page = admin_client.get(change)
    delete = reverse("admin:checklist_auditpurge_delete", args=[marker.pk])

    assert listing.status_code == 200 and f'href="{change}"' in listing.content.decode()
    assert "checklist_item" in page.content.decode()
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:checklist_auditpurge_add")).status_code == 403
    assert AuditPurge.objects.filter(pk=marker.pk).exists()
