import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checklist.choices import ItemStatus, ReleaseStatus
from signoffs.changes import FieldChange, release_changes_since, review_opened_at
from signoffs.services import release_open_review
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

pytestmark = pytest.mark.django_db


def _edit(obj, user=None, reason=None, **values):
    for name, value in values.items():
        setattr(obj, name, value)
    obj._history_user = user
    if reason:
        obj._change_reason = reason
    obj.save()
    return obj


def _later() -> datetime.datetime:
    return timezone.now()


# ---------------------------------------------------------------- release_changes_since
def test_release_changes_since_lists_an_item_change_with_who_and_old_new_when_edited():
    editor = UserFactory(username="tl", first_name="Tara", last_name="Lead")
    item = ItemFactory(text="p95 latency")
    since = _later()

    _edit(item, editor, status=ItemStatus.COMPLETE, actual_value=Decimal("180.5"))

    [change] = release_changes_since(item.release, since)
    assert (change.model, change.label, change.kind) == ("item", "p95 latency", "changed")
    assert change.who == "Tara Lead (tl)"
    assert FieldChange("Status", "Not started", "Complete") in change.fields
    assert FieldChange("Actual value", "—", "180.5") in change.fields


def test_release_changes_since_leaves_out_what_happened_before_when_given_a_time():
    item = ItemFactory(text="before")
    _edit(item, text="still before")
    since = _later()
    _edit(item, text="after")

    changes = release_changes_since(item.release, since)

    assert [c.fields for c in changes] == [(FieldChange("Text", "still before", "after"),)]


def test_release_changes_since_lists_everything_newest_first_when_since_is_none():
    release = ReleaseFactory()
    section = SectionFactory(release=release, title="Performance")
    item = ItemFactory(section=section, text="Load test")
    _edit(item, status=ItemStatus.BLOCKED)

    changes = release_changes_since(release, None)

    assert [(c.model, c.kind) for c in changes] == [
        ("item", "changed"),
        ("item", "added"),
        ("section", "added"),
        ("release", "added"),
    ]
    assert changes[-1].who == "system"


def test_release_changes_since_names_removed_rows_when_deleted():
    risk = RiskFactory(key="R-007", title="Vendor lock-in")
    since = _later()
    risk.delete()

    [change] = release_changes_since(risk.release, since)

    assert (change.model, change.label, change.kind) == ("risk", "R-007: Vendor lock-in", "removed")


def test_release_changes_since_shows_related_objects_by_name_when_a_link_changes():
    owner = UserFactory(username="ops", first_name="Omar", last_name="Ops")
    item = ItemFactory()
    other = SectionFactory(release=item.release, number="9", title="Ops")
    since = _later()

    _edit(item, owner=owner, section=other)

    fields = release_changes_since(item.release, since)[0].fields
    assert FieldChange("Owner", "—", "Omar Ops") in fields
    assert any(f.field == "Section" and f.new == "9 Ops" for f in fields)


def test_release_changes_since_includes_attestations_and_requirements_when_edited():
    requirement = SignoffRequirementFactory(role="QA Lead")
    attestation = AttestationFactory(requirement=requirement, text="All tests passing")
    since = _later()

    _edit(attestation, text="All tests passing on staging")
    _edit(requirement, tier="operations")

    changes = release_changes_since(requirement.release, since)
    assert [(c.model, c.label) for c in changes] == [
        ("signoff requirement", "QA Lead"),
        ("attestation", "All tests passing on staging"),
    ]
    assert changes[0].fields == (FieldChange("Tier", "Technical", "Operations"),)


def test_release_changes_since_shows_criterion_links_when_an_item_is_linked():
    criterion = CriterionFactory(text="All P0 complete")
    section = SectionFactory(release=criterion.release)
    item = ItemFactory(section=section, text="Load test executed")
    since = _later()

    criterion.items.add(item)

    [change] = release_changes_since(criterion.release, since)
    assert change.fields == (FieldChange("Items", "—", "Load test executed"),)


def test_release_changes_since_leaves_out_other_releases_when_they_change():
    mine = ItemFactory()
    theirs = ItemFactory()
    since = _later()

    _edit(theirs, text="someone else's")
    AttestationFactory()

    assert release_changes_since(mine.release, since) == []


def test_release_changes_since_skips_a_save_that_changed_nothing_when_no_reason_given():
    item = ItemFactory()
    since = _later()

    _edit(item)
    _edit(item, reason="Checked again")

    [change] = release_changes_since(item.release, since)
    assert change.reason == "Checked again" and change.fields == ()


def test_release_changes_since_keeps_the_newest_when_limited():
    item = ItemFactory()
    for n in range(5):
        _edit(item, text=f"v{n}")

    changes = release_changes_since(item.release, None, limit=2)

    assert [c.fields[0].new for c in changes] == ["v4", "v3"]


def test_release_changes_since_records_the_reason_when_the_review_opens():
    pm = UserFactory(username="pm")
    release = ReleaseFactory(owner=pm)
    since = _later()

    release_open_review(release=release, by=pm)

    [change] = release_changes_since(release, since)
    assert change.reason == "Review opened"
    assert change.fields == (FieldChange("Status", "Draft", "In review"),)


def _queries(release, since) -> int:
    with CaptureQueriesContext(connection) as context:
        release_changes_since(release, since)
    return len(context.captured_queries)


def test_release_changes_since_runs_the_same_queries_when_more_rows_changed():
    release = ReleaseFactory()
    section = SectionFactory(release=release)
    owner = UserFactory()
    criterion = CriterionFactory(release=release)
    items = ItemFactory.create_batch(12, section=section)
    since = _later()
    _edit(items[0], owner=owner, status=ItemStatus.COMPLETE)
    criterion.items.add(items[0])
    few = _queries(release, since)

    for item in items[1:]:
        _edit(item, owner=owner, status=ItemStatus.COMPLETE)
        criterion.items.add(item)
    many = _queries(release, since)

    assert len(release_changes_since(release, since)) == 24
    assert many == few
    assert many <= 16


# ---------------------------------------------------------------- review_opened_at
def test_review_opened_at_is_none_when_the_release_was_never_in_review():
    assert review_opened_at(ReleaseFactory()) is None


def test_review_opened_at_is_the_latest_opening_when_opened_twice():
    pm = UserFactory()
    release = ReleaseFactory(owner=pm)
    release_open_review(release=release, by=pm)
    first = review_opened_at(release)
    release.refresh_from_db()
    _edit(release, pm, reason="Back to draft", status=ReleaseStatus.DRAFT)
    _edit(release, pm, name="Renamed")

    release_open_review(release=release, by=pm)

    second = review_opened_at(release)
    assert first is not None and second > first
    assert second == release.history.latest().history_date


def test_review_opened_at_ignores_later_edits_when_the_review_is_open():
    release = ReleaseFactory()
    release_open_review(release=release, by=None)
    opened = review_opened_at(release)
    release.refresh_from_db()

    _edit(release, name="Renamed in review")

    assert review_opened_at(release) == opened
