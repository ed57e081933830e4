"""A decided release in the admin (checklist.admin_freeze): its pages open read-only under a
banner, every write path refuses with a message (never a 500, never "changed successfully"),
the release list and the home page show the decision, and a reopen makes it editable again."""

from __future__ import annotations

import pytest
from django.contrib.messages import ERROR, SUCCESS, get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from checklist.choices import ItemStatus, ReleaseStatus
from checklist.models import Item, Release
from risks.admin import RiskAdmin
from risks.models import Risk
from signoffs.choices import MemberRole
from signoffs.models import ReleaseMember
from signoffs.services import release_reopen
from tests.conftest import SEED_PATH
from tests.factories import UserFactory
from tests.signoffs.freeze_fixtures import decided_seed_fixture, frozen_fixture  # noqa: F401
from tests.signoffs.test_freeze import _state

pytestmark = pytest.mark.django_db


def _change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def _list_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


def _pm_client(client, frozen):
    client.force_login(frozen.pm)
    return client


# ---------------------------------------------------------------- read-only pages
@pytest.mark.parametrize("kind", ["item", "section", "risk", "action item", "criterion", "release"])
def test_change_page_opens_read_only_under_the_banner_when_release_decided(client, frozen, kind):
    response = _pm_client(client, frozen).get(_change_url(frozen.rows()[kind]))

    body = response.content.decode()
    assert response.status_code == 200
    assert frozen.banner in body
    assert 'name="_save"' not in body and "Delete</a>" not in body
    reopen = reverse("admin:checklist_release_reopen", args=[frozen.release.pk])
    assert body.count(f'href="{reopen}"') == 1  # one Reopen link: the banner's, or the release's


def test_change_page_has_no_banner_when_release_in_review(client, frozen):
    release_reopen(release=frozen.release, by=frozen.pm, reason="Pen test finished")

    body = _pm_client(client, frozen).get(_change_url(frozen.item)).content.decode()

    assert "reopen to change" not in body and 'name="_save"' in body


@pytest.mark.parametrize(
    "kind", ["item", "section", "risk", "action item", "criterion", "requirement", "release"]
)
def test_change_form_post_refused_and_row_unchanged_when_release_decided(
    admin_client, frozen, kind
):
    before = _state(frozen.release)

    response = admin_client.post(_change_url(frozen.rows()[kind]), {"text": "x", "title": "x"})

    assert response.status_code == 403
    assert _state(frozen.release) == before


def test_add_form_refused_on_the_form_when_the_release_is_decided(admin_client, frozen):
    response = admin_client.post(
        reverse("admin:risks_risk_add"),
        {
            "release": frozen.release.pk,
            "key": "R-900",
            "order": 0,
            "title": "Added after the decision",
            "impact": "HIGH",
            "probability": "LOW",
            "status": ItemStatus.NOT_STARTED,
        },
    )

    assert response.status_code == 200
    assert frozen.message in response.content.decode()
    assert not Risk.objects.filter(key="R-900").exists()


# ---------------------------------------------------------------- bulk actions
ACTIONS = [
    ("item", "mark_complete"),
    ("item", "mark_in_progress"),
    ("item", "mark_blocked"),
    ("item", "mark_at_risk"),
    ("item", "delete_selected"),
    ("section", "delete_selected"),
    ("risk", "delete_selected"),
    ("action item", "delete_selected"),
    ("criterion", "delete_selected"),
    ("attestation", "delete_selected"),
    ("requirement", "delete_selected"),
    ("release", "delete_selected"),
]


@pytest.mark.parametrize("kind, action", ACTIONS)
def test_bulk_action_refused_with_a_message_and_nothing_changed_when_release_decided(
    admin_client, frozen, kind, action
):
    row = frozen.rows()[kind]
    before = _state(frozen.release)

    response = admin_client.post(
        _list_url(type(row)),
        {"action": action, "_selected_action": [row.pk], "index": 0, "post": "yes"},
        follow=True,
    )

    assert response.status_code == 200
    assert (ERROR, f"{frozen.message} Nothing was changed.") in _messages(response)
    assert not [text for level, text in _messages(response) if level == SUCCESS]
    assert _state(frozen.release) == before


def test_bulk_action_runs_again_when_the_release_is_reopened(admin_client, frozen):
    release_reopen(release=frozen.release, by=frozen.pm, reason="Pen test finished")

    response = admin_client.post(
        _list_url(Item),
        {"action": "mark_complete", "_selected_action": [frozen.item.pk], "index": 0},
        follow=True,
    )

    assert (SUCCESS, "1 item(s) marked Complete.") in _messages(response)
    assert Item.objects.get(pk=frozen.item.pk).status == ItemStatus.COMPLETE


