"""Row locks and the partial unique constraint only mean something on PostgreSQL
(select_for_update is a no-op on SQLite): selected by the `postgres` marker in .ci/run."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from checklist.choices import ReleaseStatus
from signoffs.models import Signature
from signoffs.services import requirement_assign, signature_give
from tests.factories import ReleaseFactory, SignoffRequirementFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_ten_simultaneous_signings_give_exactly_one_signature():
    pm = UserFactory(username="pm")
    release = ReleaseFactory(status=ReleaseStatus.IN_REVIEW, owner=pm)
    requirement = SignoffRequirementFactory(release=release, role="QA Lead")
    signer = UserFactory(username="qa")
    requirement = requirement_assign(requirement=requirement, assignee=signer, by=pm)
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def attempt():
        try:
            barrier.wait()
            signature_give(
                requirement=requirement,
                user=signer,
                username=signer.username,
                password="correct horse battery staple",
                meaning="approved",
            )
            outcomes.append("signed")
        except ValidationError as exc:
            outcomes.append(" ".join(exc.messages))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count("signed") == 1
    assert len(outcomes) == 10
    assert all("already holds a valid signature" in o for o in outcomes if o != "signed")
    assert Signature.objects.filter(requirement=requirement).count() == 1


def test_material_change_waits_for_a_signing_in_progress():
    """A change committed while a signing is in progress cannot slip between the snapshot hash
    and the signature: its invalidation waits for the signing and marks the new signature
    stale."""
    from django.db import transaction

    from checklist.models import Item
    from signoffs.choices import SignatureState
    from tests.factories import ItemFactory, SectionFactory

    pm = UserFactory(username="pm")
    release = ReleaseFactory(status=ReleaseStatus.IN_REVIEW, owner=pm)
    item = ItemFactory(section=SectionFactory(release=release))
    signer = UserFactory(username="qa")
    requirement = requirement_assign(
        requirement=SignoffRequirementFactory(release=release), assignee=signer, by=pm
    )
    locked, done = threading.Event(), threading.Event()

    def change():
        locked.wait(10)
        with transaction.atomic():
            row = Item.objects.get(pk=item.pk)
            row.text = "changed while signing"
            row.save()  # its invalidation waits for the signing's lock on the release
        connection.close()
        done.set()

    thread = threading.Thread(target=change)
    thread.start()
    with transaction.atomic():
        from checklist.models import Release

        Release.objects.select_for_update().get(pk=release.pk)
        locked.set()
        assert not done.wait(1), "the change must wait for the lock"
        signature = signature_give(
            requirement=requirement,
            user=signer,
            username=signer.username,
            password="correct horse battery staple",
            meaning="approved",
        )
    thread.join(30)
    signature.refresh_from_db()
    assert signature.state == SignatureState.STALE
