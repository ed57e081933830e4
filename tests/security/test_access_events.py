"""Who did what (issue #13): changes of accounts and access are audit events, and every refused
write is one ``permission_denied`` event (21 CFR Part 11 §11.10(e), ASVS 7.1.3/7.1.4)."""

import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory
from django.urls import reverse
from guardian.shortcuts import assign_perm, remove_perm

from checklist.audit import audit_denied
from checklist.audit_access import acting_as
from checklist.models_audit import AuditEvent, AuditKind
from signoffs.choices import MemberRole
from signoffs.models import ReleaseMember, Signature
from signoffs.services import member_set, release_access_refresh, release_set_owner
from tests.factories import ItemFactory, ReleaseFactory, SectionFactory, UserFactory

pytestmark = pytest.mark.django_db

ACCESS_KINDS = (
    AuditKind.ACCOUNT_CREATED,
    AuditKind.ACCOUNT_CHANGED,
    AuditKind.ACCOUNT_DELETED,
    AuditKind.PASSWORD_CHANGED,
    AuditKind.GROUP_MEMBERSHIP_CHANGED,
    AuditKind.PERMISSIONS_CHANGED,
    AuditKind.OBJECT_PERMISSION_CHANGED,
    AuditKind.RELEASE_MEMBER_CHANGED,
    AuditKind.ROLE_ASSIGNMENT_CHANGED,
)
XSS = "<script>alert(1)</script>"


def _events(kind=None):
    """The access events (or those of ``kind``) written so far, oldest first."""
    events = AuditEvent.objects.filter(kind__in=ACCESS_KINDS).order_by("id")
    return list(events.filter(kind=kind) if kind else events)


def _mark():
    """The last event's id: what a step wrote is what comes after it."""
    last = AuditEvent.objects.order_by("-id").first()
    return last.pk if last else 0


def _since(mark, kind=None):
    events = AuditEvent.objects.filter(pk__gt=mark).order_by("id")
    return list(events.filter(kind=kind) if kind else events)


def _denied(mark):
    return _since(mark, AuditKind.PERMISSION_DENIED)


@pytest.fixture
def boss(db):
    return UserFactory(username="boss", superuser=True)


@pytest.fixture
def bob(db):
    return UserFactory(username="bob", staff=True)


def _user_form(user, **changes):
    """The admin's user change form as the browser posts it, with ``changes`` applied."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
    }
    for flag in ("is_active", "is_staff", "is_superuser"):
        if getattr(user, flag):
            data[flag] = "on"
    for key, value in changes.items():
        if value is False:
            data.pop(key, None)
        elif value is True:
            data[key] = "on"
        else:
            data[key] = value
    return data


def _user_change(user):
    return reverse("admin:auth_user_change", args=[user.pk])


def _perm(label):
    app_label, codename = label.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


# ---------------------------------------------------------------- accounts
def test_account_created_event_names_actor_and_no_password_when_admin_adds_a_user(client, boss):
    client.force_login(boss)
    mark = _mark()
    response = client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "a long secret phrase 93!",
            "password2": "a long secret phrase 93!",
        },
    )
    assert response.status_code == 302
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.ACCOUNT_CREATED
    assert (event.actor, event.object_repr) == (boss, "newcomer")
    assert event.detail == {
        "user": "newcomer",
        "is_superuser": False,
        "is_staff": False,
        "is_active": True,
        "by": "boss",
    }
    assert "secret phrase" not in json.dumps(event.detail)


@pytest.mark.parametrize("flag", ["is_superuser", "is_staff", "is_active"])
def test_account_flag_change_is_one_event_with_old_and_new_when_saved_in_user_change_form(
    client, boss, bob, flag
):
    old = getattr(bob, flag)
    client.force_login(boss)
    mark = _mark()
    response = client.post(_user_change(bob), _user_form(bob, **{flag: not old}))
    assert response.status_code == 302
    bob.refresh_from_db()
    assert getattr(bob, flag) is (not old)
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.ACCOUNT_CHANGED
    assert (event.actor, event.object_repr, event.release_id) == (boss, "bob", None)
    assert event.detail == {
        "user": "bob",
        "changes": {flag: {"old": old, "new": not old}},
        "by": "boss",
    }


def test_account_change_writes_no_event_when_the_form_is_saved_unchanged(client, boss, bob):
    client.force_login(boss)
    mark = _mark()
    assert client.post(_user_change(bob), _user_form(bob, first_name="Robert")).status_code == 302
    assert [e for e in _since(mark) if e.kind in ACCESS_KINDS] == []


def test_account_change_in_code_names_the_system_when_there_is_no_request(bob):
    mark = _mark()
    bob.is_superuser = True
    bob.save()
    (event,) = _since(mark, AuditKind.ACCOUNT_CHANGED)
    assert event.actor is None and event.username == ""
    assert event.detail["by"] == "system"


def test_account_change_in_code_names_the_actor_when_acting_as_is_given(boss, bob):
    mark = _mark()
    with acting_as(boss):
        bob.is_active = False
        bob.save()
    (event,) = _since(mark, AuditKind.ACCOUNT_CHANGED)
    assert event.actor == boss and event.detail["by"] == "boss"
    assert event.detail["changes"] == {"is_active": {"old": True, "new": False}}


def test_account_deleted_is_an_event_when_a_user_row_is_removed(boss, bob):
    mark = _mark()
    with acting_as(boss):
        bob.delete()
    (event,) = _since(mark, AuditKind.ACCOUNT_DELETED)
    assert (event.actor, event.object_repr) == (boss, "bob")


# ---------------------------------------------------------------- passwords
def test_password_change_is_one_event_without_the_hash_when_admin_sets_it(client, boss, bob):
    client.force_login(boss)
    mark = _mark()
    response = client.post(
        reverse("admin:auth_user_password_change", args=[bob.pk]),
        {
            "usable_password": "true",
            "password1": "another long phrase 71?",
            "password2": "another long phrase 71?",
        },
    )
    assert response.status_code == 302
    bob.refresh_from_db()
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.PASSWORD_CHANGED
    assert (event.actor, event.object_repr) == (boss, "bob")
    assert event.detail == {"user": "bob", "usable": True, "by": "boss"}
    stored = json.dumps(event.detail)
    assert bob.password not in stored and "another long phrase" not in stored


def test_password_change_is_an_event_when_a_user_changes_their_own(client, bob):
    client.force_login(bob)
    mark = _mark()
    response = client.post(
        reverse("admin:password_change"),
        {
            "old_password": "correct horse battery staple",
            "new_password1": "my new long phrase 55#",
            "new_password2": "my new long phrase 55#",
        },
    )
    assert response.status_code == 302
    (event,) = _since(mark, AuditKind.PASSWORD_CHANGED)
    assert (event.actor, event.object_repr) == (bob, "bob")


def test_password_rehash_at_sign_in_writes_no_event_when_the_password_is_the_same(bob, settings):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    old_hash = bob.password
    mark = _mark()
    assert bob.check_password("correct horse battery staple")  # re-hashed and saved
    bob.refresh_from_db()
    assert bob.password != old_hash and bob.password.startswith("pbkdf2_")
    assert _since(mark, AuditKind.PASSWORD_CHANGED) == []


# ---------------------------------------------------------------- groups
def test_group_membership_is_one_event_with_before_and_after_when_added_in_user_form(
    client, boss, bob
):
    reviewers = Group.objects.create(name="reviewers")
    client.force_login(boss)
    mark = _mark()
    assert client.post(_user_change(bob), _user_form(bob, groups=[reviewers.pk])).status_code == 302
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.GROUP_MEMBERSHIP_CHANGED
    assert (event.actor, event.object_repr) == (boss, "bob")
    assert event.detail == {
        "user": "bob",
        "added": ["reviewers"],
        "before": [],
        "after": ["reviewers"],
        "by": "boss",
    }


def test_group_membership_removal_is_one_event_when_removed_in_user_form(client, boss, bob):
    reviewers = Group.objects.create(name="reviewers")
    bob.groups.add(reviewers)
    client.force_login(boss)
    mark = _mark()
    assert client.post(_user_change(bob), _user_form(bob, groups=[])).status_code == 302
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.GROUP_MEMBERSHIP_CHANGED
    assert event.detail["removed"] == ["reviewers"] and event.detail["after"] == []


def test_group_membership_from_the_group_side_is_one_event_per_user_when_added_in_code(bob):
    alice = UserFactory(username="alice")
    reviewers = Group.objects.create(name="reviewers")
    mark = _mark()
    reviewers.user_set.add(alice, bob)
    events = _since(mark, AuditKind.GROUP_MEMBERSHIP_CHANGED)
    assert sorted(e.object_repr for e in events) == ["alice", "bob"]
    assert all(e.detail["added"] == ["reviewers"] for e in events)


def test_group_membership_clear_records_what_was_there_when_cleared_from_either_side(bob):
    reviewers, auditors = Group.objects.create(name="reviewers"), Group.objects.create(name="aud")
    bob.groups.add(reviewers, auditors)
    mark = _mark()
    bob.groups.clear()
    (event,) = _since(mark, AuditKind.GROUP_MEMBERSHIP_CHANGED)
    assert event.detail["removed"] == ["aud", "reviewers"] and event.detail["after"] == []
    reviewers.user_set.add(bob)
    mark = _mark()
    reviewers.user_set.clear()
    (event,) = _since(mark, AuditKind.GROUP_MEMBERSHIP_CHANGED)
    assert (event.object_repr, event.detail["removed"]) == ("bob", ["reviewers"])


def test_group_membership_removal_writes_no_event_when_the_user_was_not_a_member(bob):
    reviewers = Group.objects.create(name="reviewers")
    mark = _mark()
    bob.groups.remove(reviewers)
    assert _since(mark) == []


def test_group_membership_of_a_release_group_names_the_release_when_added_by_hand(bob):
    release = ReleaseFactory()
    release_access_refresh(release=release, user=UserFactory())  # creates the release's groups
    managers = Group.objects.get(name=f"release-{release.pk}-managers")
    mark = _mark()
    bob.groups.add(managers)  # a grant that bypasses the roles page is still on record
    (event,) = _since(mark, AuditKind.GROUP_MEMBERSHIP_CHANGED)
    assert event.release_id == release.pk


# ---------------------------------------------------------------- model permissions
def test_user_permission_is_one_event_when_granted_in_user_form(client, boss, bob):
    perm = _perm("checklist.change_item")
    client.force_login(boss)
    mark = _mark()
    data = _user_form(bob, user_permissions=[perm.pk])
    assert client.post(_user_change(bob), data).status_code == 302
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.PERMISSIONS_CHANGED
    assert (event.actor, event.object_repr) == (boss, "bob")
    assert event.detail["added"] == ["checklist.change_item"]
    assert event.detail["before"] == [] and event.detail["after"] == ["checklist.change_item"]


def test_user_permission_removal_is_one_event_when_taken_from_the_permission_side(bob):
    perm = _perm("checklist.delete_item")
    bob.user_permissions.add(perm)
    mark = _mark()
    perm.user_set.remove(bob)
    (event,) = _since(mark, AuditKind.PERMISSIONS_CHANGED)
    assert (event.object_repr, event.detail["removed"]) == ("bob", ["checklist.delete_item"])


def test_group_permission_is_one_event_when_granted_in_group_change_form(client, boss):
    group = Group.objects.create(name="editors")
    perm = _perm("checklist.change_section")
    client.force_login(boss)
    mark = _mark()
    response = client.post(
        reverse("admin:auth_group_change", args=[group.pk]),
        {"name": "editors", "permissions": [perm.pk]},
    )
    assert response.status_code == 302
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.PERMISSIONS_CHANGED
    assert (event.actor, event.object_repr) == (boss, "editors")
    assert event.detail == {
        "group": "editors",
        "added": ["checklist.change_section"],
        "before": [],
        "after": ["checklist.change_section"],
        "by": "boss",
    }


def test_group_permission_removal_is_one_event_when_removed_in_code(boss):
    group = Group.objects.create(name="editors")
    perm = _perm("checklist.change_section")
    group.permissions.add(perm)
    mark = _mark()
    with acting_as(boss):
        group.permissions.remove(perm)
    (event,) = _since(mark, AuditKind.PERMISSIONS_CHANGED)
    assert event.actor == boss and event.detail["removed"] == ["checklist.change_section"]


# ---------------------------------------------------------------- object permissions
def test_object_permission_grant_and_removal_are_one_event_each_naming_the_release(boss, bob):
    release = ReleaseFactory(name="Release 9")
    mark = _mark()
    with acting_as(boss):
        assign_perm("checklist.change_release", bob, release)
    (granted,) = _since(mark, AuditKind.OBJECT_PERMISSION_CHANGED)
    assert (granted.actor, granted.object_repr, granted.release_id) == (boss, "bob", release.pk)
    assert granted.detail["permission"] == "checklist.change_release"
    assert (granted.detail["old"], granted.detail["new"]) == ("revoked", "granted")
    assert granted.detail["object_repr"] == str(release)
    mark = _mark()
    with acting_as(boss):
        remove_perm("checklist.change_release", bob, release)
    (revoked,) = _since(mark, AuditKind.OBJECT_PERMISSION_CHANGED)
    assert (revoked.detail["old"], revoked.detail["new"]) == ("granted", "revoked")


def test_object_permission_of_a_group_is_an_event_when_granted_in_code(bob):
    release = ReleaseFactory()
    group = Group.objects.create(name="outsiders")
    mark = _mark()
    assign_perm("checklist.view_release", group, release)
    (event,) = _since(mark, AuditKind.OBJECT_PERMISSION_CHANGED)
    assert event.detail["group"] == "outsiders" and event.release_id == release.pk


# ---------------------------------------------------------------- release membership
@pytest.fixture
def release(db):
    pm = UserFactory(username="pm", staff=True)
    release = ReleaseFactory(owner=pm, name="Release 7")
    release_access_refresh(release=release, user=pm)
    return release


def _roles_url(release):
    return reverse("admin:checklist_release_roles", args=[release.pk])


def test_release_member_added_on_roles_page_is_one_event_and_no_derived_group_event(
    client, release, bob
):
    client.force_login(release.owner)
    mark = _mark()
    response = client.post(
        _roles_url(release), {"add_user": bob.pk, "add_role": MemberRole.STAKEHOLDER}
    )
    assert response.status_code == 302
    assert ReleaseMember.objects.filter(user=bob, release=release).exists()
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.RELEASE_MEMBER_CHANGED
    assert (event.actor, event.object_repr, event.release_id) == (release.owner, "bob", release.pk)
    assert event.detail == {
        "user": "bob",
        "role": {"old": None, "new": "stakeholder"},
        "by": "pm",
    }


def test_release_member_role_change_and_removal_are_one_event_each_when_done_in_code(release, bob):
    member_set(release=release, user=bob, role=MemberRole.STAKEHOLDER, by=release.owner)
    mark = _mark()
    member_set(release=release, user=bob, role=MemberRole.AUDITOR, by=release.owner)
    (changed,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert changed.detail["role"] == {"old": "stakeholder", "new": "auditor"}
    mark = _mark()
    member_set(release=release, user=bob, role=None, by=release.owner)
    (removed,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert removed.detail["role"] == {"old": "auditor", "new": None}
    assert removed.actor == release.owner and removed.release_id == release.pk


def test_release_member_removed_on_roles_page_is_one_event(client, release, bob):
    member = member_set(release=release, user=bob, role=MemberRole.AUDITOR, by=release.owner)
    client.force_login(release.owner)
    mark = _mark()
    data = {"owner": release.owner_id, f"remove_{member.pk}": "on"}
    assert client.post(_roles_url(release), data).status_code == 302
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.RELEASE_MEMBER_CHANGED
    assert event.detail["role"] == {"old": "auditor", "new": None}


def test_signer_assignment_on_roles_page_is_one_role_assignment_event(client, release, bob):
    from tests.factories import SignoffRequirementFactory

    requirement = SignoffRequirementFactory(release=release, role="QA Lead")
    client.force_login(release.owner)
    mark = _mark()
    data = {"owner": release.owner_id, f"signer_{requirement.pk}": bob.pk}
    assert client.post(_roles_url(release), data).status_code == 302
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.ROLE_ASSIGNMENT_CHANGED
    assert (event.actor, event.object_repr, event.release_id) == (release.owner, "bob", release.pk)
    assert event.detail["role"] == "QA Lead"
    assert event.detail["assignee"] == {"old": None, "new": "bob"}


def test_owner_change_is_one_role_assignment_event_when_done_in_code(release):
    other = UserFactory(username="pm2", staff=True)
    mark = _mark()
    release_set_owner(release=release, owner=other, by=release.owner)
    (event,) = [e for e in _since(mark) if e.kind in ACCESS_KINDS]
    assert event.kind == AuditKind.ROLE_ASSIGNMENT_CHANGED
    assert event.detail["owner"] == {"old": "pm", "new": "pm2"}


# ---------------------------------------------------------------- refused writes
@pytest.fixture
def two_releases(release):
    """``release`` (pm's) and another release whose item pm may not see."""
    other = ReleaseFactory(name="Release 8")
    item = ItemFactory(section=SectionFactory(release=other), text="Other release's item")
    return release, item


def test_refused_sign_post_is_one_event_with_reason_and_writes_no_signature(
    client, review, password
):
    release, roles = review
    qa_lead = roles["QA Lead"].assignee
    client.force_login(qa_lead)
    mark = _mark()
    url = reverse("admin:signoffs_signoffrequirement_sign", args=[roles["CEO"].pk])
    response = client.post(url, {"meaning": "approved", "password": password, "comment": "x"})
    assert response.status_code == 403
    assert not Signature.objects.filter(requirement=roles["CEO"]).exists()
    (event,) = _denied(mark)
    assert (event.actor, event.release_id) == (qa_lead, release.pk)
    assert (event.detail["path"], event.detail["method"], event.detail["status"]) == (
        url,
        "POST",
        403,
    )
    assert "Not the assignee" in event.detail["reason"]
    assert password not in json.dumps(event.detail)


def test_refused_post_to_another_releases_item_is_one_event_and_changes_nothing(
    client, two_releases
):
    release, item = two_releases
    client.force_login(release.owner)
    mark = _mark()
    url = reverse("admin:checklist_item_change", args=[item.pk])
    response = client.post(url, {"text": "Taken over"})
    assert response.status_code == 404
    item.refresh_from_db()
    assert item.text == "Other release's item"
    (event,) = _denied(mark)
    assert event.actor == release.owner
    assert event.detail == {
        "path": url,
        "method": "POST",
        "status": 404,
        "reason": "No such object, or not granted to this user.",
    }


def test_get_of_a_missing_object_writes_no_event_when_only_read(client, two_releases):
    release, item = two_releases
    client.force_login(release.owner)
    mark = _mark()
    assert client.get(reverse("admin:checklist_item_change", args=[item.pk])).status_code == 404
    assert client.get("/admin/checklist/item/999999/change/").status_code == 404
    assert _denied(mark) == []


def test_forbidden_admin_action_is_one_event_and_changes_nothing(client, release):
    item = ItemFactory(section=SectionFactory(release=release), text="Pending work")
    stakeholder = UserFactory(username="stake", staff=True)
    member_set(release=release, user=stakeholder, role=MemberRole.STAKEHOLDER, by=release.owner)
    client.force_login(stakeholder)
    mark = _mark()
    response = client.post(
        reverse("admin:checklist_item_changelist"),
        {"action": "mark_complete", "index": 0, "_selected_action": [item.pk]},
    )
    assert response.status_code in (200, 302)
    item.refresh_from_db()
    assert item.status != "complete"
    (event,) = _denied(mark)
    assert event.actor == stakeholder
    assert event.detail["action"] == "mark_complete"
    assert event.detail["reason"] == "Admin action not allowed."
    assert event.detail["status"] == response.status_code


def test_forbidden_change_form_post_is_one_event_not_two_when_the_403_handler_also_records(
    client, bob
):
    victim = UserFactory(username="victim")
    bob.user_permissions.add(_perm("auth.view_user"))
    client.force_login(bob)
    mark = _mark()
    response = client.post(_user_change(victim), _user_form(victim, is_superuser=True))
    assert response.status_code == 403
    victim.refresh_from_db()
    assert not victim.is_superuser
    (event,) = _denied(mark)
    assert event.actor == bob and event.detail["status"] == 403
    assert [e for e in _since(mark) if e.kind in ACCESS_KINDS] == []


def test_refused_roles_post_is_one_event_with_the_views_reason(client, release, bob):
    member_set(release=release, user=bob, role=MemberRole.STAKEHOLDER, by=release.owner)
    client.force_login(bob)
    mark = _mark()
    response = client.post(_roles_url(release), {"add_user": bob.pk, "add_role": "auditor"})
    assert response.status_code == 403
    (event,) = _denied(mark)
    assert event.detail["reason"] == "Only the release's product managers change its roles."


def test_audit_denied_writes_one_event_per_request_when_called_twice(bob):
    request = RequestFactory().post("/admin/checklist/item/1/change/", {"password": "hunter2"})
    request.user = bob
    first = audit_denied(request, reason="first reason", detail={"action": "x"})
    second = audit_denied(request, reason="second reason")
    assert first is not None and first.pk == second.pk
    (event,) = AuditEvent.objects.filter(kind=AuditKind.PERMISSION_DENIED)
    assert event.detail["reason"] == "first reason" and "hunter2" not in json.dumps(event.detail)


def test_refusal_by_a_service_is_kept_when_its_transaction_rolls_back_inside_a_request(bob):
    from django.core.exceptions import PermissionDenied
    from django.db import transaction
    from django.http import HttpResponse
    from simple_history.models import HistoricalRecords

    from dcmms_release.security import DeniedAuditMiddleware

    def view(request):
        try:
            with transaction.atomic():  # the service's transaction, rolled back by its refusal
                audit_denied(bob, reason="Not yours.", detail={"action": "Mark complete"})
                raise PermissionDenied("Not yours.")
        except PermissionDenied:
            return HttpResponse("shown as an error message")

    request = RequestFactory().post("/admin/checklist/item/")
    request.user = bob
    HistoricalRecords.context.request = request  # as simple-history's middleware does
    try:
        response = DeniedAuditMiddleware(view)(request)
    finally:
        del HistoricalRecords.context.request
    (event,) = AuditEvent.objects.filter(kind=AuditKind.PERMISSION_DENIED)
    assert event.actor == bob
    assert event.detail == {
        "path": "/admin/checklist/item/",
        "method": "POST",
        "reason": "Not yours.",
        "action": "Mark complete",
        "status": response.status_code,
    }


@pytest.mark.django_db(transaction=True)
def test_audit_denied_names_the_user_when_called_from_code_without_a_request(bob):
    assert audit_denied(bob, reason="Not yours.") is None  # outside a transaction: at once
    event = AuditEvent.objects.get(kind=AuditKind.PERMISSION_DENIED)
    assert (event.actor, event.detail) == (bob, {"reason": "Not yours."})


@pytest.mark.django_db(transaction=True)
def test_audit_denied_outlives_the_rollback_of_the_refused_command(bob):
    from django.core.exceptions import PermissionDenied
    from django.db import transaction

    from checklist.chain import verify

    with pytest.raises(PermissionDenied), transaction.atomic():  # a command's transaction
        audit_denied(bob, reason="Replace the checklist refused")
        assert not AuditEvent.objects.filter(kind=AuditKind.PERMISSION_DENIED).exists()
        raise PermissionDenied("refused")
    event = AuditEvent.objects.get(kind=AuditKind.PERMISSION_DENIED)
    assert (event.actor, event.detail) == (bob, {"reason": "Replace the checklist refused"})
    assert verify()[1] is None and verify()[0] >= 1  # linked, in its own transaction


# ---------------------------------------------------------------- shown escaped
def test_audit_admin_escapes_access_and_refusal_events_when_names_hold_markup(admin_client, bob):
    Group.objects.create(name=XSS).user_set.add(bob)
    request = RequestFactory().post(f"/admin/{XSS}/")
    request.user = bob
    audit_denied(request, reason=XSS)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    listing = admin_client.get(reverse("admin:checklist_auditevent_changelist")).content.decode()
    assert XSS not in listing
    for event in AuditEvent.objects.filter(
        kind__in=[AuditKind.GROUP_MEMBERSHIP_CHANGED, AuditKind.PERMISSION_DENIED]
    ):
        page = admin_client.get(reverse("admin:checklist_auditevent_change", args=[event.pk]))
        html = page.content.decode()
        assert XSS not in html and escaped in html


# ---------------------------------------------------------------- in the chain
@pytest.mark.django_db(transaction=True)
def test_access_event_is_linked_into_the_audit_chain_when_its_transaction_commits():
    from checklist.models_audit import AuditChainEntry

    user = UserFactory(username="carol")
    user.is_staff = True
    user.save()
    event = AuditEvent.objects.get(kind=AuditKind.ACCOUNT_CHANGED)
    assert AuditChainEntry.objects.filter(table=AuditEvent._meta.db_table, row_pk=event.pk).exists()
