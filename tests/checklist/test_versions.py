"""The rule of optimistic locking (checklist.versions): a row's version is its latest history
entry, and an edit opened at version V is refused, naming who changed the row, when and why,
once a newer entry exists."""

import datetime

import pytest
from django.db import transaction

from checklist.models import Item
from checklist.versions import (
    NO_USER,
    changes_since,
    row_lock,
    row_version,
    stale_edit_refusals,
)
from tests.factories import ItemFactory, SectionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _edit(item: Item, *, text: str, user=None, reason: str = "") -> None:
    item.text = text
    item._history_user = user
    item._change_reason = reason
    item.save()


def test_row_version_is_the_latest_history_entry_when_the_row_was_saved_twice():
    item = ItemFactory()
    _edit(item, text="Second wording")

    assert row_version(item) == item.history.latest().history_id
    assert row_version(item) > item.history.earliest().history_id


def test_row_version_is_zero_when_the_row_has_no_history():
    section = SectionFactory()
    (item,) = Item.objects.bulk_create(
        [Item(section=section, release=section.release, text="Imported raw")]
    )

    assert row_version(item) == 0


def test_row_version_ignores_other_rows_when_they_change_later():
    item = ItemFactory()
    version = row_version(item)
    _edit(ItemFactory(section=item.section), text="Another item changed")

    assert row_version(item) == version
    assert changes_since(item, version) == []


def test_stale_edit_refusals_are_empty_when_nothing_changed_since_opened():
    item = ItemFactory()

    assert stale_edit_refusals(obj=item, version=row_version(item)) == []


def test_stale_edit_refusals_name_who_when_and_why_when_changed_since_opened(settings):
    settings.TIME_ZONE = "UTC"
    item = ItemFactory()
    version = row_version(item)
    pm = UserFactory(username="pm")
    _edit(item, text="Changed", user=pm, reason="QA rerun")
    moment = item.history.latest().history_date.astimezone(datetime.UTC)

    (problem,) = stale_edit_refusals(obj=item, version=version)

    assert problem == (
        f"Changed by pm at {moment:%H:%M} UTC on {moment:%Y-%m-%d} (reason: QA rerun) since you "
        "opened this page: reload to see their change; nothing was saved."
    )


def test_stale_edit_refusals_name_the_latest_and_count_earlier_when_changed_several_times():
    item = ItemFactory()
    version = row_version(item)
    _edit(item, text="One", user=UserFactory(username="qa"), reason="First")
    _edit(item, text="Two", user=UserFactory(username="pm"), reason="Second")

    (problem,) = stale_edit_refusals(obj=item, version=version)

    assert problem.startswith("Changed by pm at ")
    assert "(reason: Second), and 1 earlier change, since you opened this page" in problem
    assert "reload to see their changes" in problem
    reasons = [entry.history_change_reason for entry in changes_since(item, version)]
    assert reasons == ["Second", "First"]


def test_stale_edit_refusals_name_the_system_when_no_user_is_recorded():
    item = ItemFactory()
    version = row_version(item)
    _edit(item, text="Changed by a command", reason="import_checklist --replace")

    (problem,) = stale_edit_refusals(obj=item, version=version)

    assert problem.startswith(f"Changed by {NO_USER} at ")


@pytest.mark.django_db(transaction=True)  # the db fixture's own transaction would hide it
def test_row_lock_refuses_when_called_outside_a_transaction():
    item = ItemFactory()

    with pytest.raises(transaction.TransactionManagementError):
        row_lock(item)


def test_row_lock_answers_false_when_the_row_was_deleted():
    item = ItemFactory()
    Item.objects.filter(pk=item.pk).delete()

    with transaction.atomic():
        assert row_lock(item) is False
