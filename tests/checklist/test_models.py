from decimal import Decimal

import pytest

from checklist.choices import ItemKind, ReleaseStatus
from checklist.models import Item
from tests.factories import ItemFactory, ReleaseFactory, SectionFactory

pytestmark = pytest.mark.django_db


def test_item_target_met_computed_when_saved():
    item = ItemFactory(metric=True, actual_value=Decimal("150"), actual_unit="ms")
    assert item.target_met is True
    item.actual_value = Decimal("0.3")
    item.actual_unit = "s"
    item.save()
    item.refresh_from_db()
    assert item.target_met is False
    assert Item.objects.failing().get() == item


def test_item_displays_target_and_actual_as_written():
    item = ItemFactory(
        kind=ItemKind.METRIC,
        target_op=">=",
        target_value=Decimal("72000"),
        target_unit="events/sec",
        actual_value=Decimal("23400"),
        actual_unit="events/sec",
    )
    assert item.target_display == "≥ 72,000 events/sec"
    assert item.actual_display == "23,400 events/sec"
    assert ItemFactory(text="plain").target_display == ""


def test_item_str_names_the_key_and_shortens_long_text():
    assert str(ItemFactory(task=True, key="DCMMS-141", text="Final")) == "DCMMS-141: Final"
    assert len(str(ItemFactory(text="x" * 200))) == 80


def test_item_history_written_on_save():
    item = ItemFactory()
    item.status = "complete"
    item.save()
    assert [h.history_type for h in item.history.all()] == ["~", "+"]


def test_release_transitions_follow_the_status_flow():
    release = ReleaseFactory()
    assert release.status == ReleaseStatus.DRAFT
    assert release.can_transition_to(ReleaseStatus.IN_REVIEW)
    assert not release.can_transition_to(ReleaseStatus.DECIDED)
    release.status = ReleaseStatus.DECIDED
    assert release.can_transition_to(ReleaseStatus.IN_REVIEW)
    assert not release.can_transition_to(ReleaseStatus.DRAFT)


def test_section_summary_category_falls_back_to_title():
    assert SectionFactory(title="Performance Validation").summary_category == (
        "Performance Validation"
    )
    assert SectionFactory(title="x", category="Performance").summary_category == "Performance"
    assert str(SectionFactory(number="2.1", title="API")) == "2.1 API"
