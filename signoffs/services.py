"""Writes that carry the sign-off rules. Each is keyword-only, atomic, locks what it decides on,
records who and why in the history, and raises ValidationError with every reason it refuses.
Who may: access, roles, review and verdicts only by a manager of the release (``by`` None is
the system — a command, a task — and is refused inside a web request); otherwise
PermissionDenied and a ``permission_denied`` audit event (``checklist.permissions``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Subquery
from django.http import HttpRequest
from django.utils import timezone

from checklist.audit_access import access_record
from checklist.choices import ReleaseStatus
from checklist.models import Release
from checklist.models_audit import AuditKind
from checklist.permissions import release_access_sync, require_manage
from checklist.validators import REASON, length_refusals
from dcmms_release.account_throttle import throttle as account_throttle
from dcmms_release.account_throttle import throttled_for, wait_text

from .choices import MemberRole, SignatureState
from .exports import release_content, release_snapshot, snapshot_sha256
from .freeze import member_change_refusals, release_change_refusals, reopening
from .gates import (
    author_duty_refusals,
    author_refusals,
    revocation_refusals,
    signing_refusals,
)
from .models import ReleaseMember, Signature, SignatureEvent, SignoffRequirement
from .records import record_create
from .shown import NOT_SHOWN, ReleaseChanged, Shown, content_fingerprint
from .signing_session import signing_needs_user_id, signing_session_mark


def _save(obj, *, user, reason: str) -> None:
    obj._history_user = user
    obj._change_reason = reason
    obj.full_clean()
    obj.save()


def _refuse_if_frozen(release: Release) -> None:
    """A decided release is frozen: refused before anything is written (signoffs.freeze)."""
    if problems := release_change_refusals(release=release):
        raise ValidationError(problems)


def _move(signature: Signature, *, to: str, actor, reason: str) -> None:
    """Append a state change: the signature's state moves, the event keeps from → to and why."""
    event = SignatureEvent(
        signature=signature,
        from_state=signature.state,
        to_state=to,
        actor=actor,
        at=timezone.now(),
        reason=reason,
    )
    signature.state = to
    signature._history_user = actor
    signature._change_reason = reason
    signature.save(update_fields=["state"])
    event.save()


# ---------------------------------------------------------------- access
def release_access_refresh(*, release: Release, user) -> None:
    """Recompute one person's access to a release from the facts that grant it: owning it, a
    membership, or a signing role. Removing the last of them removes the access at once."""
    membership = ReleaseMember.objects.filter(release=release, user=user).first()
    signs = SignoffRequirement.objects.filter(release=release, assignee=user).exists()
    owns = release.owner_id == user.pk
    manage = owns or (membership is not None and membership.role == MemberRole.PRODUCT_MANAGER)
    release_access_sync(
        release=release,
        user=user,
        view=manage or signs or membership is not None,
        manage=manage,
        audit=membership is not None and membership.role == MemberRole.AUDITOR,
    )


@transaction.atomic
def requirement_assign(*, requirement: SignoffRequirement, assignee, by) -> SignoffRequirement:
    """Give a sign-off role on a release to one person (or to nobody). A person holds at most one
    signing role per release (separation of duties) unless SIGNOFF_ALLOW_MULTIPLE_ROLES is set,
    and the release's owner and product managers hold none (they prepare it) unless
    SIGNOFF_ALLOW_AUTHOR_APPROVAL is set.
    A valid signature by the previous holder becomes stale: the role belongs to someone else."""
    # The release first (its owner is decided on), then the requirement: every writer's order.
    release = Release.objects.select_for_update().get(pk=requirement.release_id)
    requirement = SignoffRequirement.objects.select_for_update().get(pk=requirement.pk)
    requirement.release = release
    require_manage(by, release, action="Assign a signer")
    _refuse_if_frozen(release)
    previous = requirement.assignee
    if assignee is not None and assignee.pk == requirement.assignee_id:
        return requirement
    if assignee is not None and (problems := author_refusals(release=release, user=assignee)):
        raise ValidationError(problems)
    if assignee is not None and not getattr(settings, "SIGNOFF_ALLOW_MULTIPLE_ROLES", False):
        other = (
            SignoffRequirement.objects.filter(release=requirement.release_id, assignee=assignee)
            .exclude(pk=requirement.pk)
            .first()
        )
        if other is not None:
            raise ValidationError(
                f"{assignee.get_username()} already signs as {other.role} on this release; "
                "one person holds one signing role (separation of duties)."
            )
    if assignee is not None and not assignee.is_active:
        raise ValidationError(f"{assignee.get_username()} is deactivated.")
    requirement.assignee = assignee
    who = assignee.get_username() if assignee else "nobody"
    _save(requirement, user=by, reason=f"Role {requirement.role} assigned to {who}")
    for signature in Signature.objects.select_for_update().filter(
        requirement=requirement, state=SignatureState.VALID
    ):
        _move(
            signature,
            to=SignatureState.STALE,
            actor=by,
            reason=f"Role {requirement.role} reassigned to {who}",
        )
    access_record(
        AuditKind.ROLE_ASSIGNMENT_CHANGED,
        by=by,
        whom=assignee or previous,
        release=release,
        detail={
            "role": requirement.role,
            "assignee": {
                "old": previous.get_username() if previous else None,
                "new": assignee.get_username() if assignee else None,
            },
        },
    )
    for user in filter(None, (previous, assignee)):
        release_access_refresh(release=requirement.release, user=user)
    return requirement


@transaction.atomic
def member_set(*, release: Release, user, role: str | None, by) -> ReleaseMember | None:
    """Grant (role) or remove (None) a person's product-manager, stakeholder or auditor access.
    Someone who holds a signing role on the release is not made one of its product managers
    (separation of duties) unless SIGNOFF_ALLOW_AUTHOR_APPROVAL is set."""
    release = Release.objects.select_for_update().get(pk=release.pk)
    require_manage(by, release, action="Change access")
    member = ReleaseMember.objects.select_for_update().filter(release=release, user=user).first()
    old_role = member.role if member is not None else None
    if problems := member_change_refusals(release=release, old_role=old_role, role=role):
        raise ValidationError(problems)
    if role == MemberRole.PRODUCT_MANAGER and (
        problems := author_duty_refusals(release=release, user=user, duty="product manager")
    ):
        raise ValidationError(problems)
    if role is None:
        if member is not None:
            member._history_user = by
            member._change_reason = f"Access removed for {user.get_username()}"
            member.delete()
        member = None
    else:
        member = member or ReleaseMember(release=release, user=user)
        member.role = role
        _save(member, user=by, reason=f"{MemberRole(role).label} access for {user}")
    if old_role != role:
        access_record(
            AuditKind.RELEASE_MEMBER_CHANGED,
            by=by,
            whom=user,
            release=release,
            detail={"role": {"old": old_role, "new": role}},
        )
    release_access_refresh(release=release, user=user)
    return member


def _claims_unowned(*, release: Release, owner, by) -> bool:
    """A release with no owner yet (just imported) is taken by the person importing it, when
    they may add releases: the one owner change that needs no manager."""
    return (
        release.owner_id is None
        and by is not None
        and owner is not None
        and owner.pk == by.pk
        and by.is_active
        and by.has_perm("checklist.add_release")
    )


@transaction.atomic
def release_set_owner(*, release: Release, owner, by) -> Release:
    """Hand the release to another product manager: the new owner manages it, the previous one
    keeps only what another assignment gives them. Someone who holds a signing role on the
    release does not become its owner (separation of duties) unless
    SIGNOFF_ALLOW_AUTHOR_APPROVAL is set."""
    release = Release.objects.select_for_update().get(pk=release.pk)
    if not _claims_unowned(release=release, owner=owner, by=by):
        require_manage(by, release, action="Change the owner")
    previous = release.owner
    if owner is None or (previous is not None and previous.pk == owner.pk):
        return release
    _refuse_if_frozen(release)
    if problems := author_duty_refusals(release=release, user=owner, duty="owner"):
        raise ValidationError(problems)
    if not owner.is_active:
        raise ValidationError(f"{owner.get_username()} is deactivated.")
    release.owner = owner
    _save(release, user=by, reason=f"Owner set to {owner.get_username()}")
    access_record(
        AuditKind.ROLE_ASSIGNMENT_CHANGED,
        by=by,
        whom=owner,
        release=release,
        detail={
            "role": "owner",
            "owner": {
                "old": previous.get_username() if previous else None,
                "new": owner.get_username(),
            },
        },
    )
    for user in filter(None, (previous, owner)):
        release_access_refresh(release=release, user=user)
    return release


