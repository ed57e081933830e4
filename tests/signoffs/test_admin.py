import pytest
from django.contrib.messages import ERROR, get_messages
from django.urls import reverse
from django.utils import timezone

from checklist.admin_version import VERSION_FIELD, version_token
from checklist.permissions import can_view_release
from signoffs.choices import SignatureMeaning, SignatureState, Tier
from signoffs.models import Attestation, Signature, SignatureEvent
from tests.factories import (
    AttestationFactory,
    CriterionFactory,
    ItemFactory,
    ReleaseFactory,
    RiskFactory,
    SectionFactory,
    SignoffRequirementFactory,
    UserFactory,
)


def _latest(obj):
    return obj.history.order_by("-history_id").first()


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


def _signature(requirement, signer) -> Signature:
    signature = Signature.objects.create(
        requirement=requirement,
        release=requirement.release,
        signer=signer,
        printed_name="Dana Signer",
        printed_role=requirement.role,
        meaning=SignatureMeaning.APPROVED,
        signed_at=timezone.now(),
        snapshot_sha256="ab" * 32,
    )
    SignatureEvent.objects.create(
        signature=signature,
        to_state=SignatureState.VALID,
        actor=signer,
        at=signature.signed_at,
        reason="QA Lead signed: Approved",
    )
    return signature


# ---------------------------------------------------------------- requirements
@pytest.mark.django_db
def test_requirement_page_adds_attestations_inline_with_history_when_saved(
    admin_client, admin_user
):
    requirement = SignoffRequirementFactory(role="QA Lead")
    url = reverse("admin:signoffs_signoffrequirement_change", args=[requirement.pk])
    data = {
        "release": requirement.release_id,
        "role": "QA Lead",
        "tier": Tier.TECHNICAL,
        "order": 1,
        "attestations-TOTAL_FORMS": "1",
        "attestations-INITIAL_FORMS": "0",
        "attestations-0-order": "1",
        "attestations-0-text": "All tests passing",
        VERSION_FIELD: version_token(requirement),
    }

    response = admin_client.post(url, data)

    assert response.status_code == 302
    attestation = Attestation.objects.get(requirement=requirement)
    assert attestation.text == "All tests passing"
    assert _latest(attestation).history_user == admin_user


@pytest.mark.django_db
def test_requirement_page_ignores_a_posted_signer_when_saved_through_the_form(admin_client):
    requirement = SignoffRequirementFactory(role="QA Lead")
    intruder = UserFactory()
    url = reverse("admin:signoffs_signoffrequirement_change", args=[requirement.pk])
    data = {
        "release": requirement.release_id,
        "role": "QA Lead",
        "tier": Tier.TECHNICAL,
        "order": 1,
        "assignee": intruder.pk,
        "attestations-TOTAL_FORMS": "0",
        "attestations-INITIAL_FORMS": "0",
        VERSION_FIELD: version_token(requirement),
    }

    assert admin_client.post(url, data).status_code == 302

    requirement.refresh_from_db()
    assert requirement.assignee is None


@pytest.mark.django_db
def test_requirement_assign_view_assigns_and_grants_access_when_posted(admin_client, admin_user):
    requirement = SignoffRequirementFactory(role="QA Lead")
    signer = UserFactory(username="qa.lead", staff=True)
    url = reverse("admin:signoffs_signoffrequirement_assign", args=[requirement.pk])
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(url, {"assignee": signer.pk})

    assert response.status_code == 302
    requirement.refresh_from_db()
    assert requirement.assignee == signer
    assert can_view_release(signer, requirement.release)
    record = _latest(requirement)
    assert record.history_user == admin_user
    assert record.history_change_reason == "Role QA Lead assigned to qa.lead"


@pytest.mark.django_db
def test_requirement_assign_view_shows_the_refusal_when_the_signer_holds_another_role(
    admin_client,
):
    release = ReleaseFactory()
    signer = UserFactory(username="busy")
    SignoffRequirementFactory(release=release, role="QA Lead", assignee=signer)
    requirement = SignoffRequirementFactory(release=release, role="CTO")
    url = reverse("admin:signoffs_signoffrequirement_assign", args=[requirement.pk])

    response = admin_client.post(url, {"assignee": signer.pk})

    assert response.status_code == 200
    requirement.refresh_from_db()
    assert requirement.assignee is None
    errors = [text for level, text in _messages(response) if level == ERROR]
    assert errors and "already signs as QA Lead" in errors[0]


@pytest.mark.django_db
def test_requirement_assign_view_refuses_a_user_who_cannot_change_the_release_when_posted(
    client,
):
    requirement = SignoffRequirementFactory()
    outsider = UserFactory(staff=True)
    client.force_login(outsider)
    url = reverse("admin:signoffs_signoffrequirement_assign", args=[requirement.pk])

    response = client.post(url, {"assignee": outsider.pk})

    # The same answer as for a requirement that does not exist: nothing confirms it does.
    missing = reverse("admin:signoffs_signoffrequirement_assign", args=[requirement.pk + 999])
    assert response.status_code == 404
    assert client.post(missing, {"assignee": outsider.pk}).status_code == 404
    requirement.refresh_from_db()
    assert requirement.assignee is None