def test_list_editable_row_not_saved_when_its_release_is_decided(admin_client, frozen, monkeypatch):
    """No list is edited in place today; one that is must not save a decided release's row."""
    monkeypatch.setattr(RiskAdmin, "list_display", (*RiskAdmin.list_display, "status"))
    monkeypatch.setattr(RiskAdmin, "list_editable", ("status",))
    before = _state(frozen.release)

    response = admin_client.post(
        _list_url(Risk),
        {
            "form-TOTAL_FORMS": 1,
            "form-INITIAL_FORMS": 1,
            "form-0-id": frozen.risk.pk,
            "form-0-status": ItemStatus.COMPLETE,
            "_save": "Save",
        },
    )

    assert response.status_code == 200  # the list again, with the row's error
    assert frozen.message in response.content.decode()
    assert not [text for level, text in _messages(response) if level == SUCCESS]
    assert _state(frozen.release) == before


# ---------------------------------------------------------------- other pages
def test_import_page_replace_refused_and_release_unchanged_when_decided(admin_client, decided_seed):
    release, decision = decided_seed
    before = _state(release)

    response = admin_client.post(
        reverse("admin:checklist_release_import"),
        {
            "checklist": SimpleUploadedFile(SEED_PATH.name, SEED_PATH.read_bytes()),
            "replace": "on",
        },
    )

    assert response.status_code == 200
    errors = " ".join(response.context["form"].non_field_errors())
    assert f"{release.version} is decided: DEFER on" in errors and "by Chief Exec" in errors
    assert _state(release) == before


def test_roles_page_grants_an_auditor_but_refuses_a_stakeholder_when_release_decided(
    client, frozen
):
    url = reverse("admin:checklist_release_roles", args=[frozen.release.pk])
    auditor, stakeholder = UserFactory(staff=True), UserFactory(staff=True)
    client = _pm_client(client, frozen)
    # the page posts every field: the owner and the signers as they are
    owner = {
        "owner": frozen.pm.pk,
        **{f"signer_{r.pk}": r.assignee_id for r in frozen.roles.values()},
    }

    client.post(url, {**owner, "add_user": auditor.pk, "add_role": MemberRole.AUDITOR})
    response = client.post(
        url, {**owner, "add_user": stakeholder.pk, "add_role": MemberRole.STAKEHOLDER}
    )

    assert ReleaseMember.objects.filter(user=auditor, role=MemberRole.AUDITOR).exists()
    assert not ReleaseMember.objects.filter(user=stakeholder).exists()
    assert (ERROR, frozen.message) in _messages(response)


# ---------------------------------------------------------------- the decision shown
def test_release_list_shows_the_decision_when_decided_and_a_warning_when_reopened(client, frozen):
    client = _pm_client(client, frozen)
    body = client.get(_list_url(Release)).content.decode()
    assert (
        f'<strong class="decision decision-defer">DEFER</strong> on {frozen.date} by Demo CEO'
    ) in body

    release_reopen(release=frozen.release, by=frozen.pm, reason="Pen test finished")
    body = client.get(_list_url(Release)).content.decode()
    assert f"⚠ DEFER on {frozen.date} by Demo CEO — stale" in body


def test_home_page_shows_the_decision_instead_of_the_gate_when_decided(client, frozen):
    client = _pm_client(client, frozen)
    body = client.get(reverse("admin:index")).content.decode()
    assert f'<span class="decision decision-defer">DEFER</span> on {frozen.date}' in body
    assert "by Demo CEO" in body and "✘ Not yet" not in body

    release_reopen(release=frozen.release, by=frozen.pm, reason="Pen test finished")
    body = client.get(reverse("admin:index")).content.decode()
    assert f"⚠ DEFER on {frozen.date} by Demo CEO — stale" in body
    assert "✘ Not yet" in body  # in review again: the gate is back


def test_reopen_page_says_the_release_is_in_review_again_when_reopened(client, frozen):
    url = reverse("admin:checklist_release_reopen", args=[frozen.release.pk])

    response = _pm_client(client, frozen).post(url, {"reason": "Pen test finished"}, follow=True)

    assert (
        SUCCESS,
        "Reopened: the decision is stale and the release is in review again.",
    ) in _messages(response)
    assert Release.objects.get(pk=frozen.release.pk).status == ReleaseStatus.IN_REVIEW


@pytest.mark.parametrize("state", ["valid", "stale"])
def test_decision_column_escapes_the_signers_name_when_it_holds_markup(state):
    from django.utils import timezone

    from checklist.admin_freeze import decision_html
    from signoffs.freeze import Decision

    html = decision_html(Decision("defer", timezone.now(), "<script>alert(1)</script>", state))

    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
