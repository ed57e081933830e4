import pytest

from checklist.choices import ItemKind, ItemStatus
from checklist.summary import release_summary
from tests.factories import ItemFactory, ReleaseFactory, SectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def release():
    release = ReleaseFactory()
    tasks = SectionFactory(release=release, number="1", title="Sprint Tasks", category="Tasks")
    sub = SectionFactory(release=release, number="1.1", title="Sub", parent=tasks)
    ItemFactory(section=sub, task=True, points=8, status=ItemStatus.COMPLETE)
    ItemFactory(section=sub, task=True, points=5, status=ItemStatus.IN_PROGRESS)
    ItemFactory(section=sub, task=True, points=3)
    perf = SectionFactory(release=release, number="2", title="Performance")
    ItemFactory(section=perf, kind=ItemKind.GROUP, text="heading")
    ItemFactory(section=perf, status=ItemStatus.BLOCKED)
    ItemFactory(section=perf, status=ItemStatus.AT_RISK)
    ItemFactory(section=perf, status=ItemStatus.COMPLETE)
    SectionFactory(release=release, number="3", title="Empty")
    return release


def test_summary_counts_per_category_excluding_groups(release):
    summary = release_summary(release)
    assert [r.category for r in summary.rows] == ["Tasks", "Performance"]
    tasks, perf = summary.rows
    assert (tasks.total, tasks.complete, tasks.percent_complete) == (3, 1, 33)
    assert (tasks.points_total, tasks.points_complete, tasks.points_percent_complete) == (16, 8, 50)
    assert tasks.points_in_progress == 5
    assert perf.total == 3
    assert perf.counts[ItemStatus.BLOCKED] == 1 and perf.counts[ItemStatus.AT_RISK] == 1
    assert summary.total.total == 6
    assert summary.total.complete == 2
    assert summary.total.percent_complete == 33


def test_summary_query_count_constant(release, django_assert_num_queries):
    with django_assert_num_queries(2):
        release_summary(release)


def test_summary_as_dict_has_the_status_columns(release):
    data = release_summary(release).as_dict()
    assert data["total"]["complete"] == 2
    assert set(data["rows"][0]) >= {
        "category",
        "total",
        "complete",
        "in_progress",
        "not_started",
        "blocked",
        "at_risk",
        "percent_complete",
        "points_total",
        "points_complete",
        "points_percent_complete",
    }


def test_summary_empty_release_is_zero():
    summary = release_summary(ReleaseFactory())
    assert summary.rows == []
    assert summary.total.percent_complete == 0
