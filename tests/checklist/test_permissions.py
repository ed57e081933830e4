"""checklist.permissions: who manages a release, who may change an item, who audits."""

import pytest
from django.contrib.auth.models import Group

from checklist.permissions import (
    ORGANISATION_AUDITORS,
    audited_releases,
    is_organisation_auditor,
    may_edit_item,
    may_manage,
)
from signoffs.choices import MemberRole
from signoffs.services import member_set
from tests.factories import ItemFactory, ReleaseFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def release():
    return ReleaseFactory(owner=UserFactory(username="owner"))


def _member(release, role):
    user = UserFactory()
    member_set(release=release, user=user, role=role, by=release.owner)
    return user


def test_may_manage_is_true_for_owner_product_manager_and_superuser_only(release):
    assert may_manage(release.owner, release)
    assert may_manage(_member(release, MemberRole.PRODUCT_MANAGER), release)
    assert may_manage(UserFactory(superuser=True), release)
    assert not may_manage(_member(release, MemberRole.STAKEHOLDER), release)
    assert not may_manage(_member(release, MemberRole.AUDITOR), release)
    assert not may_manage(UserFactory(), release)
    assert not may_manage(None, release)


def test_may_manage_is_false_when_the_owner_is_deactivated(release):
    release.owner.is_active = False
    release.owner.save()

    assert not may_manage(release.owner, release)


def test_may_edit_item_allows_its_owner_only_while_they_see_the_release(release):
    stakeholder = _member(release, MemberRole.STAKEHOLDER)
    own = ItemFactory(section__release=release, owner=stakeholder)
    other = ItemFactory(section__release=release)

    assert may_edit_item(stakeholder, own) and not may_edit_item(stakeholder, other)
    member_set(release=release, user=stakeholder, role=None, by=release.owner)
    assert not may_edit_item(stakeholder, own)


def test_audited_releases_lists_only_releases_audited_unless_organisation_wide(release):
    auditor = _member(release, MemberRole.AUDITOR)
    other = ReleaseFactory()

    assert list(audited_releases(auditor)) == [release]
    assert not is_organisation_auditor(auditor)
    auditor.groups.add(Group.objects.create(name=ORGANISATION_AUDITORS))
    assert set(audited_releases(auditor)) == {release, other}
    assert not audited_releases(_member(release, MemberRole.PRODUCT_MANAGER)).exists()
