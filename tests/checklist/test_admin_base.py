"""The admin's release scoping (checklist.admin_base.ReleaseScoped): a staff user sees and
changes only what the releases granted to them allow, whatever model-level permissions say."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from checklist.choices import ItemKind, ItemStatus
from signoffs.choices import MemberRole
from signoffs.services import member_set
from tests.factories import ItemFactory, ReleaseFactory, SectionFactory, UserFactory

ITEMS = reverse("admin:checklist_item_changelist")


@pytest.fixture
def releases(db):
    mine = SectionFactory(release=ReleaseFactory(version="v1.0.0"))
    theirs = SectionFactory(release=ReleaseFactory(version="v2.0.0"))
    return (
        ItemFactory(section=mine, text="Item of my release"),
        ItemFactory(section=theirs, text="Item of their release"),
    )


def _member(client, release, role):
    user = UserFactory(staff=True)
    member_set(release=release, user=user, role=role, by=None)
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_scoped_changelist_lists_only_granted_releases_when_user_is_a_release_pm(client, releases):
    mine, _ = releases
    _member(client, mine.release, MemberRole.PRODUCT_MANAGER)

    html = client.get(ITEMS).content.decode()

    assert "Item of my release" in html
    assert "Item of their release" not in html
    assert '<option value="mark_complete">' in html  # a manager changes statuses in bulk


@pytest.mark.django_db
def test_scoped_change_page_answers_as_if_missing_when_the_release_is_not_granted(client, releases):
    mine, theirs = releases
    _member(client, mine.release, MemberRole.PRODUCT_MANAGER)

    other = client.get(reverse("admin:checklist_item_change", args=[theirs.pk]))
    missing = client.get(reverse("admin:checklist_item_change", args=[theirs.pk + 999]))

    assert other.status_code == missing.status_code == 404
    history = client.get(reverse("admin:checklist_item_history", args=[theirs.pk]))
    assert history.status_code == 404


@pytest.mark.django_db
def test_scoped_model_permissions_do_not_widen_access_when_granted_globally(client, releases):
    mine, _ = releases
    user = _member(client, mine.release, MemberRole.PRODUCT_MANAGER)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="checklist"))

    html = client.get(ITEMS).content.decode()

    assert "Item of their release" not in html


@pytest.mark.django_db
def test_scoped_pages_are_read_only_when_user_is_a_stakeholder(client, releases):
    mine, _ = releases
    _member(client, mine.release, MemberRole.STAKEHOLDER)
    change = reverse("admin:checklist_item_change", args=[mine.pk])

    listing = client.get(ITEMS).content.decode()
    posted = client.post(change, {"text": "Edited", "status": ItemStatus.COMPLETE})

    assert "Item of my release" in listing
    assert 'value="mark_complete"' not in listing  # no bulk status change
    assert posted.status_code == 403
    mine.refresh_from_db()
    assert mine.text == "Item of my release"


@pytest.mark.django_db
def test_scoped_changelist_is_forbidden_when_no_release_is_granted(client, releases):
    client.force_login(UserFactory(staff=True))

    assert client.get(ITEMS).status_code == 403
    assert client.get(reverse("admin:checklist_release_changelist")).status_code == 403


@pytest.mark.django_db
def test_scoped_bulk_action_changes_only_granted_items_when_other_ids_are_posted(client, releases):
    mine, theirs = releases
    _member(client, mine.release, MemberRole.PRODUCT_MANAGER)

    client.post(ITEMS, {"action": "mark_blocked", "_selected_action": [mine.pk, theirs.pk]})

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.status == ItemStatus.BLOCKED
    assert theirs.status == ItemStatus.NOT_STARTED


@pytest.mark.django_db
def test_scoped_add_form_refuses_a_release_the_user_does_not_manage_when_posted(client, releases):
    mine, theirs = releases
    _member(client, mine.release, MemberRole.PRODUCT_MANAGER)
    data = {
        "release": theirs.release_id,
        "section": theirs.section_id,
        "order": 0,
        "kind": ItemKind.CHECK,
        "text": "Smuggled in",
        "status": ItemStatus.NOT_STARTED,
    }

    response = client.post(reverse("admin:checklist_item_add"), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "release" in errors and "section" in errors
    assert not theirs.release.items.filter(text="Smuggled in").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changelist",
    [
        "admin:checklist_item_changelist",
        "admin:checklist_section_changelist",
        "admin:risks_risk_changelist",
        "admin:signoffs_signoffrequirement_changelist",
        "admin:signoffs_decisionrecord_changelist",
    ],
)
def test_scoped_filters_name_only_granted_releases(client, releases, changelist):
    mine, theirs = releases
    theirs.release.name = "Secret release"
    theirs.release.save()
    theirs.section.title = "Secret section"
    theirs.section.save()
    _member(client, mine.release, MemberRole.PRODUCT_MANAGER)

    html = client.get(reverse(changelist)).content.decode()

    assert "Secret release" not in html
    assert "Secret section" not in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    "view",
    ["admin:checklist_item_change", "admin:checklist_item_delete", "admin:checklist_item_history"],
)
def test_object_pages_answer_404_when_the_user_has_no_release_at_all(client, releases, view):
    _, theirs = releases
    client.force_login(UserFactory(staff=True))

    assert client.get(reverse(view, args=[theirs.pk])).status_code == 404
    assert client.post(reverse(view, args=[theirs.pk]), {}).status_code in (404, 405)
