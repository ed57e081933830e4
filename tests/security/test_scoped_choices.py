"""Issue #14, Access 2: every filter, autocomplete and choice list offers only what the user may
see. Dana manages Delta and is a stakeholder on Charlie; Hotel (Hugo's) is not hers, and no page
or answer she gets may name any of it."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from checklist.models import Item, Section
from risks.models import Risk
from signoffs.models import Attestation, Criterion, SignoffRequirement
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# Every list whose filters name releases, sections or owners (a "By release" filter on each).
LISTS = (
    "checklist_section",
    "checklist_item",
    "risks_risk",
    "risks_actionitem",
    "signoffs_signoffrequirement",
    "signoffs_attestation",
    "signoffs_criterion",
    "signoffs_signature",
    "signoffs_releasemember",
    "signoffs_decisionrecord",
    "signoffs_reminderdispatch",
)
# Every autocomplete a form of ours uses: (app, model, field) → the model it offers.
AUTOCOMPLETES = (
    ("checklist", "section", "release", "release"),
    ("checklist", "section", "parent", "section"),
    ("checklist", "item", "release", "release"),
    ("checklist", "item", "section", "section"),
    ("checklist", "item", "parent", "item"),
    ("risks", "risk", "release", "release"),
    ("risks", "actionitem", "release", "release"),
    ("signoffs", "signoffrequirement", "release", "release"),
    ("signoffs", "attestation", "requirement", "requirement"),
    ("signoffs", "criterion", "release", "release"),
    ("signoffs", "criterion", "items", "item"),
    ("signoffs", "criterion", "risks", "risk"),
    ("signoffs", "criterion", "requirements", "requirement"),
)


def _rows_of(rows, kind: str) -> list:
    return {
        "release": [rows.release],
        "section": [rows.section],
        "item": rows.items,
        "risk": [rows.risk],
        "requirement": [rows.requirement],
    }[kind]


@pytest.mark.parametrize("name", LISTS)
def test_list_filters_name_only_visible_releases_when_a_stakeholder_opens_a_list(
    client, cross, name
):
    client.force_login(cross.dana)

    response = client.get(reverse(f"admin:{name}_changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Hotel" not in html and "hotel" not in html
    # the "By release" filter is there, naming the two releases she may see
    assert f">{cross.delta.release}<" in html and f">{cross.charlie.release}<" in html


def test_attestation_release_filter_lists_only_visible_releases_when_the_list_is_opened(
    client, cross
):
    client.force_login(cross.dana)

    response = client.get(reverse("admin:signoffs_attestation_changelist"))

    spec = next(spec for spec in response.context["cl"].filter_specs if spec.title == "release")
    assert {label for _, label in spec.lookup_choices} == {
        str(cross.delta.release),
        str(cross.charlie.release),
    }


@pytest.mark.parametrize(("app", "model", "field", "offers"), AUTOCOMPLETES)
def test_autocomplete_offers_only_rows_of_managed_releases_when_a_form_asks(
    client, cross, app, model, field, offers
):
    client.force_login(cross.dana)

    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": app, "model_name": model, "field_name": field, "term": ""},
    )

    assert response.status_code == 200
    offered = {int(result["id"]) for result in response.json()["results"]}
    delta = {row.pk for row in _rows_of(cross.delta, offers)}
    assert offered == delta  # not Charlie's (she only sees it), never Hotel's


def test_autocomplete_finds_nothing_of_other_releases_when_searched_by_name(client, cross):
    client.force_login(cross.dana)

    for term in ("Hotel", "Charlie"):
        response = client.get(
            reverse("admin:autocomplete"),
            {"app_label": "checklist", "model_name": "item", "field_name": "section", "term": term},
        )
        assert response.json()["results"] == []


def test_user_autocomplete_is_refused_when_the_user_may_not_view_accounts(client, cross):
    client.force_login(cross.dana)

    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "checklist", "model_name": "item", "field_name": "owner", "term": "hotel"},
    )

    assert response.status_code == 403
    assert b"hotel" not in response.content


@pytest.mark.parametrize(
    ("model", "field", "offers"),
    [
        (Section, "release", "release"),
        (Item, "release", "release"),
        (Item, "section", "section"),
        (Item, "parent", "item"),
        (Risk, "release", "release"),
        (SignoffRequirement, "release", "release"),
        (Attestation, "requirement", "requirement"),
        (Criterion, "release", "release"),
        (Criterion, "items", "item"),
        (Criterion, "risks", "risk"),
        (Criterion, "requirements", "requirement"),
    ],
)
def test_form_choices_accept_only_rows_of_managed_releases_when_a_manager_edits(
    cross, model, field, offers
):
    request = RequestFactory().get("/admin/")
    request.user = cross.dana
    form = admin.site._registry[model].get_form(request)

    choices = set(form.base_fields[field].queryset.values_list("pk", flat=True))

    assert choices == {row.pk for row in _rows_of(cross.delta, offers)}


def test_roles_page_offers_only_the_release_people_when_a_stakeholder_views_it(client, cross):
    outsider = UserFactory(username="outsider-olga", staff=True)
    url = reverse("admin:checklist_release_roles", args=[cross.charlie.release.pk])

    client.force_login(cross.dana)
    seen = client.get(url).content.decode()
    client.force_login(cross.carol)
    managed = client.get(url).content.decode()

    assert outsider.username not in seen and "hotel-hugo" not in seen
    assert "carol" in seen and "dana" in seen  # the people the page is about
    assert outsider.username in managed  # a manager may give anyone a role