# ---------------------------------------------------------------- review
@transaction.atomic
def release_open_review(*, release: Release, by) -> Release:
    """Draft → in review: from now on the assigned stakeholders can sign. Managers only."""
    release = Release.objects.select_for_update().get(pk=release.pk)
    require_manage(by, release, action="Open the review")
    # Only from a draft: decided → in review is the reopen's (release_reopen, with a reason).
    if release.status != ReleaseStatus.DRAFT:
        raise ValidationError(
            f"A {release.get_status_display().lower()} release cannot be opened for review."
        )
    release.status = ReleaseStatus.IN_REVIEW
    _save(release, user=by, reason="Review opened")
    return release


@transaction.atomic
def release_reopen(*, release: Release, by, reason: str) -> Release:
    """Decided → in review, with a reason: the one way to change a decided (frozen) release.
    The final decision's signature becomes stale (an appended event, with the reason) and the
    release's history records "Reopened: <reason>"; a new decision must be recorded after the
    review. The other signatures stay as they are: any change after the reopen makes them
    stale as usual."""
    require_manage(by, release, action="Reopen")
    if not reason.strip():
        raise ValidationError("A reason is required to reopen a decided release.")
    if problems := length_refusals(reason, limit=REASON, label="The reason"):
        raise ValidationError(problems)
    release = Release.objects.select_for_update().get(pk=release.pk)
    if release.status != ReleaseStatus.DECIDED:
        raise ValidationError("Only a decided release can be reopened.")
    for signature in Signature.objects.select_for_update().filter(
        release=release, requirement__final_decision=True, state=SignatureState.VALID
    ):
        _move(signature, to=SignatureState.STALE, actor=by, reason=f"Release reopened: {reason}")
    release.status = ReleaseStatus.IN_REVIEW
    with reopening(release.pk):
        _save(release, user=by, reason=f"Reopened: {reason}")
    return release


# ---------------------------------------------------------------- signatures
def _check_password(user, password: str, request=None, *, username: str | None = None) -> None:
    """Re-authentication for every signing (§11.200(a)). A wrong password is a failed login:
    authenticate() sends user_login_failed, which the lockout, the account throttle
    (``dcmms_release.account_throttle``: refused while the account's delay runs) and the audit
    trail count; the right password ends the account's delay.

    ``username`` is the user ID the signer typed (None: not asked). One that is not the signer's
    own is a failed sign-in of the signer too: it is counted against the signer's account, never
    tried as someone else's (so the sign page is no way to guess, or lock out, another account)."""
    if request is None:  # a command or a task: authenticate as a local request
        request = HttpRequest()
        request.META["REMOTE_ADDR"] = "127.0.0.1"
    if username is not None and username.strip() != user.get_username():
        user_login_failed.send(
            sender=__name__,
            credentials={"username": user.get_username(), "password": "********"},
            request=request,
        )
        raise ValidationError("The user ID is not the one you signed in with; nothing was signed.")
    checked = authenticate(request, username=user.get_username(), password=password)
    if checked is None and (wait := throttled_for(request)):
        raise ValidationError(
            f"Too many failed sign-ins for this account: try again in {wait_text(wait)}. "
            "Nothing was signed."
        )
    if checked is None or checked.pk != user.pk:
        raise ValidationError("The password is not correct; nothing was signed.")
    account_throttle.succeeded(user.get_username())  # the right password ends the delay


def signature_give(
    *,
    requirement: SignoffRequirement,
    user,
    password: str,
    meaning: str,
    comment: str = "",
    username: str = "",
    request=None,
    shown_sha256: str | None = None,
) -> Signature:
    """Sign a requirement's block. Only its assignee, only with their password, only while the
    release is in review, one valid signature per requirement (row lock and a unique constraint),
    and GO only when nothing blocks it. The first signing of a session also needs the signer's
    user ID (§11.200(a)(1)); a signing without a session (a command) always does. The server
    sets the name, role, time and the SHA-256 of the release snapshot being signed; recording GO
    or DEFER decides the release.
    What is signed is what the signer was shown (``signoffs.shown``): ``shown_sha256`` is the
    content fingerprint of the page they read, required in a web session; when the release's
    content differs from it under the release's row lock, ``ReleaseChanged`` and nothing is
    signed. Without a session (a command, a task) the release is signed as it stands."""
    if signing_needs_user_id(request, user) and not username.strip():
        raise ValidationError(
            "Enter your user ID as well as your password: the first signing of a session "
            "asks for both. Nothing was signed."
        )
    if shown_sha256 is None and getattr(request, "session", None) is not None:
        raise ValidationError(NOT_SHOWN)
    _check_password(user, password, request, username=username if username.strip() else None)
    try:
        with transaction.atomic():
            signature = _signature_write(
                requirement_id=requirement.pk,
                user=user,
                meaning=meaning,
                comment=comment,
                shown_sha256=shown_sha256,
            )
    except IntegrityError as exc:  # a concurrent signature won the race
        raise ValidationError(
            f"{requirement.role} already holds a valid signature; revoke it to sign again."
        ) from exc
    signing_session_mark(request, user)
    return signature


