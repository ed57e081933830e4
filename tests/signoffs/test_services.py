import pytest
from django.core.exceptions import ValidationError

from checklist.choices import ReleaseStatus
from checklist.permissions import can_view_release, may_manage
from signoffs.choices import MemberRole, SignatureState
from signoffs.models import Signature, SignatureEvent
from signoffs.services import (
    member_set,
    release_open_review,
    release_reopen,
    requirement_assign,
    signature_give,
    signature_revoke,
)
from tests.factories import ReleaseFactory, SignoffRequirementFactory, UserFactory

pytestmark = pytest.mark.django_db


def sign(requirement, meaning="approved", comment="", password="correct horse battery staple"):
    return signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password=password,
        meaning=meaning,
        comment=comment,
    )


def test_signature_give_records_what_the_server_knows(review):
    release, roles = review
    signature = sign(roles["QA Lead"])
    assert signature.state == SignatureState.VALID
    assert signature.printed_name == "Demo QA Lead"
    assert signature.printed_role == "QA Lead"
    assert signature.signed_at.utcoffset().total_seconds() == 0
    assert len(signature.snapshot_sha256) == 64
    event = SignatureEvent.objects.get(signature=signature)
    assert (event.from_state, event.to_state) == ("", "valid")
    assert signature.history.first().history_change_reason == "QA Lead signed: Approved"


def test_signature_give_writes_nothing_when_password_wrong(review):
    _, roles = review
    with pytest.raises(ValidationError, match="password is not correct"):
        sign(roles["QA Lead"], password="wrong password!!")
    assert not Signature.objects.exists()


def test_signature_give_refused_when_user_not_assigned(review):
    _, roles = review
    other = roles["Security Officer"].assignee
    with pytest.raises(ValidationError) as err:
        signature_give(
            requirement=roles["QA Lead"],
            user=other,
            username=other.username,
            password="correct horse battery staple",
            meaning="approved",
        )
    assert "You are not assigned to sign as QA Lead on this release." in err.value.messages
    assert not Signature.objects.exists()


def test_signature_give_refused_when_already_valid(review):
    _, roles = review
    sign(roles["QA Lead"])
    with pytest.raises(ValidationError, match="already holds a valid signature"):
        sign(roles["QA Lead"])
    assert Signature.objects.count() == 1


def test_signature_give_refused_when_release_not_in_review(review, pm):
    release, roles = review
    release.status = ReleaseStatus.DRAFT
    release.save()
    with pytest.raises(ValidationError, match="not in review"):
        sign(roles["QA Lead"])


@pytest.mark.parametrize(("role", "meaning"), [("QA Lead", "go"), ("CEO", "approved")])
def test_signature_give_refused_when_meaning_does_not_fit_the_role(review, role, meaning):
    _, roles = review
    with pytest.raises(ValidationError, match="records"):
        sign(roles[role], meaning=meaning)


@pytest.mark.parametrize(("role", "meaning"), [("QA Lead", "rejected"), ("CEO", "defer")])
def test_signature_give_requires_a_reason_when_rejecting_or_deferring(review, role, meaning):
    _, roles = review
    with pytest.raises(ValidationError, match="A reason is required"):
        sign(roles[role], meaning=meaning, comment="  ")


def test_final_go_refused_with_every_missing_piece(review):
    _, roles = review
    sign(roles["QA Lead"])
    with pytest.raises(ValidationError) as err:
        sign(roles["CEO"], meaning="go")
    assert "Missing valid sign-off: Security Officer" in err.value.messages
    assert "Missing valid sign-off: QA Lead" not in err.value.messages


def test_final_go_decides_the_release_when_everything_holds(review):
    release, roles = review
    sign(roles["QA Lead"])
    sign(roles["Security Officer"])
    decision = sign(roles["CEO"], meaning="go")
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED
    assert decision.meaning == "go"
    assert "Final decision: GO" in release.history.first().history_change_reason


def test_final_defer_always_possible_with_a_reason(review):
    release, roles = review
    sign(roles["CEO"], meaning="defer", comment="Security audit not done")
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED


