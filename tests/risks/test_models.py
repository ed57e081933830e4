import datetime

import pytest

from checklist.choices import ItemStatus
from risks.models import ActionItem
from tests.factories import ActionItemFactory, RiskFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 11, 29)


@pytest.mark.parametrize(
    ("impact", "probability", "score"),
    [("LOW", "LOW", 1), ("HIGH", "MEDIUM", 6), ("HIGH", "HIGH", 9), ("MEDIUM", "LOW", 2)],
)
def test_risk_score_is_impact_times_probability(impact, probability, score):
    risk = RiskFactory(impact=impact, probability=probability)
    assert risk.score == score
    assert risk.heat_cell == (impact, probability)


def test_action_item_overdue_only_with_a_past_date_and_open():
    past = datetime.date(2026, 11, 25)
    late = ActionItemFactory(due_date=past)
    done = ActionItemFactory(due_date=past, status=ItemStatus.COMPLETE)
    undated = ActionItemFactory(due_date=None, due_text="Before Day 3")
    future = ActionItemFactory(due_date=datetime.date(2026, 12, 5))
    assert late.is_overdue(TODAY) and late.days_overdue(TODAY) == 4
    assert not done.is_overdue(TODAY) and done.days_overdue(TODAY) == 0
    assert not undated.is_overdue(TODAY)
    assert not future.is_overdue(TODAY)
    assert list(ActionItem.objects.overdue(TODAY)) == [late]


def test_str_names_the_key():
    assert str(RiskFactory(key="R-001", title="Late")) == "R-001: Late"
    assert str(ActionItemFactory(key="A-001", action="Do")) == "A-001: Do"
