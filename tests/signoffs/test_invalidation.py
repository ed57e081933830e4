import datetime
from decimal import Decimal

import pytest

from checklist.models import Item
from signoffs.choices import SignatureState
from signoffs.models import Attestation
from signoffs.services import signature_give
from tests.factories import (
    ActionItemFactory,
    CriterionFactory,
    ItemFactory,
    RiskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed(review):
    release, roles = review
    requirement = roles["QA Lead"]
    signature = signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password="correct horse battery staple",
        meaning="approved",
    )
    return release, roles, signature


def _state(signature):
    signature.refresh_from_db()
    return signature.state


def _item(release):
    return Item.objects.filter(release=release).first()


def _set(obj, **values):
    for name, value in values.items():
        setattr(obj, name, value)
    obj.save()


MATERIAL_ITEM_CHANGES = [
    {"text": "p99 latency"},
    {"status": "complete"},
    {"target_value": Decimal("100")},
    {"actual_value": Decimal("120"), "actual_unit": "ms"},
    {"evidence_link": "https://ci.example.com/run/1"},
    {"evidence_note": "see report"},
    {"order": 99},
]


@pytest.mark.parametrize("change", MATERIAL_ITEM_CHANGES, ids=lambda c: ",".join(c))
def test_signature_stale_when_an_item_changes(signed, change):
    release, _, signature = signed
    _set(_item(release), **change)
    assert _state(signature) == SignatureState.STALE
    event = signature.events.last()
    assert event.from_state == "valid" and event.to_state == "stale"
    assert "changed" in event.reason


def test_signature_stale_when_an_item_is_added_or_removed(signed):
    release, _, signature = signed
    ItemFactory(section=release.sections.first())
    assert _state(signature) == SignatureState.STALE


def test_signature_stale_when_an_item_is_removed(signed):
    release, _, signature = signed
    _item(release).delete()
    assert _state(signature) == SignatureState.STALE
    assert "removed" in signature.events.last().reason


@pytest.mark.parametrize(
    "make",
    [
        lambda release: RiskFactory(release=release),
        lambda release: ActionItemFactory(release=release),
        lambda release: CriterionFactory(release=release),
        lambda release: _set(release, name="Release 2b"),
        lambda release: Attestation.objects.create(
            requirement=release.signoff_requirements.first(), text="new statement"
        ),
        lambda release: _set(release.signoff_requirements.first(), tier="executive"),
    ],
    ids=["risk", "action-item", "criterion", "release-name", "attestation", "requirement"],
)
def test_signature_stale_when_release_content_changes(signed, make):
    release, _, signature = signed
    make(release)
    assert _state(signature) == SignatureState.STALE


def test_signature_stale_when_criterion_links_change(review):
    release, roles = review
    criterion = CriterionFactory(release=release)
    requirement = roles["QA Lead"]
    signature = signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password="correct horse battery staple",
        meaning="approved",
    )
    criterion.items.add(_item(release))
    assert _state(signature) == SignatureState.STALE


@pytest.mark.parametrize(
    "change",
    [
        lambda release: _set(_item(release), owner=UserFactory()),
        lambda release: _set(_item(release), due_date=datetime.date(2026, 12, 1)),
        lambda release: _set(release, review_cadence="weekly"),
    ],
    ids=["item-owner", "item-due", "release-cadence"],
)
def test_signature_stays_valid_when_change_is_not_material(signed, change):
    release, _, signature = signed
    change(release)
    assert _state(signature) == SignatureState.VALID


def test_signature_stays_stale_after_a_revert_until_signed_again(signed):
    release, roles, signature = signed
    item = _item(release)
    original = item.text
    _set(item, text="changed")
    _set(item, text=original)
    assert _state(signature) == SignatureState.STALE
    requirement = roles["QA Lead"]
    again = signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password="correct horse battery staple",
        meaning="approved",
    )
    assert again.state == SignatureState.VALID
    assert _state(signature) == SignatureState.STALE


def test_stale_is_in_the_same_transaction_as_the_change(signed):
    """If the change rolls back, so does the staleness."""
    from django.db import transaction

    release, _, signature = signed
    with pytest.raises(RuntimeError), transaction.atomic():
        _set(_item(release), text="changed")
        raise RuntimeError
    assert _state(signature) == SignatureState.VALID


def _admin_client(client, release):
    from signoffs.services import release_access_refresh

    release_access_refresh(release=release, user=release.owner)
    client.force_login(release.owner)
    return client


def test_signature_stale_when_changed_through_the_bulk_action(client, signed):
    from django.urls import reverse

    release, _, signature = signed
    item = _item(release)
    response = _admin_client(client, release).post(
        reverse("admin:checklist_item_changelist"),
        {"action": "mark_blocked", "_selected_action": [item.pk]},
    )
    assert response.status_code == 302
    assert _state(signature) == SignatureState.STALE
    assert signature.events.last().actor == release.owner


def test_signature_stale_when_an_actual_is_saved_on_the_item_page(client, signed):
    from django.urls import reverse

    release, _, signature = signed
    item = _item(release)
    page = reverse("admin:checklist_item_change", args=[item.pk])
    client = _admin_client(client, release)
    form = client.get(page).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and v is not False}
    data.update({"actual_value": "450", "actual_unit": "ms", "actual_text": ""})
    data["change_reason"] = "Load test rerun"  # required while the release is in review
    response = client.post(page, data)
    assert response.status_code == 302, response.content.decode()[:500]
    item.refresh_from_db()
    assert item.target_met is False
    assert _state(signature) == SignatureState.STALE


def test_signature_stale_when_changed_through_the_admin_form(client, signed):
    from django.urls import reverse

    release, _, signature = signed
    page = reverse("admin:checklist_release_change", args=[release.pk])
    client = _admin_client(client, release)
    form = client.get(page).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "owner"}
    data.update(
        {
            "name": "Release 2 renamed",
            "sections-TOTAL_FORMS": 0,
            "sections-INITIAL_FORMS": 0,
            "signoff_requirements-TOTAL_FORMS": 0,
            "signoff_requirements-INITIAL_FORMS": 0,
        }
    )
    response = client.post(page, data)
    assert response.status_code == 302, response.content.decode()[:500]
    assert _state(signature) == SignatureState.STALE
