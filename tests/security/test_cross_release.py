"""Issue #14, Access 1: every service that writes checks the actor's right on what it writes,
whatever view calls it. Dana manages Delta and is only a stakeholder on Charlie: each admin
action on Charlie's rows is refused with an error message and a permission-denied audit event,
and nothing changes; each service refuses her on Charlie, and the system (no user) only where no
web request is being served."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import ERROR, SUCCESS
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from checklist.choices import ItemStatus, ReleaseStatus
from checklist.models import Item, Release
from checklist.models_audit import AuditEvent, AuditKind
from checklist.services import item_set_status, items_set_status
from signoffs.choices import MemberRole, SignatureMeaning
from signoffs.documents import release_import
from signoffs.models import DecisionRecord, ReleaseMember, Signature
from signoffs.records import record_retry
from signoffs.reminder_services import release_digests_send
from signoffs.services import (
    criterion_set_verdict,
    member_set,
    release_open_review,
    release_reopen,
    release_set_owner,
    requirement_assign,
)
from tests.factories import ItemFactory, ReleaseFactory, UserFactory
from tests.security.access_fixtures import messages_of

pytestmark = pytest.mark.django_db

ITEMS = reverse("admin:checklist_item_changelist")
RELEASES = reverse("admin:checklist_release_changelist")
RECORDS = reverse("admin:signoffs_decisionrecord_changelist")
ITEM_ACTIONS = ("mark_complete", "mark_in_progress", "mark_blocked", "mark_at_risk")


def _action(client, url: str, action: str, rows):
    return client.post(
        url, {"action": action, "_selected_action": [r.pk for r in rows], "index": 0}, follow=True
    )


def _statuses(items) -> list[str]:
    return list(Item.objects.filter(pk__in=[i.pk for i in items]).values_list("status", flat=True))


def _denied(release) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=AuditKind.PERMISSION_DENIED, release=release))


def _failed_record(release) -> DecisionRecord:
    """A decision record of ``release`` whose rendering failed (written as the rows are, without
    the signing journey: only the retry is under test)."""
    requirement = release.signoff_requirements.first()
    signer = UserFactory()
    signature = Signature.objects.create(
        requirement=requirement,
        release=release,
        signer=signer,
        printed_name="Signer",
        printed_role=requirement.role,
        meaning=SignatureMeaning.DEFER,
        comment="Not yet",
        signed_at=timezone.now(),
        snapshot_sha256="0" * 64,
    )
    return DecisionRecord.objects.create(
        release=release,
        signature=signature,
        snapshot_json="{}",
        snapshot_sha256="0" * 64,
        state="failed",
        failure_reason="Signing key missing",
    )


# ---------------------------------------------------------------- admin actions
@pytest.mark.parametrize("action", ITEM_ACTIONS)
def test_item_status_action_is_refused_and_audited_when_items_belong_to_a_release_not_managed(
    client, cross, action
):
    items = cross.charlie.items
    client.force_login(cross.dana)

    response = _action(client, ITEMS, action, items)

    assert response.status_code == 200
    assert _statuses(items) == [ItemStatus.NOT_STARTED] * 2
    errors = [text for level, text in messages_of(response) if level == ERROR]
    assert len(errors) == 1 and "you manage" in errors[0] and "nothing was changed" in errors[0]
    assert not [text for level, text in messages_of(response) if level == SUCCESS]
    (event,) = _denied(cross.charlie.release)
    assert event.actor == cross.dana
    assert event.detail["path"] == ITEMS and event.detail["method"] == "POST"


def test_item_status_action_changes_nothing_when_the_selection_mixes_managed_and_other_items(
    client, cross
):
    mine, theirs = cross.delta.items[0], cross.charlie.items[0]
    client.force_login(cross.dana)

    response = _action(client, ITEMS, "mark_complete", [mine, theirs])

    assert _statuses([mine, theirs]) == [ItemStatus.NOT_STARTED] * 2
    assert [level for level, _ in messages_of(response)] == [ERROR]


def test_item_status_action_marks_items_when_the_user_manages_their_release(client, cross):
    client.force_login(cross.dana)

    response = _action(client, ITEMS, "mark_complete", cross.delta.items)

    assert _statuses(cross.delta.items) == [ItemStatus.COMPLETE] * 2
    assert (SUCCESS, "2 item(s) marked Complete.") in messages_of(response)
    assert not _denied(cross.delta.release)


def test_open_review_action_is_refused_and_audited_when_the_release_is_not_managed(client, cross):
    client.force_login(cross.dana)

    response = _action(client, RELEASES, "open_review", [cross.charlie.release])

    cross.charlie.release.refresh_from_db()
    assert cross.charlie.release.status == ReleaseStatus.DRAFT
    errors = [text for level, text in messages_of(response) if level == ERROR]
    assert errors == [
        f"{cross.charlie.release}: Open the review refused: you do not manage "
        f"{cross.charlie.release}."
    ]
    assert len(_denied(cross.charlie.release)) == 1


def test_open_review_action_opens_only_the_managed_release_when_both_are_selected(client, cross):
    client.force_login(cross.dana)

    _action(client, RELEASES, "open_review", [cross.delta.release, cross.charlie.release])

    statuses = dict(
        Release.objects.filter(
            pk__in=[cross.delta.release.pk, cross.charlie.release.pk]
        ).values_list("name", "status")
    )
    assert statuses == {"Delta": ReleaseStatus.IN_REVIEW, "Charlie": ReleaseStatus.DRAFT}


def test_send_digests_action_is_refused_and_audited_when_the_release_is_not_managed(client, cross):
    client.force_login(cross.dana)

    response = _action(client, RELEASES, "send_digests_now", [cross.charlie.release])

    errors = [text for level, text in messages_of(response) if level == ERROR]
    assert errors == [f"{cross.charlie.release}: you do not manage this release."]
    assert len(_denied(cross.charlie.release)) == 1


def test_retry_rendering_action_is_refused_and_audited_when_the_release_is_not_managed(
    client, cross
):
    record = _failed_record(cross.charlie.release)
    _failed_record(cross.delta.release)  # Dana has a record list to act on
    client.force_login(cross.dana)

    response = _action(client, RECORDS, "retry_rendering", [record])

    record.refresh_from_db()
    assert record.state == "failed"
    assert [level for level, _ in messages_of(response)] == [ERROR]
    assert len(_denied(cross.charlie.release)) == 1


def test_assign_view_is_refused_and_changes_nothing_when_the_release_is_not_managed(client, cross):
    requirement = cross.charlie.requirement
    client.force_login(cross.dana)
    url = reverse("admin:signoffs_signoffrequirement_assign", args=[requirement.pk])

    response = client.post(url, {"assignee": cross.dana.pk})

    assert response.status_code == 403
    requirement.refresh_from_db()
    assert requirement.assignee_id is None
    assert len(AuditEvent.objects.filter(kind=AuditKind.PERMISSION_DENIED)) == 1


def test_import_page_refuses_and_audits_a_replace_of_a_release_the_user_does_not_manage(
    client, cross, seed_text
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    charlie = cross.charlie.release
    text = seed_text.replace("Release 2 (v0.3.0)", f"Charlie ({charlie.version})")
    cross.dana.user_permissions.add(Permission.objects.get(codename="add_release"))
    client.force_login(cross.dana)
    upload = SimpleUploadedFile("charlie.md", text.encode(), content_type="text/markdown")

    response = client.post(
        reverse("admin:checklist_release_import"), {"checklist": upload, "replace": "on"}
    )

    assert response.status_code == 200
    assert "you do not manage it" in response.content.decode()
    charlie.refresh_from_db()
    assert charlie.items.count() == 2 and charlie.source_name == ""
    assert len(_denied(charlie)) == 1


# ---------------------------------------------------------------- services
def test_items_set_status_refuses_and_changes_nothing_when_the_user_does_not_manage(cross):
    with pytest.raises(PermissionDenied, match="nothing was changed"):
        items_set_status(items=cross.charlie.items, status=ItemStatus.COMPLETE, user=cross.dana)
    assert _statuses(cross.charlie.items) == [ItemStatus.NOT_STARTED] * 2


def test_item_set_status_lets_the_owner_set_their_own_item_when_they_only_see_the_release(cross):
    own = ItemFactory(section=cross.charlie.section, text="Dana's task", owner=cross.dana)

    item_set_status(item=own, status=ItemStatus.COMPLETE, user=cross.dana)
    items_set_status(items=[own], status=ItemStatus.BLOCKED, user=cross.dana)

    own.refresh_from_db()
    assert own.status == ItemStatus.BLOCKED
    with pytest.raises(PermissionDenied):
        item_set_status(item=cross.charlie.items[0], status=ItemStatus.COMPLETE, user=cross.dana)
    with pytest.raises(PermissionDenied):
        items_set_status(
            items=[own, cross.charlie.items[0]], status=ItemStatus.COMPLETE, user=cross.dana
        )
    own.refresh_from_db()
    assert own.status == ItemStatus.BLOCKED


def test_item_set_status_refuses_an_owner_who_may_no_longer_see_the_release(cross):
    own = ItemFactory(section=cross.hotel.section, text="Hotel task", owner=cross.dana)

    with pytest.raises(PermissionDenied) as refusal:
        item_set_status(item=own, status=ItemStatus.COMPLETE, user=cross.dana)

    assert "Hotel" not in str(refusal.value)  # a release she may not see is not named
    own.refresh_from_db()
    assert own.status == ItemStatus.NOT_STARTED


def test_release_services_refuse_and_change_nothing_when_the_user_does_not_manage(cross):
    charlie, dana = cross.charlie, cross.dana
    stranger = UserFactory()
    refused = {
        "open review": lambda: release_open_review(release=charlie.release, by=dana),
        "assign": lambda: requirement_assign(
            requirement=charlie.requirement, assignee=stranger, by=dana
        ),
        "member": lambda: member_set(
            release=charlie.release, user=stranger, role=MemberRole.PRODUCT_MANAGER, by=dana
        ),
        "owner": lambda: release_set_owner(release=charlie.release, owner=dana, by=dana),
        "verdict": lambda: criterion_set_verdict(
            criterion=charlie.criterion, verdict=True, by=dana
        ),
        "digests": lambda: release_digests_send(
            release=charlie.release, date=timezone.localdate(), by=dana
        ),
    }
    for name, call in refused.items():
        with pytest.raises(PermissionDenied, match="you do not manage"):
            call()
        assert name  # the loop names the service in a failure's traceback

    charlie.release.refresh_from_db()
    charlie.requirement.refresh_from_db()
    charlie.criterion.refresh_from_db()
    assert charlie.release.status == ReleaseStatus.DRAFT
    assert charlie.release.owner == cross.carol
    assert charlie.requirement.assignee_id is None
    assert charlie.criterion.manual_verdict is None
    assert not ReleaseMember.objects.filter(user=stranger).exists()


def test_release_reopen_refuses_a_stakeholder_when_the_release_is_decided(cross):
    decided = ReleaseFactory(owner=cross.carol)
    member_set(release=decided, user=cross.dana, role=MemberRole.STAKEHOLDER, by=cross.carol)
    decided.status = ReleaseStatus.DECIDED  # as a final signature leaves it
    decided.save()

    with pytest.raises(PermissionDenied):
        release_reopen(release=decided, by=cross.dana, reason="I want to edit it")

    decided.refresh_from_db()
    assert decided.status == ReleaseStatus.DECIDED


def test_record_retry_refuses_and_keeps_the_record_when_the_user_does_not_manage(cross):
    record = _failed_record(cross.charlie.release)

    with pytest.raises(PermissionDenied):
        record_retry(record=record, by=cross.dana)

    record.refresh_from_db()
    assert record.state == "failed"


def test_release_import_refuses_to_replace_a_release_the_user_does_not_manage(seed_text, cross):
    seed_text = seed_text.replace("Release 2 (v0.3.0)", "Release 2 (v9.9.9)")
    release = release_import(text=seed_text, source_name="seed.md")
    release_set_owner(release=release, owner=cross.carol, by=None)
    items = release.items.count()

    with pytest.raises(PermissionDenied, match="Replace the checklist refused"):
        release_import(text=seed_text, source_name="again.md", replace=True, user=cross.dana)

    release.refresh_from_db()
    assert release.source_name == "seed.md" and release.items.count() == items


def test_services_refuse_a_deactivated_owner_when_they_act_on_their_release(cross):
    cross.dana.is_active = False
    cross.dana.save()

    with pytest.raises(PermissionDenied):
        release_open_review(release=cross.delta.release, by=cross.dana)


def test_release_set_owner_lets_an_importer_take_a_release_with_no_owner_when_they_may_add(cross):
    orphan = ReleaseFactory(owner=None)
    with pytest.raises(PermissionDenied):
        release_set_owner(release=orphan, owner=cross.dana, by=cross.dana)
    cross.dana.user_permissions.add(Permission.objects.get(codename="add_release"))
    dana = type(cross.dana).objects.get(pk=cross.dana.pk)  # permissions are cached per object

    release_set_owner(release=orphan, owner=dana, by=dana)

    orphan.refresh_from_db()
    assert orphan.owner == dana
    with pytest.raises(PermissionDenied):  # only for oneself, never to hand it to someone
        release_set_owner(release=ReleaseFactory(owner=None), owner=cross.carol, by=dana)


# ---------------------------------------------------------------- the system actor
def test_services_accept_no_user_as_the_system_when_no_request_is_served(cross):
    release_open_review(release=cross.charlie.release, by=None)
    items_set_status(items=cross.charlie.items, status=ItemStatus.COMPLETE, user=None)

    cross.charlie.release.refresh_from_db()
    assert cross.charlie.release.status == ReleaseStatus.IN_REVIEW
    assert _statuses(cross.charlie.items) == [ItemStatus.COMPLETE] * 2


def test_services_refuse_no_user_when_a_web_request_is_being_served(cross):
    HistoricalRecords.context.request = RequestFactory().post("/admin/checklist/item/")
    try:
        with pytest.raises(PermissionDenied, match="never as the system"):
            release_open_review(release=cross.charlie.release, by=None)
        with pytest.raises(PermissionDenied, match="never as the system"):
            items_set_status(items=cross.charlie.items, status=ItemStatus.COMPLETE, user=None)
    finally:
        del HistoricalRecords.context.request

    cross.charlie.release.refresh_from_db()
    assert cross.charlie.release.status == ReleaseStatus.DRAFT
    assert _statuses(cross.charlie.items) == [ItemStatus.NOT_STARTED] * 2