def test_reopen_makes_the_decision_stale_and_returns_to_review(review, pm):
    release, roles = review
    decision = sign(roles["CEO"], meaning="defer", comment="Not ready")
    release_reopen(release=release, by=pm, reason="Audit finished")
    release.refresh_from_db()
    decision.refresh_from_db()
    assert release.status == ReleaseStatus.IN_REVIEW
    assert decision.state == SignatureState.STALE
    assert decision.events.last().reason == "Release reopened: Audit finished"


def test_reopen_refused_without_reason_or_when_not_decided(review, pm):
    release, _ = review
    with pytest.raises(ValidationError, match="reason is required"):
        release_reopen(release=release, by=pm, reason=" ")
    with pytest.raises(ValidationError, match="Only a decided release"):
        release_reopen(release=release, by=pm, reason="why")


def test_revoke_appends_a_state_and_keeps_the_original(review):
    _, roles = review
    signature = sign(roles["QA Lead"])
    signature_revoke(signature=signature, by=signature.signer, reason="Found a bug")
    signature.refresh_from_db()
    assert signature.state == SignatureState.REVOKED
    assert [e.to_state for e in signature.events.all()] == ["valid", "revoked"]
    assert signature.meaning == "approved"
    # revoked: the role may sign again
    assert sign(roles["QA Lead"]).state == SignatureState.VALID


def test_revoke_refused_for_someone_else_or_without_reason(review):
    _, roles = review
    signature = sign(roles["QA Lead"])
    with pytest.raises(ValidationError) as err:
        signature_revoke(signature=signature, by=roles["CEO"].assignee, reason="")
    assert "Only the signer can revoke their signature." in err.value.messages
    assert "A reason is required to revoke a signature." in err.value.messages


def test_revoke_refused_for_the_recorded_decision(review):
    _, roles = review
    decision = sign(roles["CEO"], meaning="defer", comment="x")
    with pytest.raises(ValidationError, match="reopen the release"):
        signature_revoke(signature=decision, by=decision.signer, reason="oops")


def test_assign_refuses_a_second_role_for_one_person(review, pm):
    release, roles = review
    with pytest.raises(ValidationError, match="separation of duties"):
        requirement_assign(requirement=roles["CEO"], assignee=roles["QA Lead"].assignee, by=pm)


def test_assign_allows_a_second_role_when_the_setting_allows(review, pm, settings):
    settings.SIGNOFF_ALLOW_MULTIPLE_ROLES = True
    _, roles = review
    ceo = requirement_assign(requirement=roles["CEO"], assignee=roles["QA Lead"].assignee, by=pm)
    assert ceo.assignee == roles["QA Lead"].assignee


def test_assign_grants_and_unassign_removes_access_at_once(pm):
    release = ReleaseFactory(owner=pm)
    requirement = SignoffRequirementFactory(release=release, role="QA Lead")
    user = UserFactory()
    assert not can_view_release(user, release)
    requirement_assign(requirement=requirement, assignee=user, by=pm)
    assert can_view_release(user, release)
    assert not may_manage(user, release)
    requirement_assign(requirement=requirement, assignee=None, by=pm)
    assert not can_view_release(user, release)


def test_reassign_makes_the_previous_holders_signature_stale(review, pm):
    _, roles = review
    signature = sign(roles["QA Lead"])
    requirement_assign(requirement=roles["QA Lead"], assignee=UserFactory(), by=pm)
    signature.refresh_from_db()
    assert signature.state == SignatureState.STALE


@pytest.mark.parametrize(
    ("role", "view", "manage"),
    [
        (MemberRole.AUDITOR, True, False),
        (MemberRole.STAKEHOLDER, True, False),
        (MemberRole.PRODUCT_MANAGER, True, True),
    ],
)
def test_member_set_grants_by_role_and_none_removes(pm, role, view, manage):
    release = ReleaseFactory(owner=pm)
    user = UserFactory()
    member_set(release=release, user=user, role=role, by=pm)
    assert (can_view_release(user, release), may_manage(user, release)) == (view, manage)
    member_set(release=release, user=user, role=None, by=pm)
    assert not can_view_release(user, release)


def test_open_review_moves_draft_to_review_only(pm):
    release = ReleaseFactory(owner=pm)
    assert release_open_review(release=release, by=pm).status == ReleaseStatus.IN_REVIEW
    with pytest.raises(ValidationError):
        release_open_review(release=release, by=pm)