# ---------------------------------------------------------------- criteria
def _criterion_data(criterion, **links):
    data = {
        "release": criterion.release_id,
        "kind": criterion.kind,
        "group": criterion.group,
        "order": criterion.order,
        "text": criterion.text,
        VERSION_FIELD: version_token(criterion),
    }
    data.update(links)
    return data


@pytest.mark.django_db
def test_criterion_form_links_items_and_risks_with_history_when_in_the_same_release(
    admin_client, admin_user
):
    criterion = CriterionFactory(text="All P0 items complete")
    section = SectionFactory(release=criterion.release)
    item = ItemFactory(section=section, text="Load test executed")
    risk = RiskFactory(release=criterion.release)
    url = reverse("admin:signoffs_criterion_change", args=[criterion.pk])

    response = admin_client.post(url, _criterion_data(criterion, items=[item.pk], risks=[risk.pk]))

    assert response.status_code == 302
    assert list(criterion.items.all()) == [item]
    assert list(criterion.risks.all()) == [risk]
    assert _latest(criterion).history_user == admin_user
    history = reverse("admin:signoffs_criterion_history", args=[criterion.pk])
    html = admin_client.get(history).content.decode()
    assert "Load test executed" in html


@pytest.mark.django_db
def test_criterion_form_refuses_an_item_of_another_release_when_linked(admin_client):
    criterion = CriterionFactory()
    stranger = ItemFactory(text="Other release item")
    url = reverse("admin:signoffs_criterion_change", args=[criterion.pk])

    response = admin_client.post(url, _criterion_data(criterion, items=[stranger.pk]))

    assert response.status_code == 200
    assert "Not in" in response.context["adminform"].form.errors["items"][0]
    assert not criterion.items.exists()


@pytest.mark.django_db
def test_criterion_form_refuses_a_manual_verdict_when_something_is_linked(admin_client):
    criterion = CriterionFactory()
    risk = RiskFactory(release=criterion.release)
    url = reverse("admin:signoffs_criterion_change", args=[criterion.pk])

    response = admin_client.post(
        url, _criterion_data(criterion, risks=[risk.pk], manual_verdict="true")
    )

    assert response.status_code == 200
    assert "manual_verdict" in response.context["adminform"].form.errors
    criterion.refresh_from_db()
    assert criterion.manual_verdict is None


@pytest.mark.django_db
def test_criterion_changelist_counts_linked_things_when_listed(admin_client):
    criterion = CriterionFactory(text="Security sign-off")
    criterion.requirements.add(SignoffRequirementFactory(release=criterion.release))
    criterion.risks.add(*RiskFactory.create_batch(2, release=criterion.release))
    CriterionFactory(text="Manual one")

    html = admin_client.get(reverse("admin:signoffs_criterion_changelist")).content.decode()

    assert "2 risks, 1 sign-off" in html
    assert "— (manual verdict)" in html


# ---------------------------------------------------------------- the record (read-only)
@pytest.mark.django_db
def test_signature_admin_shows_printed_name_meaning_and_events_when_viewed(admin_client):
    requirement = SignoffRequirementFactory(role="QA Lead")
    signature = _signature(requirement, UserFactory())

    listing = admin_client.get(reverse("admin:signoffs_signature_changelist")).content.decode()
    page = admin_client.get(reverse("admin:signoffs_signature_change", args=[signature.pk]))

    assert "Dana Signer" in listing and "Approved" in listing and "abababababababab…" in listing
    html = page.content.decode()
    assert page.status_code == 200
    assert "QA Lead signed: Approved" in html  # the state change, below the signature
    assert 'name="_save"' not in html  # view only


@pytest.mark.django_db
def test_signature_admin_refuses_add_change_and_delete_when_asked(admin_client):
    signature = _signature(SignoffRequirementFactory(), UserFactory())
    change = reverse("admin:signoffs_signature_change", args=[signature.pk])

    assert admin_client.get(reverse("admin:signoffs_signature_add")).status_code == 403
    assert admin_client.post(change, {"comment": "edited"}).status_code == 403
    delete = reverse("admin:signoffs_signature_delete", args=[signature.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    signature.refresh_from_db()
    assert signature.comment == ""


@pytest.mark.django_db
def test_release_member_admin_lists_access_without_editing_when_viewed(admin_client):
    from signoffs.models import ReleaseMember

    member = ReleaseMember.objects.create(
        release=ReleaseFactory(), user=UserFactory(username="auditor1"), role="auditor"
    )

    listing = admin_client.get(reverse("admin:signoffs_releasemember_changelist"))

    assert "auditor1" in listing.content.decode()
    assert admin_client.get(reverse("admin:signoffs_releasemember_add")).status_code == 403
    change = reverse("admin:signoffs_releasemember_change", args=[member.pk])
    assert 'name="_save"' not in admin_client.get(change).content.decode()


@pytest.mark.django_db
def test_attestation_history_shows_text_change_when_edited(admin_client, admin_user):
    attestation = AttestationFactory(text="All tests passing")
    attestation.text = "All tests passing on staging"
    attestation._history_user = admin_user
    attestation.save()

    url = reverse("admin:signoffs_attestation_history", args=[attestation.pk])
    html = " ".join(admin_client.get(url).content.decode().split())

    assert "All tests passing &nbsp;&rarr;&nbsp;&nbsp;All tests passing on staging" in html
