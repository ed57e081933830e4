import json

import pytest
from django.urls import reverse

from checklist.choices import ReleaseStatus
from checklist.permissions import can_view_release, may_manage
from signoffs.choices import MemberRole
from signoffs.services import member_set, requirement_assign
from tests.factories import (
    ItemFactory,
    ReleaseFactory,
    SectionFactory,
    SignoffRequirementFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(db):
    pm = UserFactory(username="pm", staff=True)
    release = ReleaseFactory(owner=pm, name="Release <b>2</b>")
    from signoffs.services import release_access_refresh

    release_access_refresh(release=release, user=pm)
    ItemFactory(section=SectionFactory(release=release), text="p95 latency")
    return release


def _url(name, release, *extra):
    return reverse(f"admin:checklist_release_{name}", args=[release.pk, *extra])


@pytest.mark.parametrize("page", [("roles",), ("export", "json"), ("export", "md")])
def test_release_pages_answer_404_when_release_not_granted(client, release, page):
    client.force_login(UserFactory(staff=True))
    assert client.get(_url(page[0], release, *page[1:])).status_code == 404


@pytest.mark.parametrize("page", [("roles",), ("export", "json"), ("reopen",)])
def test_release_pages_send_anonymous_to_login(client, release, page):
    response = client.get(_url(page[0], release, *page[1:]))
    assert response.status_code == 302 and "/login/" in response.url


def test_export_json_downloads_the_record_for_a_member(client, release):
    auditor = UserFactory(staff=True)
    member_set(release=release, user=auditor, role=MemberRole.AUDITOR, by=release.owner)
    client.force_login(auditor)
    response = client.get(_url("export", release, "json"))
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["release"]["name"] == "Release <b>2</b>"


def test_export_md_downloads_markdown(client, release):
    client.force_login(release.owner)
    response = client.get(_url("export", release, "md"))
    assert response.status_code == 200
    assert "p95 latency" in response.content.decode()
    assert client.get(_url("export", release, "pdfx")).status_code == 404


def test_roles_page_assigns_signer_owner_and_members(client, release):
    requirement = SignoffRequirementFactory(release=release, role="QA Lead")
    qa, auditor, new_pm = UserFactory(staff=True), UserFactory(staff=True), UserFactory(staff=True)
    client.force_login(release.owner)
    page = client.get(_url("roles", release))
    assert page.status_code == 200
    assert "Release &lt;b&gt;2&lt;/b&gt;" in page.content.decode()
    response = client.post(
        _url("roles", release),
        {
            "owner": release.owner.pk,
            f"signer_{requirement.pk}": qa.pk,
            "add_user": auditor.pk,
            "add_role": MemberRole.AUDITOR,
        },
    )
    assert response.status_code == 302
    requirement.refresh_from_db()
    assert requirement.assignee == qa
    assert can_view_release(auditor, release) and not may_manage(auditor, release)
    client.post(_url("roles", release), {"owner": new_pm.pk})
    release.refresh_from_db()
    assert release.owner == new_pm and may_manage(new_pm, release)


def test_roles_page_refuses_everything_when_one_change_is_refused(client, release):
    first = SignoffRequirementFactory(release=release, role="QA Lead")
    second = SignoffRequirementFactory(release=release, role="CTO")
    person = UserFactory(staff=True)
    client.force_login(release.owner)
    response = client.post(
        _url("roles", release),
        {
            "owner": release.owner.pk,
            f"signer_{first.pk}": person.pk,
            f"signer_{second.pk}": person.pk,
        },
        follow=True,
    )
    assert "separation of duties" in response.content.decode()
    first.refresh_from_db()
    assert first.assignee is None


def test_roles_page_read_only_for_a_stakeholder(client, release):
    requirement = SignoffRequirementFactory(release=release, role="QA Lead")
    qa = UserFactory(staff=True)
    requirement_assign(requirement=requirement, assignee=qa, by=release.owner)
    client.force_login(qa)
    assert client.get(_url("roles", release)).status_code == 200
    response = client.post(_url("roles", release), {f"signer_{requirement.pk}": ""})
    assert response.status_code == 403
    requirement.refresh_from_db()
    assert requirement.assignee == qa


def test_roles_page_removes_a_member_and_their_access(client, release):
    auditor = UserFactory(staff=True)
    member = member_set(release=release, user=auditor, role=MemberRole.AUDITOR, by=release.owner)
    client.force_login(release.owner)
    client.post(_url("roles", release), {"owner": release.owner.pk, f"remove_{member.pk}": "on"})
    assert not can_view_release(auditor, release)


def test_reopen_view_requires_reason_and_returns_to_review(client, release):
    release.status = ReleaseStatus.DECIDED
    release.save()
    client.force_login(release.owner)
    assert client.get(_url("reopen", release)).status_code == 200
    client.post(_url("reopen", release), {"reason": ""})
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED
    response = client.post(_url("reopen", release), {"reason": "Pen test finished"})
    assert response.status_code == 302
    release.refresh_from_db()
    assert release.status == ReleaseStatus.IN_REVIEW
    assert release.history.first().history_change_reason == "Reopened: Pen test finished"


def test_reopen_refused_for_a_non_manager(client, release):
    auditor = UserFactory(staff=True)
    member_set(release=release, user=auditor, role=MemberRole.AUDITOR, by=release.owner)
    client.force_login(auditor)
    assert client.post(_url("reopen", release), {"reason": "x"}).status_code == 403


def test_item_owner_edits_status_actual_and_evidence_only(client, release):
    owner = UserFactory(staff=True)
    member_set(release=release, user=owner, role=MemberRole.STAKEHOLDER, by=release.owner)
    item = ItemFactory(section=release.sections.first(), owner=owner, metric=True)
    mine = reverse("admin:checklist_item_change", args=[item.pk])
    client.force_login(owner)
    page = client.get(mine).content.decode()
    assert 'name="actual_value"' in page and 'name="text"' not in page
    assert 'name="target_value"' not in page
    other = ItemFactory(section=release.sections.first())
    assert (
        client.post(
            reverse("admin:checklist_item_change", args=[other.pk]), {"status": "complete"}
        ).status_code
        == 403
    )


def test_new_release_in_admin_is_owned_and_managed_by_its_creator(client):
    from django.contrib.auth.models import Permission

    pm = UserFactory(staff=True)
    pm.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_release", "view_release"])
    )
    client.force_login(pm)
    response = client.post(
        reverse("admin:checklist_release_add"),
        {
            "project": "dCMMS",
            "name": "Release 3",
            "version": "v0.4.0",
            "review_cadence": "daily",
            "owner": UserFactory(username="someone.else").pk,  # ignored: the creator owns it
            "sections-TOTAL_FORMS": 0,
            "sections-INITIAL_FORMS": 0,
            "signoff_requirements-TOTAL_FORMS": 0,
            "signoff_requirements-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    from checklist.models import Release

    release = Release.objects.get(version="v0.4.0")
    assert release.owner == pm and may_manage(pm, release)
