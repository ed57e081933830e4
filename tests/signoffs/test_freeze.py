"""A decided release is frozen (signoffs.freeze): every write to a row of it refuses, through the
model (a shell), the services and the import, and is allowed again once it is reopened."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from checklist.choices import ItemStatus, ReleaseStatus
from checklist.models import Item, Release, Section
from checklist.services import item_set_status, items_set_status
from risks.models import ActionItem, Risk
from signoffs.choices import MemberRole, SignatureState
from signoffs.freeze import release_change_refusals
from signoffs.models import (
    Attestation,
    Criterion,
    DecisionRecord,
    ReleaseMember,
    ReleaseVisit,
    ReminderDispatch,
    Signature,
    SignoffRequirement,
)
from signoffs.services import (
    criterion_set_verdict,
    member_set,
    release_open_review,
    release_reopen,
    release_set_owner,
    requirement_assign,
    signature_revoke,
)
from tests.conftest import SEED_PATH
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
from tests.signoffs.freeze_fixtures import decided_seed_fixture, frozen_fixture, sign  # noqa: F401

pytestmark = pytest.mark.django_db


def _state(release: Release) -> dict:
    """Every row the release owns, as the database holds it."""
    links = Criterion.items.through, Criterion.risks.through, Criterion.requirements.through
    return {
        "release": list(Release.objects.filter(pk=release.pk).values()),
        **{
            model.__name__: list(model.objects.filter(release=release).order_by("pk").values())
            for model in (
                Section,
                Item,
                Risk,
                ActionItem,
                Criterion,
                SignoffRequirement,
                ReleaseMember,
            )
        },
        "attestations": list(
            Attestation.objects.filter(requirement__release=release).order_by("pk").values()
        ),
        "links": [
            sorted(link.objects.filter(criterion__release=release).values_list()) for link in links
        ],
        "signatures": list(Signature.objects.filter(release=release).values_list("pk", "state")),
    }


def _refused(write, message: str) -> None:
    """The write refuses with the decision named, inside its own transaction (a refused delete
    or link change would otherwise spoil the test's)."""
    with pytest.raises(ValidationError) as refused:
        with transaction.atomic():
            write()
    assert message in " ".join(refused.value.messages)


# ---------------------------------------------------------------- the question
def test_release_change_refusals_name_the_decision_when_decided(frozen):
    assert release_change_refusals(release=frozen.release) == [frozen.message]
    assert release_change_refusals(release=frozen.release.pk) == [frozen.message]


def test_release_change_refusals_are_empty_when_in_review(review):
    release, _ = review
    assert release_change_refusals(release=release) == []


# ---------------------------------------------------------------- the model (a shell)
EDITS = {
    "section": ("title", "Renamed after the decision"),
    "item": ("actual_text", "a new actual"),
    "risk": ("title", "Rewritten risk"),
    "action item": ("action", "Rewritten action"),
    "criterion": ("text", "Rewritten criterion"),
    "attestation": ("text", "Rewritten statement"),
    "requirement": ("role", "Renamed role"),
    "member": ("role", MemberRole.PRODUCT_MANAGER),
    "release": ("name", "Renamed release"),
}


@pytest.mark.parametrize("kind", EDITS)
def test_model_save_refused_and_row_unchanged_when_release_decided(frozen, kind):
    before = _state(frozen.release)
    row = frozen.rows()[kind]
    row = type(row).objects.get(pk=row.pk)  # as a shell would load it
    field, value = EDITS[kind]
    setattr(row, field, value)

    _refused(row.save, frozen.message)

    assert _state(frozen.release) == before


# The release itself and a signed requirement are kept by their signatures (PROTECT) anyway.
DELETES = [kind for kind in EDITS if kind != "release"]


@pytest.mark.parametrize("kind", DELETES)
def test_model_delete_refused_and_row_kept_when_release_decided(frozen, kind):
    before = _state(frozen.release)
    row = frozen.rows()[kind]
    if kind == "requirement":
        row = frozen.roles["Security Officer"]  # not signed: nothing else protects it

    _refused(type(row).objects.get(pk=row.pk).delete, frozen.message)

    assert _state(frozen.release) == before


NEW_ROWS = {
    "section": lambda f: SectionFactory(release=f.release, number="9"),
    "item": lambda f: ItemFactory(section=f.section),
    "risk": lambda f: RiskFactory(release=f.release, key="R-009"),
    "action item": lambda f: ActionItemFactory(release=f.release, key="A-009"),
    "criterion": lambda f: CriterionFactory(release=f.release),
    "requirement": lambda f: SignoffRequirementFactory(release=f.release, role="Late role"),
    "attestation": lambda f: AttestationFactory(requirement=f.roles["QA Lead"]),
    "member": lambda f: ReleaseMember.objects.create(
        release=f.release, user=UserFactory(), role=MemberRole.STAKEHOLDER
    ),
}


@pytest.mark.parametrize("kind", NEW_ROWS)
def test_new_row_refused_when_its_release_is_decided(frozen, kind):
    before = _state(frozen.release)

    _refused(lambda: NEW_ROWS[kind](frozen), frozen.message)

    assert _state(frozen.release) == before


def test_moving_a_row_into_a_decided_release_refused_when_saved(frozen):
    elsewhere = RiskFactory(key="R-777")
    elsewhere.release = frozen.release

    _refused(elsewhere.save, frozen.message)

    assert Risk.objects.get(pk=elsewhere.pk).release_id != frozen.release.pk


def test_moving_a_row_out_of_a_decided_release_refused_when_saved(frozen):
    risk = Risk.objects.get(pk=frozen.risk.pk)
    risk.release = ReleaseFactory()

    _refused(risk.save, frozen.message)

    assert Risk.objects.get(pk=risk.pk).release_id == frozen.release.pk


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.criterion.items.remove(f.item),
        lambda f: f.criterion.items.clear(),
        lambda f: f.criterion.risks.add(f.risk),
        lambda f: f.criterion.requirements.set([f.roles["QA Lead"]]),
        lambda f: f.risk.criteria.add(f.criterion),  # from the other side
        lambda f: f.item.criteria.clear(),
    ],
    ids=["remove", "clear", "add", "set", "reverse-add", "reverse-clear"],
)
def test_criterion_links_refused_and_kept_when_release_decided(frozen, change):
    before = _state(frozen.release)

    _refused(lambda: change(frozen), frozen.message)

    assert _state(frozen.release) == before