def _signature_write(
    *, requirement_id: int, user, meaning: str, comment: str, shown_sha256: str | None
) -> Signature:
    # The release first, then the requirement: the order every other writer (invalidation, the
    # retention purge) locks them in, so two of them never wait for each other.
    of_requirement = SignoffRequirement.objects.filter(pk=requirement_id).values("release_id")
    release = Release.objects.select_for_update().get(pk=Subquery(of_requirement))
    requirement = SignoffRequirement.objects.select_for_update().get(pk=requirement_id)
    requirement.release = release
    refusals = signing_refusals(
        requirement=requirement, user=user, meaning=meaning, comment=comment
    )
    if refusals:
        raise ValidationError(refusals)
    # Under the release's lock every writer of its content has committed or waits: what is
    # read here is what is signed, and any change after ``checked_at`` is listed as after it.
    checked_at = timezone.now()
    content = release_content(release)
    current = content_fingerprint(content)
    if shown_sha256 is not None and shown_sha256 != current:
        raise ReleaseChanged(Shown(current, checked_at))
    signature = Signature(
        requirement=requirement,
        release=release,
        signer=user,
        printed_name=user.get_full_name() or user.get_username(),
        printed_role=requirement.role,
        meaning=meaning,
        comment=comment.strip(),
        signed_at=timezone.now(),
        snapshot_sha256=snapshot_sha256(release_snapshot(release, content=content)),
        state=SignatureState.VALID,
    )
    reason = f"{requirement.role} signed: {signature.get_meaning_display()}"
    _save(signature, user=user, reason=reason)
    SignatureEvent.objects.create(
        signature=signature,
        from_state="",
        to_state=SignatureState.VALID,
        actor=user,
        at=signature.signed_at,
        reason=reason,
    )
    if requirement.final_decision:
        release.status = ReleaseStatus.DECIDED
        _save(
            release,
            user=user,
            reason=f"Final decision: {signature.get_meaning_display()} by {signature.printed_name}",
        )
        # The decision record is frozen in this transaction; its PDF renders after commit.
        record_create(release=release, signature=signature, by=user)
    return signature


@transaction.atomic
def signature_revoke(*, signature: Signature, by, reason: str) -> Signature:
    """The signer withdraws their own signature, with a reason; the original stays visible. The
    final decision is not revoked but reopened (release_reopen)."""
    signature = (
        Signature.objects.select_for_update()
        .select_related("requirement", "release")
        .get(pk=signature.pk)
    )
    problems = revocation_refusals(signature=signature, user=by, reason=reason)
    if problems:
        raise ValidationError(problems)
    _move(signature, to=SignatureState.REVOKED, actor=by, reason=reason.strip())
    return signature


def signatures_mark_stale(*, release_id: int, reason: str, actor=None) -> int:
    """Every valid signature on the release becomes stale, in the caller's transaction: what was
    signed is no longer what the release says. Returns how many."""
    count = 0
    with transaction.atomic():
        for signature in Signature.objects.select_for_update().filter(
            release_id=release_id, state=SignatureState.VALID
        ):
            _move(signature, to=SignatureState.STALE, actor=actor, reason=reason)
            count += 1
    return count


@transaction.atomic
def criterion_set_verdict(*, criterion, verdict: bool | None, by, reason: str = ""):
    """The PM's manual verdict on a criterion that nothing decides (met, for a GO criterion;
    fires, for a NO-GO blocker). Audited, and material: valid signatures become stale."""
    from .models import Criterion

    criterion = Criterion.objects.select_for_update().select_related("release").get(pk=criterion.pk)
    require_manage(by, criterion.release, action="Set a criterion's verdict")
    _refuse_if_frozen(criterion.release)
    if criterion.items.exists() or criterion.risks.exists() or criterion.requirements.exists():
        raise ValidationError(
            "This criterion is decided by what is linked to it; a manual verdict is only for a "
            "criterion with nothing linked."
        )
    criterion.manual_verdict = verdict
    _save(criterion, user=by, reason=reason or f"Manual verdict set to {verdict}")
    return criterion
