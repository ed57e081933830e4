import pytest

from checklist.choices import ReleaseStatus
from signoffs.choices import Tier
from tests.factories import (
    ItemFactory,
    ReleaseFactory,
    SectionFactory,
    SignoffRequirementFactory,
    UserFactory,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def pm(db):
    return UserFactory(username="pm", staff=True, first_name="Priya", last_name="Manager")


@pytest.fixture
def review(db, pm):
    """A release in review with two signing roles and a final decision role, each assigned."""
    from signoffs.services import requirement_assign

    release = ReleaseFactory(status=ReleaseStatus.IN_REVIEW, owner=pm)
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
        username = role.lower().replace(" ", ".")
        user = UserFactory(username=username, staff=True, first_name="Demo", last_name=role)
        roles[role] = requirement_assign(requirement=requirement, assignee=user, by=pm)
    release.refresh_from_db()
    return release, roles


# Decision-record fixtures (signing key pair, decided release) live in their own module.
from tests.signoffs.record_fixtures import content, decided, signing, signing_pair  # noqa: E402,F401