def test_release_save_refused_when_the_object_in_memory_predates_the_decision(review, password):
    release, roles = review
    loaded_before = Release.objects.get(pk=release.pk)  # status in review, in memory
    sign(roles["CEO"], password, "defer", "Not ready")

    loaded_before.name = "Renamed with a stale copy"
    with pytest.raises(ValidationError, match="is decided: DEFER on"):
        loaded_before.save()

    assert Release.objects.get(pk=release.pk).name == release.name


def test_release_status_back_to_review_refused_when_not_through_reopen(frozen):
    """The decided → in review move is the reopen's: with the decision still valid (nobody made
    it stale) or with another field changed, it is refused."""
    row = Release.objects.get(pk=frozen.release.pk)
    row.status = ReleaseStatus.IN_REVIEW
    _refused(row.save, frozen.message)

    row.name = "Sneaked in"
    _refused(row.save, frozen.message)

    assert Release.objects.get(pk=frozen.release.pk).status == ReleaseStatus.DECIDED


def test_release_status_back_to_review_refused_when_the_decision_went_stale_another_way(frozen):
    """A decision already stale (e.g. data from before the freeze) is no licence: only
    release_reopen, with its reason, moves the row back to review."""
    from signoffs.services import signatures_mark_stale

    with transaction.atomic():
        signatures_mark_stale(release_id=frozen.release.pk, reason="stale before the freeze")
    row = Release.objects.get(pk=frozen.release.pk)
    row.status = ReleaseStatus.IN_REVIEW
    _refused(row.save, frozen.message)
    assert Release.objects.get(pk=frozen.release.pk).status == ReleaseStatus.DECIDED


