"""Builders shared by the reminder tests: people, a release in review with work for them, and
signatures made directly (the rows, not the signing flow, are what the reminders read)."""

from __future__ import annotations

import datetime

from django.utils import timezone

from checklist.choices import ReleaseStatus
from signoffs.choices import SignatureMeaning, SignatureState
from signoffs.models import Signature
from tests.factories import ReleaseFactory, SectionFactory, UserFactory

DAY = datetime.date(2026, 12, 1)  # a Tuesday
MONDAY = datetime.date(2026, 11, 30)
SATURDAY = datetime.date(2026, 12, 5)
BASE_URL = "http://portal.example"


def person(username: str, **kwargs):
    return UserFactory(
        username=username,
        email=f"{username}@example.com",
        first_name=username.split(".")[0].title(),
        last_name="Tester",
        staff=True,
        **kwargs,
    )


def release_in_review(owner, **kwargs):
    release = ReleaseFactory(status=ReleaseStatus.IN_REVIEW, owner=owner, **kwargs)
    section = SectionFactory(release=release, number="1", title="Tasks")
    return release, section


def signature(requirement, *, state=SignatureState.VALID, signer=None) -> Signature:
    signer = signer or requirement.assignee
    return Signature.objects.create(
        requirement=requirement,
        release=requirement.release,
        signer=signer,
        printed_name=signer.get_full_name(),
        printed_role=requirement.role,
        meaning=SignatureMeaning.APPROVED,
        signed_at=timezone.now() - datetime.timedelta(days=1),
        snapshot_sha256="0" * 64,
        state=state,
    )
