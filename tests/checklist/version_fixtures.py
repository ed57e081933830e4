"""Two product managers of one draft release holding one row of every audited kind, and the
change page as a browser posts it back, for the lost-update tests (checklist.admin_version)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from signoffs.choices import MemberRole
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
class Desk:
    pm: object  # owns the release
    pm2: object  # a second product manager of it
    rows: dict[str, Model]


@pytest.fixture(name="desk")
def desk_fixture() -> Desk:
    pm = UserFactory(username="pm", staff=True)
    pm2 = UserFactory(username="pm2", staff=True)
    release = ReleaseFactory(owner=pm, name="Release 2")
    release_access_refresh(release=release, user=pm)
    member_set(release=release, user=pm2, role=MemberRole.PRODUCT_MANAGER, by=pm)
    section = SectionFactory(release=release, title="Production readiness")
    requirement = SignoffRequirementFactory(release=release, role="QA Lead")
    rows = {
        "release": release,
        "section": section,
        "item": ItemFactory(section=section, text="Load test executed"),
        "risk": RiskFactory(release=release, title="Vendor API rate limit"),
        "action": ActionItemFactory(release=release, action="Rotate the API keys"),
        "requirement": requirement,
        "attestation": AttestationFactory(requirement=requirement, text="All tests pass"),
        "criterion": CriterionFactory(release=release, text="All P0 items complete"),
    }
    return Desk(pm=pm, pm2=pm2, rows=rows)


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def change_url(obj: Model) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def _values(form) -> dict:
    values = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        values[form.add_prefix(name)] = value
    return values


def page_data(response) -> dict:
    """The change page as a browser posts it back unchanged: the form (its signed version
    included) and every inline row with its management form."""
    assert response.status_code == 200
    data = _values(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data |= _values(formset.management_form)
        for form in formset.forms:
            data |= _values(form)
    return data


def inline_prefix(response, model: type[Model]) -> str:
    """The form prefix of the page's inline rows of ``model``."""
    (prefix,) = [
        inline.formset.prefix
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model is model
    ]
    return prefix