def test_new_signature_refused_when_release_decided(frozen):
    requirement = frozen.roles["Security Officer"]
    signature = Signature(
        requirement=requirement,
        release=frozen.release,
        signer=requirement.assignee,
        printed_name="Demo Security Officer",
        printed_role=requirement.role,
        meaning="approved",
        signed_at=timezone.now(),
        snapshot_sha256="0" * 64,
    )

    _refused(signature.save, frozen.message)

    assert not Signature.objects.filter(requirement=requirement).exists()


def test_decision_record_visit_and_dispatch_still_written_when_release_decided(frozen):
    record = DecisionRecord.objects.get(release=frozen.release)
    record.attempts += 1
    record.save()  # rendered and sealed after the decision
    ReleaseVisit.objects.create(user=frozen.pm, release=frozen.release, seen_at=timezone.now())
    ReminderDispatch.objects.create(
        recipient=frozen.pm, release=frozen.release, date=timezone.localdate()
    )

    assert DecisionRecord.objects.get(pk=record.pk).attempts == record.attempts
    assert ReleaseVisit.objects.filter(release=frozen.release).exists()
    assert ReminderDispatch.objects.filter(release=frozen.release).exists()


# ---------------------------------------------------------------- the services
def test_item_status_services_refused_and_item_unchanged_when_release_decided(frozen):
    before = _state(frozen.release)

    _refused(
        lambda: item_set_status(item=frozen.item, status=ItemStatus.COMPLETE, user=frozen.pm),
        frozen.message,
    )
    _refused(
        lambda: items_set_status(items=[frozen.item], status=ItemStatus.BLOCKED, user=frozen.pm),
        frozen.message,
    )

    assert _state(frozen.release) == before


SERVICES = {
    "requirement_assign": lambda f: requirement_assign(
        requirement=f.roles["QA Lead"], assignee=UserFactory(), by=f.pm
    ),
    "member_set grant": lambda f: member_set(
        release=f.release, user=UserFactory(), role=MemberRole.STAKEHOLDER, by=f.pm
    ),
    "member_set remove": lambda f: member_set(
        release=f.release, user=f.member.user, role=None, by=f.pm
    ),
    "member_set stakeholder to auditor": lambda f: member_set(
        release=f.release, user=f.member.user, role=MemberRole.AUDITOR, by=f.pm
    ),
    "release_set_owner": lambda f: release_set_owner(
        release=f.release, owner=UserFactory(staff=True), by=f.pm
    ),
    "criterion_set_verdict": lambda f: criterion_set_verdict(
        criterion=f.criterion, verdict=True, by=f.pm
    ),
    "signature_revoke": lambda f: signature_revoke(
        signature=f.approval, by=f.approval.signer, reason="Changed my mind"
    ),
}


@pytest.mark.parametrize("service", SERVICES)
def test_service_refused_with_the_decision_and_nothing_written_when_release_decided(
    frozen, service
):
    before = _state(frozen.release)

    _refused(lambda: SERVICES[service](frozen), frozen.message)

    assert _state(frozen.release) == before


def test_open_review_refused_when_release_decided(frozen):
    with pytest.raises(ValidationError, match="A decided release cannot be opened for review"):
        release_open_review(release=frozen.release, by=frozen.pm)


def test_auditor_access_granted_and_removed_when_release_decided(frozen):
    """The deliberate exception: read access for an auditor, who arrives after the decision."""
    auditor = UserFactory(username="late.auditor", staff=True)

    member = member_set(release=frozen.release, user=auditor, role=MemberRole.AUDITOR, by=frozen.pm)
    assert member.role == MemberRole.AUDITOR
    member_set(release=frozen.release, user=auditor, role=None, by=frozen.pm)

    assert not ReleaseMember.objects.filter(release=frozen.release, user=auditor).exists()


