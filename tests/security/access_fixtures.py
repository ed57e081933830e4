"""Two product managers and three releases, for the cross-release access tests (issue #14,
Access): Dana manages Delta and is only a stakeholder on Charlie (Carol's); Hotel is Hugo's and
nobody else's. Every Hotel row says "Hotel" (or "hotel"), so a page or an answer that leaks any
of it is caught by one search."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.messages import get_messages

from checklist.models import Item, Release, Section
from risks.models import ActionItem, Risk
from signoffs.choices import MemberRole
from signoffs.models import Attestation, Criterion, SignoffRequirement
from signoffs.services import member_set, release_access_refresh
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


@dataclass
class Rows:
    release: Release
    section: Section
    items: list[Item]
    risk: Risk
    action: ActionItem
    requirement: SignoffRequirement
    attestation: Attestation
    criterion: Criterion


@dataclass
class Cross:
    dana: object  # manages Delta, stakeholder on Charlie
    carol: object  # owns Charlie
    hugo: object  # owns Hotel
    delta: Rows
    charlie: Rows
    hotel: Rows


def _rows(name: str, owner, *, prefix: str) -> Rows:
    release = ReleaseFactory(name=name, owner=owner)
    release_access_refresh(release=release, user=owner)
    section = SectionFactory(release=release, title=f"{prefix} section")
    items = [ItemFactory(section=section, text=f"{prefix} item {n}", owner=owner) for n in range(2)]
    requirement = SignoffRequirementFactory(release=release, role=f"{prefix} signer")
    return Rows(
        release=release,
        section=section,
        items=items,
        risk=RiskFactory(release=release, title=f"{prefix} risk", owner=owner),
        action=ActionItemFactory(release=release, action=f"{prefix} action", owner=owner),
        requirement=requirement,
        attestation=AttestationFactory(requirement=requirement, text=f"{prefix} statement"),
        criterion=CriterionFactory(release=release, text=f"{prefix} criterion"),
    )


@pytest.fixture
def cross(db) -> Cross:
    dana = UserFactory(username="dana", staff=True)
    carol = UserFactory(username="carol", staff=True)
    hugo = UserFactory(username="hotel-hugo", staff=True, first_name="Hotel", last_name="Hugo")
    world = Cross(
        dana=dana,
        carol=carol,
        hugo=hugo,
        delta=_rows("Delta", dana, prefix="Delta"),
        charlie=_rows("Charlie", carol, prefix="Charlie"),
        hotel=_rows("Hotel", hugo, prefix="Hotel"),
    )
    member_set(release=world.charlie.release, user=dana, role=MemberRole.STAKEHOLDER, by=carol)
    return world


def messages_of(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]
