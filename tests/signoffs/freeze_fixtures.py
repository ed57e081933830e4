"""A decided (frozen) release with one row of every kind it owns, for the freeze tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from checklist.choices import ReleaseStatus
from checklist.models import Item, Release, Section
from risks.models import ActionItem, Risk
from signoffs.choices import MemberRole, Tier
from signoffs.documents import release_import
from signoffs.models import Attestation, Criterion, ReleaseMember, Signature, SignoffRequirement
from signoffs.services import (
    member_set,
    release_access_refresh,
    release_open_review,
    requirement_assign,
    signature_give,
)
from tests.factories import (
    ActionItemFactory,
    AttestationFactory,
    CriterionFactory,
    ItemFactory,
    ReleaseFactory,
    RiskFactory,
    SectionFactory,
    SignoffRequirementFactory,
    UserFactory,
)

PASSWORD = "correct horse battery staple"
SEED_PATH = Path(__file__).resolve().parents[2] / "fixtures" / "seed_checklist.md"


def sign(requirement: SignoffRequirement, password: str, meaning: str, comment: str) -> Signature:
    return signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.get_username(),
        password=password,
        meaning=meaning,
        comment=comment,
    )


@dataclass
class Frozen:
    release: Release
    roles: dict[str, SignoffRequirement]
    pm: Any
    section: Section
    item: Item
    risk: Risk
    action: ActionItem
    criterion: Criterion
    attestation: Attestation
    member: ReleaseMember
    approval: Signature
    decision: Signature

    @property
    def date(self) -> str:
        return timezone.localtime(self.decision.signed_at).date().isoformat()

    @property
    def message(self) -> str:
        """The refusal every write gets."""
        return (
            f"{self.release.version} is decided: DEFER on {self.date} by Demo CEO; "
            "reopen it to change."
        )

    @property
    def banner(self) -> str:
        return f"Decided: DEFER on {self.date}, by Demo CEO; reopen to change."

    def rows(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "item": self.item,
            "risk": self.risk,
            "action item": self.action,
            "criterion": self.criterion,
            "attestation": self.attestation,
            "requirement": self.roles["QA Lead"],
            "member": self.member,
            "release": self.release,
        }


def _in_review(pm) -> tuple[Release, dict[str, SignoffRequirement]]:
    """As the ``review`` fixture: a release in review, QA Lead, Security Officer and CEO."""
    release = ReleaseFactory(status=ReleaseStatus.IN_REVIEW, owner=pm)
    release_access_refresh(release=release, user=pm)  # the PM manages it
    section = SectionFactory(release=release, number="1", title="Tasks")
    ItemFactory(section=section, text="p95 latency", failing=False, metric=True)
    roles = {}
    for order, (role, tier, final) in enumerate(
        [
            ("QA Lead", Tier.TECHNICAL, False),
            ("Security Officer", Tier.TECHNICAL, False),
            ("CEO", Tier.EXECUTIVE, True),
        ]
    ):
        requirement = SignoffRequirementFactory(
            release=release, role=role, tier=tier, final_decision=final, order=order
        )
        user = UserFactory(
            username=role.lower().replace(" ", "."), staff=True, first_name="Demo", last_name=role
        )
        roles[role] = requirement_assign(requirement=requirement, assignee=user, by=pm)
    release.refresh_from_db()
    return release, roles


@pytest.fixture(name="frozen")
def frozen_fixture(db) -> Frozen:
    """A release in review with a row of every kind, a QA approval, then DEFER by the CEO."""
    pm = UserFactory(username="pm", staff=True, first_name="Priya", last_name="Manager")
    release, roles = _in_review(pm)
    password = PASSWORD
    item = release.items.get()
    criterion = CriterionFactory(release=release, text="Latency target met")
    criterion.items.add(item)
    stakeholder = UserFactory(username="stakeholder", staff=True)
    member = member_set(release=release, user=stakeholder, role=MemberRole.STAKEHOLDER, by=pm)
    frozen = Frozen(
        release=release,
        roles=roles,
        pm=pm,
        section=release.sections.get(),
        item=item,
        risk=RiskFactory(release=release, key="R-001", title="Failover untested"),
        action=ActionItemFactory(release=release, key="A-001", action="Book the pen test"),
        criterion=criterion,
        attestation=AttestationFactory(requirement=roles["QA Lead"], text="All tests pass"),
        member=member,
        approval=sign(roles["QA Lead"], password, "approved", "Tests pass"),
        decision=sign(roles["CEO"], password, "defer", "Security audit outstanding"),
    )
    release.refresh_from_db()
    return frozen


@pytest.fixture(name="decided_seed")
def decided_seed_fixture(db) -> tuple[Release, Signature]:
    """The seed checklist imported and decided (DEFER by its final role, Chief Exec)."""
    release = release_import(text=SEED_PATH.read_bytes(), source_name=SEED_PATH.name)
    final = SignoffRequirement.objects.get(release=release, final_decision=True)
    signer = UserFactory(username="chief", first_name="Chief", last_name="Exec")
    requirement_assign(requirement=final, assignee=signer, by=None)
    release_open_review(release=release, by=None)
    final.refresh_from_db()
    return release, sign(final, PASSWORD, "defer", "Security audit outstanding")
