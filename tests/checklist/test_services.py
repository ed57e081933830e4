import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from checklist.choices import ItemStatus
from checklist.models import Item
from checklist.services import item_set_status, items_set_status
from tests.factories import ItemFactory, SectionFactory, UserFactory


def _latest(obj):
    return obj.history.order_by("-history_id").first()


# ---------------------------------------------------------------- item_set_status
@pytest.mark.django_db
def test_item_set_status_records_user_and_reason_when_status_changes():
    user = UserFactory()
    item = ItemFactory(section__release__owner=user)  # the release's owner manages it

    result = item_set_status(
        item=item, status=ItemStatus.BLOCKED, user=user, reason="Waiting on vendor"
    )

    item.refresh_from_db()
    assert item.status == result.status == ItemStatus.BLOCKED
    record = _latest(item)
    assert record.history_user == user
    assert record.history_change_reason == "Waiting on vendor"
    assert record.prev_record.status == ItemStatus.NOT_STARTED


@pytest.mark.django_db
def test_item_set_status_names_the_status_in_the_reason_when_no_reason_given():
    item = ItemFactory(section__release__owner=UserFactory())

    item_set_status(item=item, status=ItemStatus.AT_RISK, user=item.release.owner)

    assert _latest(item).history_change_reason == "Status set to At risk"


@pytest.mark.django_db
def test_item_set_status_ticks_the_checkbox_only_when_complete():
    item = ItemFactory()

    item_set_status(item=item, status=ItemStatus.COMPLETE, user=None)
    item.refresh_from_db()
    assert item.checked is True

    item_set_status(item=item, status=ItemStatus.IN_PROGRESS, user=None)
    item.refresh_from_db()
    assert item.checked is False


@pytest.mark.django_db
def test_item_set_status_writes_nothing_when_status_is_unchanged():
    item = ItemFactory(status=ItemStatus.IN_PROGRESS, section__release__owner=UserFactory())
    before = item.history.count()

    item_set_status(item=item, status=ItemStatus.IN_PROGRESS, user=item.release.owner)

    assert item.history.count() == before


@pytest.mark.django_db
def test_item_set_status_refuses_an_unknown_status_when_called():
    item = ItemFactory()
    before = item.history.count()

    with pytest.raises(ValidationError):
        item_set_status(item=item, status="done", user=None)

    item.refresh_from_db()
    assert item.status == ItemStatus.NOT_STARTED
    assert item.history.count() == before


@pytest.mark.django_db
def test_item_set_status_acts_on_the_current_row_when_given_a_stale_copy():
    item = ItemFactory()
    stale = Item.objects.get(pk=item.pk)
    fresh = Item.objects.get(pk=item.pk)
    fresh.note = "edited meanwhile"
    fresh.save()

    item_set_status(item=stale, status=ItemStatus.COMPLETE, user=None)

    item.refresh_from_db()
    assert item.note == "edited meanwhile"
    assert item.status == ItemStatus.COMPLETE


# ---------------------------------------------------------------- items_set_status
@pytest.mark.django_db
def test_items_set_status_writes_one_history_entry_per_item_when_bulk():
    user = UserFactory()
    section = SectionFactory(release__owner=user)
    items = ItemFactory.create_batch(3, section=section)

    changed = items_set_status(
        items=Item.objects.filter(section=section), status=ItemStatus.COMPLETE, user=user
    )

    assert {i.pk for i in changed} == {i.pk for i in items}
    for item in items:
        record = _latest(item)
        assert record.status == ItemStatus.COMPLETE
        assert record.history_user == user
        assert record.history_type == "~"


@pytest.mark.django_db
def test_items_set_status_returns_only_changed_items_when_some_already_have_the_status():
    section = SectionFactory()
    done = ItemFactory(section=section, complete=True)
    open_item = ItemFactory(section=section)
    before = done.history.count()

    changed = items_set_status(items=[done, open_item], status=ItemStatus.COMPLETE, user=None)

    assert [i.pk for i in changed] == [open_item.pk]
    assert done.history.count() == before


@pytest.mark.django_db
def test_items_set_status_changes_nothing_when_one_item_is_invalid():
    section = SectionFactory()
    good = ItemFactory(section=section)
    bad = ItemFactory(section=section)
    Item.objects.filter(pk=bad.pk).update(text="")  # invalid row (blank text) from outside

    with pytest.raises(ValidationError) as raised:
        items_set_status(items=[good, bad], status=ItemStatus.BLOCKED, user=None)

    assert "cannot be blank" in str(raised.value)
    good.refresh_from_db()
    assert good.status == ItemStatus.NOT_STARTED
    assert _latest(good).status == ItemStatus.NOT_STARTED


# ---------------------------------------------------------------- locking (PostgreSQL)
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_item_set_status_waits_for_a_concurrent_writer_when_the_row_is_locked():
    item = ItemFactory()
    locked = threading.Event()

    def concurrent_writer():
        try:
            with transaction.atomic():
                row = Item.objects.select_for_update().get(pk=item.pk)
                locked.set()
                time.sleep(0.5)
                row.status = ItemStatus.BLOCKED
                row.note = "written concurrently"
                row.save()
        finally:
            connection.close()

    writer = threading.Thread(target=concurrent_writer)
    writer.start()
    assert locked.wait(5)
    started = time.monotonic()
    item_set_status(item=item, status=ItemStatus.COMPLETE, user=None)
    waited = time.monotonic() - started
    writer.join()

    item.refresh_from_db()
    # The service waited for the writer and then changed the row the writer left behind:
    # without the lock it would have saved its stale copy over the writer's note.
    assert waited >= 0.3
    assert item.status == ItemStatus.COMPLETE
    assert item.note == "written concurrently"
    statuses = list(item.history.order_by("history_id").values_list("status", flat=True))
    assert statuses == [ItemStatus.NOT_STARTED, ItemStatus.BLOCKED, ItemStatus.COMPLETE]