def test_import_replace_command_refused_and_release_unchanged_when_decided(decided_seed):
    release, decision = decided_seed
    before = _state(release)
    date = timezone.localtime(decision.signed_at).date().isoformat()

    with pytest.raises(CommandError) as refused:
        call_command("import_checklist", str(SEED_PATH), "--replace", stdout=StringIO())

    assert (
        f"cannot replace the checklist: {release.version} is decided: DEFER on {date} by "
        "Chief Exec; reopen it to change." in str(refused.value)
    )
    assert _state(release) == before


# ---------------------------------------------------------------- reopening
def test_reopen_refused_and_release_still_frozen_when_no_reason(frozen):
    with pytest.raises(ValidationError, match="reason is required"):
        release_reopen(release=frozen.release, by=frozen.pm, reason="  ")

    assert Release.objects.get(pk=frozen.release.pk).status == ReleaseStatus.DECIDED
    assert release_change_refusals(release=frozen.release) == [frozen.message]


def test_reopen_lands_in_review_with_the_decision_stale_and_edits_allowed_again(frozen):
    release_reopen(release=frozen.release, by=frozen.pm, reason="Pen test finished")

    release = Release.objects.get(pk=frozen.release.pk)
    decision = Signature.objects.get(pk=frozen.decision.pk)
    assert release.status == ReleaseStatus.IN_REVIEW
    assert release.history.first().history_change_reason == "Reopened: Pen test finished"
    assert decision.state == SignatureState.STALE
    assert decision.events.last().reason == "Release reopened: Pen test finished"
    assert release_change_refusals(release=release) == []

    item_set_status(item=frozen.item, status=ItemStatus.COMPLETE, user=frozen.pm)
    assert Item.objects.get(pk=frozen.item.pk).status == ItemStatus.COMPLETE
    # a change after the reopen is material as usual: the approval given before goes stale
    assert Signature.objects.get(pk=frozen.approval.pk).state == SignatureState.STALE


# ---------------------------------------------------------------- a write racing the decision
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_write_waiting_on_the_decision_refuses_when_the_decision_commits():
    """The freeze reads the status under the release's row lock: a write that starts while the
    decision is being recorded waits for it, then sees the release decided (without the lock it
    would read "in review" and slip in after the decision)."""
    pm = UserFactory(username="pm")
    release = ReleaseFactory(status=ReleaseStatus.IN_REVIEW, owner=pm)
    item = ItemFactory(section=SectionFactory(release=release), text="as decided")
    locked, done = threading.Event(), threading.Event()
    outcome: list[str] = []

    def write() -> None:
        locked.wait(10)
        try:
            with transaction.atomic():
                row = Item.objects.get(pk=item.pk)
                row.text = "changed during the decision"
                row.save()
            outcome.append("written")
        except ValidationError as error:
            outcome.append(" ".join(error.messages))
        finally:
            connection.close()
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    with transaction.atomic():
        deciding = Release.objects.select_for_update().get(pk=release.pk)
        locked.set()
        assert not done.wait(1)  # the write waits for the decision's lock on the release
        deciding.status = ReleaseStatus.DECIDED
        deciding.save()
    writer.join(10)

    assert outcome == [f"{release.version} is decided; reopen it to change."]
    assert Item.objects.get(pk=item.pk).text == "as decided"


def test_fixture_loading_restores_rows_and_links_of_a_decided_release_when_raw(frozen):
    """loaddata (moving a portal to another database) restores rows as they were: raw saves and
    the links it sets on the rows it restored are not refused; nothing else gets through."""
    from django.core import serializers

    dumped = serializers.serialize("json", [frozen.criterion])
    restored = dumped.replace(f'"pk": {frozen.criterion.pk}', '"pk": 99999')

    for row in serializers.deserialize("json", restored):
        row.save()

    assert list(Criterion.objects.get(pk=99999).items.all()) == [frozen.item]
    _refused(lambda: Criterion.objects.get(pk=99999).items.clear(), frozen.message)


def test_signing_refused_naming_the_decision_when_release_decided(frozen, password):
    requirement = frozen.roles["Security Officer"]

    _refused(lambda: sign(requirement, password, "approved", "Late"), frozen.message)

    assert not Signature.objects.filter(requirement=requirement).exists()
