"""May this happen? Read-only answers, as the list of reasons why not (empty: it may).

- `criteria_evaluate(release)`: each GO criterion (met?) and NO-GO blocker (fires?) with why.
- `go_refusals(release)`: why the final decision cannot be GO now.
- `signing_refusals(...)`: why this user cannot record this meaning on this requirement now.
- `author_refusals(release, user)`: why this user may not hold a signing role on the release
  (separation of duties: its owner and product managers do not sign it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from checklist.choices import ItemStatus, ReleaseStatus
from checklist.models import Release
from checklist.permissions import managed_releases
from checklist.validators import COMMENT, REASON, length_refusals

from .choices import (
    FINAL_MEANINGS,
    MEANINGS_NEEDING_REASON,
    ROLE_MEANINGS,
    CriterionKind,
    MemberRole,
    SignatureMeaning,
    SignatureState,
)
from .freeze import release_change_refusals
from .models import Criterion, ReleaseMember, Signature, SignoffRequirement


@dataclass(frozen=True)
class CriterionResult:
    """A GO criterion's `holds` means met; a NO-GO blocker's `holds` means it fires. None: a
    blocker nobody has assessed yet (it blocks GO until someone does)."""

    criterion: Criterion
    holds: bool | None
    why: str
    decided_by: list[str] = field(default_factory=list)

    @property
    def blocks_go(self) -> bool:
        if self.criterion.kind == CriterionKind.GO:
            return self.holds is not True
        return self.holds is not False


def _approved_requirement_ids(release: Release) -> set[int]:
    return set(
        Signature.objects.filter(release=release)
        .approvals()
        .values_list("requirement_id", flat=True)
    )


def _linked_shortfalls(criterion: Criterion, approved: set[int]) -> tuple[list[str], list[str]]:
    """(what decides the criterion, which of those does not hold)."""
    decided_by, short = [], []
    for item in criterion.items.all():
        decided_by.append(f"item {item}")
        if item.status != ItemStatus.COMPLETE:
            short.append(f"item “{item}” is {item.get_status_display().lower()}")
        elif item.target_met is False:
            short.append(f"item “{item}” misses its target ({item.target_display})")
    for risk in criterion.risks.all():
        decided_by.append(f"risk {risk.key}")
        if risk.status != ItemStatus.COMPLETE:
            short.append(f"risk {risk.key} is open ({risk.get_status_display().lower()})")
    for requirement in criterion.requirements.all():
        decided_by.append(f"sign-off {requirement.role}")
        if requirement.pk not in approved:
            short.append(f"no valid approval from {requirement.role}")
    return decided_by, short


def criteria_evaluate(release: Release) -> list[CriterionResult]:
    """Every criterion of the release, evaluated from what is linked to it, else from the PM's
    manual verdict. Four queries whatever the number of criteria."""
    approved = _approved_requirement_ids(release)
    criteria = (
        Criterion.objects.filter(release=release)
        .prefetch_related("items", "risks", "requirements")
        .order_by("kind", "order", "pk")
    )
    results = []
    for criterion in criteria:
        decided_by, short = _linked_shortfalls(criterion, approved)
        go = criterion.kind == CriterionKind.GO
        if decided_by:
            holds = not short if go else bool(short)
            why = "; ".join(short) if short else "everything linked holds"
        elif criterion.manual_verdict is None:
            holds = False if go else None
            why = "no verdict yet (nothing linked)"
        else:
            holds = criterion.manual_verdict
            label = ("met" if holds else "not met") if go else ("fires" if holds else "clear")
            why = f"manual verdict: {label}"
            decided_by = ["manual verdict"]
        results.append(CriterionResult(criterion, holds, why, decided_by))
    return results


def _criterion_label(criterion: Criterion) -> str:
    return f"{criterion.group} — {criterion.text}" if criterion.group else criterion.text


def go_refusals(release: Release) -> list[str]:
    """Why the final decision cannot be GO: each other requirement without a valid approval,
    each stale signature, each GO criterion not met, each NO-GO blocker firing or unassessed."""
    reasons: list[str] = []
    requirements = list(
        SignoffRequirement.objects.filter(release=release, final_decision=False).order_by("order")
    )
    signatures = (
        Signature.objects.filter(release=release)
        .exclude(state=SignatureState.REVOKED)
        .select_related("requirement")
    )
    valid = {s.requirement_id: s for s in signatures if s.state == SignatureState.VALID}
    stale = [s for s in signatures if s.state == SignatureState.STALE]
    for requirement in requirements:
        signature = valid.get(requirement.pk)
        if signature is None:
            reasons.append(f"Missing valid sign-off: {requirement.role}")
        elif signature.meaning != SignatureMeaning.APPROVED:
            reasons.append(
                f"Missing valid sign-off: {requirement.role} "
                f"(rejected by {signature.printed_name}: {signature.comment})"
            )
    for signature in stale:
        if signature.requirement_id not in valid and not signature.requirement.final_decision:
            reasons.append(
                f"Stale signature: {signature.printed_role} (signed by {signature.printed_name}; "
                "the release changed since) — must be signed again"
            )
    for result in criteria_evaluate(release):
        if not result.blocks_go:
            continue
        if result.criterion.kind == CriterionKind.GO:
            reasons.append(
                f"GO criterion not met: {_criterion_label(result.criterion)} ({result.why})"
            )
        elif result.holds is None:
            reasons.append(f"NO-GO blocker not assessed: {_criterion_label(result.criterion)}")
        else:
            reasons.append(
                f"NO-GO blocker fires: {_criterion_label(result.criterion)} ({result.why})"
            )
    return reasons


def allowed_meanings(requirement: SignoffRequirement) -> tuple[str, ...]:
    return FINAL_MEANINGS if requirement.final_decision else ROLE_MEANINGS


def author_refusals(*, release: Release, user) -> list[str]:
    """Separation of duties: the release's owner and its product managers prepare it, so they do
    not sign it, unless SIGNOFF_ALLOW_AUTHOR_APPROVAL is set (as GitLab's "prevent approval by
    author" can be turned off). Empty: ``user`` may hold a signing role on ``release``."""
    if user is None or getattr(settings, "SIGNOFF_ALLOW_AUTHOR_APPROVAL", False):
        return []
    if release.owner_id == user.pk:
        duty = "owns this release"
    elif ReleaseMember.objects.filter(
        release=release, user=user, role=MemberRole.PRODUCT_MANAGER
    ).exists():
        duty = "is a product manager of this release"
    elif managed_releases(user).filter(pk=release.pk).exists():  # the managers group, however
        duty = "manages this release"  # granted (by hand in the user admin, too)
    else:
        return []
    return [
        f"Separation of duties: {user.get_username()} {duty}, and who prepares a release does "
        "not sign it. Choose another signer."
    ]


def author_duty_refusals(*, release: Release, user, duty: str) -> list[str]:
    """The other side of `author_refusals`: why ``user`` may not become the release's ``duty``
    ("owner", "product manager") — they hold one of its signing roles."""
    if user is None or getattr(settings, "SIGNOFF_ALLOW_AUTHOR_APPROVAL", False):
        return []
    held = (
        SignoffRequirement.objects.filter(release=release, assignee=user)
        .order_by("order", "pk")
        .first()
    )
    if held is None:
        return []
    return [
        f"Separation of duties: {user.get_username()} signs as {held.role} on this release, so "
        f"cannot be its {duty} (who prepares a release does not sign it). Give that signing "
        "role to someone else first."
    ]


def signing_refusals(
    *, requirement: SignoffRequirement, user, meaning: str, comment: str
) -> list[str]:
    """Why `user` cannot sign `requirement` with `meaning` now (empty: they can)."""
    reasons: list[str] = []
    release = requirement.release
    if requirement.assignee_id is None or requirement.assignee_id != user.pk:
        reasons.append(f"You are not assigned to sign as {requirement.role} on this release.")
    else:  # an owner or PM who holds a role from before the rule, or while it was allowed
        reasons.extend(author_refusals(release=release, user=user))
    if release.status == ReleaseStatus.DECIDED:  # frozen: the way back is a reopen
        reasons.extend(release_change_refusals(release=release.pk))
    elif release.status != ReleaseStatus.IN_REVIEW:
        reasons.append(
            f"The release is not in review (status: {release.get_status_display()}); "
            "the product manager opens the review."
        )
    if Signature.objects.filter(requirement=requirement, state=SignatureState.VALID).exists():
        reasons.append(
            f"{requirement.role} already holds a valid signature; revoke it to sign again."
        )
    if meaning not in allowed_meanings(requirement):
        labels = " or ".join(SignatureMeaning(m).label for m in allowed_meanings(requirement))
        reasons.append(f"{requirement.role} records {labels}.")
    if meaning in MEANINGS_NEEDING_REASON and not comment.strip():
        reasons.append(f"A reason is required to record {SignatureMeaning(meaning).label}.")
    reasons.extend(length_refusals(comment, limit=COMMENT, label="The comment"))
    if requirement.final_decision and meaning == SignatureMeaning.GO:
        reasons.extend(go_refusals(release))
    return reasons


def revocation_refusals(*, signature: Signature, user, reason: str | None) -> list[str]:
    """Why `user` cannot revoke `signature` now (empty: they can). `reason=None` leaves the
    reason out of the question (a page asking who may revoke, before any reason is typed)."""
    reasons: list[str] = []
    if signature.signer_id != user.pk:
        reasons.append("Only the signer can revoke their signature.")
    if signature.state == SignatureState.REVOKED:
        reasons.append("This signature is already revoked.")
    if signature.requirement.final_decision and signature.release.status == ReleaseStatus.DECIDED:
        reasons.append("The final decision is not revoked: reopen the release instead.")
    elif signature.release.status == ReleaseStatus.DECIDED:  # frozen with its sign-offs
        reasons.extend(release_change_refusals(release=signature.release_id))
    if reason is not None and not reason.strip():
        reasons.append("A reason is required to revoke a signature.")
    if reason is not None:
        reasons.extend(length_refusals(reason, limit=REASON, label="The reason"))
    return reasons
