"""Issue #14 point 13: a 10,000-character item title was accepted. Every free-text field has a
maximum, far above the longest value of the shipped checklists, enforced by the model (so
full_clean, the importer and the services refuse), by the admin's forms (max_length), and by
the services that take typed text no model field checks (checklist.validators)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.urls import reverse

from checklist.choices import ReleaseStatus
from checklist.importers import ChecklistImportError, parse_checklist
from checklist.models import Item, Release
from checklist.validators import (
    COMMENT,
    EVENT_REASON,
    ITEM_TEXT,
    NOTE,
    REASON,
    RISK_TITLE,
    STATEMENT,
)
from signoffs.choices import SignatureState
from signoffs.documents import release_import
from signoffs.models import Signature, SignatureEvent
from signoffs.services import (
    release_access_refresh,
    release_reopen,
    signature_give,
    signature_revoke,
)
from tests.factories import (
    ActionItemFactory,
    AttestationFactory,
    CriterionFactory,
    ItemFactory,
    ReleaseFactory,
    RiskFactory,
    SectionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

FIELDS = (
    (SectionFactory, "note", NOTE),
    (ItemFactory, "text", ITEM_TEXT),
    (ItemFactory, "note", NOTE),
    (ItemFactory, "evidence_note", NOTE),
    (RiskFactory, "title", RISK_TITLE),
    (RiskFactory, "mitigation", NOTE),
    (RiskFactory, "note", NOTE),
    (ActionItemFactory, "action", STATEMENT),
    (ActionItemFactory, "note", NOTE),
    (CriterionFactory, "text", STATEMENT),
    (AttestationFactory, "text", STATEMENT),
)


# ---------------------------------------------------------------- the model
@pytest.mark.parametrize(("factory", "name", "limit"), FIELDS)
def test_full_clean_refuses_a_text_one_character_over_its_limit_when_validated(
    factory, name, limit
):
    obj = factory()
    setattr(obj, name, "x" * limit)
    obj.full_clean()  # the limit itself is accepted
    setattr(obj, name, "x" * (limit + 1))
    with pytest.raises(ValidationError) as refused:
        obj.full_clean()
    assert list(refused.value.message_dict) == [name]
    assert obj._meta.get_field(name).formfield().max_length == limit  # and the form's


@pytest.mark.parametrize(
    ("model", "name", "limit"),
    [(Signature, "comment", COMMENT), (SignatureEvent, "reason", EVENT_REASON)],
)
def test_signature_texts_refuse_a_value_over_their_limit_when_validated(model, name, limit):
    field = model._meta.get_field(name)
    field.clean("x" * limit, None)
    with pytest.raises(ValidationError):
        field.clean("x" * (limit + 1), None)


def test_text_limits_stay_far_above_the_longest_value_when_the_shipped_checklists_are_read():
    """At least ten times the longest value of the seed and the test checklists."""
    longest: dict[str, int] = {}

    def seen(name: str, *values: str) -> None:
        longest[name] = max([longest.get(name, 0), *map(len, values)])

    files = [ROOT / "fixtures" / "seed_checklist.md", *(ROOT / "tests/data").glob("*.md")]
    for path in files:
        parsed = parse_checklist(path.read_bytes(), source_name=path.name)
        for _, _, item, _ in parsed.iter_items():
            seen("item", item.text)
            seen("note", item.note)
        for risk in parsed.risks:
            seen("risk", risk.title)
            seen("note", risk.mitigation, risk.note)
        for action in parsed.action_items:
            seen("statement", action.action)
            seen("note", action.note)
        seen("statement", *(c.text for c in parsed.criteria))
        seen("statement", *(a.text for s in parsed.signoffs for a in s.attestations))
    limits = {"item": ITEM_TEXT, "risk": RISK_TITLE, "statement": STATEMENT, "note": NOTE}
    assert longest["item"] >= 80  # the seed's longest item really was read
    for name, limit in limits.items():
        assert longest[name] * 10 <= limit, (name, longest[name], limit)


# ---------------------------------------------------------------- the importer
HEADER = "**Project:** Demo\n**Release:** Demo (v9.9.9)\n\n## Section 1: Work\n\n- [ ] a\n\n"
LONG = "x" * 10_000
IMPORTS = {
    "item text": (f"- [ ] {LONG}\n", "item text", ITEM_TEXT),
    "risk title": (
        f"| ID | Risk | Impact | Probability |\n|---|---|---|---|\n| R-1 | {LONG} | HIGH | LOW |\n",
        "risk title",
        RISK_TITLE,
    ),
    "risk mitigation": (
        "| ID | Risk | Impact | Probability | Mitigation |\n|---|---|---|---|---|\n"
        f"| R-1 | Risk | HIGH | LOW | {LONG} |\n",
        "risk mitigation",
        NOTE,
    ),
    "action": (
        f"| ID | Action | Status |\n|---|---|---|\n| A-1 | {LONG} | Complete |\n",
        "action item action",
        STATEMENT,
    ),
    "criterion": (f"## GO/NO-GO\n\n### GO Criteria\n\n- [ ] {LONG}\n", "criterion text", STATEMENT),
    "attestation": (
        "## Section 8: Sign\n\n### 8.1 Technical Sign-offs\n\n- [ ] **QA Lead Approval**\n"
        f"  - [ ] {LONG}\n  - Signature: ___\n",
        "attestation text",
        STATEMENT,
    ),
}


@pytest.mark.parametrize("case", IMPORTS)
def test_release_import_refuses_a_long_value_naming_file_line_field_and_limit_when_over(case):
    body, field, limit = IMPORTS[case]
    text = HEADER + body
    line = next(n for n, row in enumerate(text.split("\n"), 1) if LONG in row)
    with pytest.raises(ChecklistImportError) as refused:
        release_import(text=text, source_name="demo.md")
    assert str(refused.value) == (
        f"demo.md:{line}: {field}: at most {limit:,} characters (it has {len(LONG):,})"
    )
    assert not Release.objects.exists() and not Item.objects.exists()


# ---------------------------------------------------------------- the admin's forms
def _form_data(response) -> dict:
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is not None and value is not False:
            data[name] = value
    return data


@pytest.mark.parametrize(
    ("factory", "admin_name", "name", "limit"),
    [
        (ItemFactory, "checklist_item", "text", ITEM_TEXT),
        (ItemFactory, "checklist_item", "evidence_note", NOTE),
        (RiskFactory, "risks_risk", "title", RISK_TITLE),
        (ActionItemFactory, "risks_actionitem", "action", STATEMENT),
        (CriterionFactory, "signoffs_criterion", "text", STATEMENT),
    ],
)
def test_change_form_refuses_a_long_text_and_saves_nothing_when_over_the_limit(
    admin_client, factory, admin_name, name, limit
):
    obj = factory()
    before = getattr(obj, name)
    history = obj.history.count()
    url = reverse(f"admin:{admin_name}_change", args=[obj.pk])
    page = admin_client.get(url)
    assert f'maxlength="{limit}"' in page.content.decode()  # the browser stops at the limit
    data = _form_data(page)
    data[name] = "x" * (limit + 1)
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert f"at most {limit} characters" in response.context["adminform"].form.errors[name][0]
    obj.refresh_from_db()
    assert getattr(obj, name) == before
    assert obj.history.count() == history


def test_reopen_page_refuses_a_reason_over_the_limit_and_keeps_the_release_decided(admin_client):
    release = ReleaseFactory(status=ReleaseStatus.DECIDED)
    url = reverse("admin:checklist_release_reopen", args=[release.pk])
    assert f'maxlength="{REASON}"' in admin_client.get(url).content.decode()
    response = admin_client.post(url, {"reason": "x" * (REASON + 1)})
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED


# ---------------------------------------------------------------- the services
def _sign(requirement, password, *, comment: str = "Checked"):
    return signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password=password,
        meaning="approved",
        comment=comment,
        request=RequestFactory().post("/"),
    )


def test_signature_give_refuses_a_comment_over_the_limit_and_signs_nothing(review, password):
    _, roles = review
    with pytest.raises(ValidationError) as refused:
        _sign(roles["QA Lead"], password, comment="x" * (COMMENT + 1))
    assert f"The comment is at most {COMMENT:,} characters" in " ".join(refused.value.messages)
    assert not Signature.objects.exists()


def test_signature_revoke_refuses_a_reason_over_the_limit_and_keeps_the_signature(review, password):
    _, roles = review
    signature = _sign(roles["QA Lead"], password)
    with pytest.raises(ValidationError) as refused:
        signature_revoke(signature=signature, by=signature.signer, reason="x" * (REASON + 1))
    assert f"The reason is at most {REASON:,} characters" in " ".join(refused.value.messages)
    signature.refresh_from_db()
    assert signature.state == SignatureState.VALID
    assert signature.events.count() == 1


def test_release_reopen_refuses_a_reason_over_the_limit_and_keeps_the_release_decided():
    owner = UserFactory(staff=True)
    release = ReleaseFactory(status=ReleaseStatus.DECIDED, owner=owner)
    release_access_refresh(release=release, user=owner)
    with pytest.raises(ValidationError) as refused:
        release_reopen(release=release, by=owner, reason="x" * (REASON + 1))
    assert f"The reason is at most {REASON:,} characters" in " ".join(refused.value.messages)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED
