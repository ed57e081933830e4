import datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from checklist.choices import ItemKind, ItemStatus
from checklist.models import Item
from risks.choices import Level
from signoffs.choices import CriterionKind, SignatureState
from signoffs.dashboard import (
    burndown,
    daily_totals,
    daily_totals_cached,
    measurements,
    my_work,
    open_actions,
    readiness_trend,
    release_dashboard,
    release_gate,
    releases_readiness,
    risk_heat_map,
    task_progress,
)
from signoffs.documents import release_import
from tests.factories import (
    ActionItemFactory,
    CriterionFactory,
    ItemFactory,
    ReleaseFactory,
    RiskFactory,
    SectionFactory,
    SignoffRequirementFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

DAY1 = datetime.date(2026, 11, 2)


def _at(day: datetime.date, hour: int = 12) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=datetime.UTC)


def _save(obj, when: datetime.datetime, **values):
    """Save with a known history date (simple-history reads ``_history_date``)."""
    for name, value in values.items():
        setattr(obj, name, value)
    obj._history_date = when
    obj.save()
    return obj


@pytest.fixture
def seed(seed_text):
    return release_import(text=seed_text, source_name="seed.md")


@pytest.fixture
def small():
    """A release built by hand: 3 tasks (5 + 3 + 8 points), 4 metrics, 2 checks, a group."""
    release = ReleaseFactory()
    tasks = SectionFactory(release=release, number="1", title="Tasks", order=1)
    perf = SectionFactory(release=release, number="2", title="Performance", order=2)
    ItemFactory(section=tasks, task=True, points=5, status=ItemStatus.COMPLETE)
    ItemFactory(section=tasks, task=True, points=3, status=ItemStatus.IN_PROGRESS)
    ItemFactory(section=tasks, task=True, points=8)
    ItemFactory(section=tasks, kind=ItemKind.GROUP, text="Heading", status=ItemStatus.COMPLETE)
    ItemFactory(section=perf, text="passing", failing=True, actual_value=Decimal("150"))
    ItemFactory(section=perf, text="unmeasured", metric=True)
    ItemFactory(section=perf, text="failing", failing=True)
    ItemFactory(
        section=perf, text="in seconds", failing=True, actual_value=Decimal("0.1"), actual_unit="s"
    )
    ItemFactory(section=perf, text="check one", complete=True)
    ItemFactory(section=perf, text="check two", status=ItemStatus.BLOCKED)
    return release


# ---------------------------------------------------------------- tasks
def test_task_progress_counts_tasks_and_points_when_built_by_hand(small):
    progress = task_progress(small)
    assert (progress.tasks, progress.complete, progress.in_progress) == (3, 1, 1)
    assert (progress.points_total, progress.points_complete, progress.points_open) == (16, 5, 11)
    assert progress.percent_complete == 33
    assert progress.points_percent_complete == 31


def test_task_progress_matches_the_seed_sprint_18_when_imported(seed):
    progress = task_progress(seed)
    assert (progress.tasks, progress.complete, progress.in_progress) == (13, 1, 1)
    assert (progress.points_total, progress.points_complete) == (81, 13)


def test_task_progress_is_zero_when_the_release_has_no_task():
    progress = task_progress(ReleaseFactory())
    assert (progress.tasks, progress.points_total, progress.percent_complete) == (0, 0, 0)
    assert progress.points_percent_complete == 0


# ---------------------------------------------------------------- measurements
def test_measurements_list_failing_then_unmeasured_then_passing_when_mixed(small):
    result = measurements(small)
    assert [i.text for i in result.rows] == ["failing", "unmeasured", "passing", "in seconds"]
    assert (result.counts.failing, result.counts.unmeasured, result.counts.passing) == (1, 1, 2)
    assert result.counts.total == 4
    assert result.more == 0


def test_measurements_say_how_many_more_when_capped(small):
    result = measurements(small, limit=2)
    assert [i.text for i in result.rows] == ["failing", "unmeasured"]
    assert result.more == 2


def test_measurements_show_every_seed_metric_unmeasured_when_imported(seed):
    result = measurements(seed)
    assert (result.counts.failing, result.counts.unmeasured, result.counts.passing) == (0, 44, 0)
    assert len(result.rows) == 44
    assert result.rows[0].text == "p50 (median) latency"


# ---------------------------------------------------------------- risks
def test_risk_heat_map_counts_each_cell_when_the_seed_is_imported(seed):
    heat = risk_heat_map(seed)
    assert heat.cell(Level.HIGH, Level.MEDIUM).count == 3
    assert heat.cell(Level.MEDIUM, Level.LOW).count == 1
    assert heat.cell(Level.MEDIUM, Level.MEDIUM).count == 1
    assert heat.cell(Level.HIGH, Level.HIGH).count == 0
    assert heat.total == 5
    # rows run high → low impact, columns high → low probability
    assert [c.count for c in heat.rows[1]] == [0, 1, 1]


def test_risk_heat_map_counts_open_risks_apart_when_one_is_complete():
    release = ReleaseFactory()
    RiskFactory(release=release, impact=Level.LOW, probability=Level.HIGH)
    RiskFactory(
        release=release, impact=Level.LOW, probability=Level.HIGH, status=ItemStatus.COMPLETE
    )
    RiskFactory(impact=Level.LOW, probability=Level.HIGH)  # another release
    cell = risk_heat_map(release).cell(Level.LOW, Level.HIGH)
    assert (cell.count, cell.open, cell.score) == (2, 1, 3)


def test_open_actions_put_overdue_first_with_days_late_when_due_dates_differ():
    release = ReleaseFactory()
    today = datetime.date(2026, 11, 20)
    ActionItemFactory(release=release, key="A-1", due_date=None)
    ActionItemFactory(release=release, key="A-2", due_date=datetime.date(2026, 11, 25))
    ActionItemFactory(release=release, key="A-3", due_date=datetime.date(2026, 11, 18))
    ActionItemFactory(release=release, key="A-4", due_date=datetime.date(2026, 11, 10))
    ActionItemFactory(
        release=release, key="A-5", due_date=datetime.date(2026, 11, 1), status=ItemStatus.COMPLETE
    )
    result = open_actions(release, today=today)
    assert [(r.action.key, r.days_overdue) for r in result.rows] == [
        ("A-4", 10),
        ("A-3", 2),
        ("A-2", 0),
        ("A-1", 0),
    ]
    assert (result.total, result.overdue, result.more) == (4, 2, 0)


def test_open_actions_list_the_seed_actions_unranked_when_no_date_is_known(seed):
    result = open_actions(seed)
    assert [r.action.key for r in result.rows] == ["A-001", "A-002", "A-003", "A-004", "A-005"]
    assert result.overdue == 0


# ---------------------------------------------------------------- trend and burndown
def _history_release():
    """Day 1: four items (one a group) and two tasks are created; day 2 one check completes;
    day 4 a task (5 points) completes and another check is added; day 5 a check is deleted."""
    release = ReleaseFactory(go_no_go_date=DAY1 + datetime.timedelta(days=9))
    section = SectionFactory(release=release)
    made = [
        _save(ItemFactory.build(section=section, text=f"check {n}"), _at(DAY1)) for n in range(3)
    ]
    _save(ItemFactory.build(section=section, kind=ItemKind.GROUP, status="complete"), _at(DAY1))
    task_a = _save(ItemFactory.build(section=section, task=True, points=5), _at(DAY1))
    _save(ItemFactory.build(section=section, task=True, points=3), _at(DAY1))
    _save(made[0], _at(DAY1 + datetime.timedelta(days=1)), status=ItemStatus.COMPLETE)
    _save(task_a, _at(DAY1 + datetime.timedelta(days=3), 9), status=ItemStatus.COMPLETE)
    _save(ItemFactory.build(section=section), _at(DAY1 + datetime.timedelta(days=3), 15))
    doomed = made[2]
    doomed._history_date = _at(DAY1 + datetime.timedelta(days=4))
    doomed.delete()
    return release


def test_readiness_trend_replays_the_history_per_day_when_items_change():
    release = _history_release()
    trend = readiness_trend(release, today=DAY1 + datetime.timedelta(days=5))
    assert [(d.day.day, d.complete, d.total) for d in trend.days] == [
        (2, 0, 5),
        (3, 1, 5),
        (4, 1, 5),  # nothing happened: the day before carries over
        (5, 2, 6),
        (6, 2, 5),
        (7, 2, 5),
    ]
    assert [(d.points_open, d.points_total) for d in trend.days] == [(8, 8)] * 3 + [(3, 8)] * 3


def test_readiness_trend_reads_the_history_in_one_query_when_long(django_assert_num_queries):
    release = _history_release()
    with django_assert_num_queries(1):
        readiness_trend(release, today=DAY1 + datetime.timedelta(days=5))


def test_readiness_trend_keeps_the_last_days_when_history_is_older_than_the_window():
    release = _history_release()
    trend = readiness_trend(release, today=DAY1 + datetime.timedelta(days=5), days=3)
    assert [(d.day.day, d.complete, d.total) for d in trend.days] == [
        (5, 2, 6),
        (6, 2, 5),
        (7, 2, 5),
    ]


def test_readiness_trend_is_empty_when_there_is_no_history():
    release = ReleaseFactory()
    assert readiness_trend(release).days == []
    assert burndown(release, readiness_trend(release)).start_points == 0


def test_burndown_ends_at_the_go_no_go_date_when_known():
    release = _history_release()
    today = DAY1 + datetime.timedelta(days=5)
    chart = burndown(release, readiness_trend(release, today=today), today=today)
    assert chart.end == DAY1 + datetime.timedelta(days=9)
    assert chart.end_known is True
    assert chart.start_points == 8
    assert chart.days[-1].points_open == 3


def test_burndown_ends_today_and_says_so_when_no_date_is_known(seed):
    today = timezone.localdate() + datetime.timedelta(days=3)
    chart = burndown(seed, readiness_trend(seed, today=today), today=today)
    assert (chart.end, chart.end_known) == (today, False)
    assert chart.start_points == 81
    assert chart.days[-1].points_open == 81 - 13


def test_readiness_trend_counts_the_seed_complete_items_when_imported(seed):
    trend = readiness_trend(seed)
    assert (trend.days[-1].complete, trend.days[-1].total) == (2, 368)


# ---------------------------------------------------------------- the trend: SQL against the replay
def _replay(release, *, today, days=60):
    """The reference: every history record replayed in time order in Python (what the
    dashboard did before the database summed the changes per day). Returns (day, complete,
    total, points open, points in all) per day, as ``readiness_trend`` does."""
    records = Item.history.filter(release_id=release.pk).order_by("history_date", "history_id")
    weights, totals, ends, current = {}, [0, 0, 0, 0], {}, None
    for record in records:
        day = timezone.localdate(record.history_date)
        if current is not None and day != current:
            ends[current] = tuple(totals)
        current = day
        old = weights.pop(record.id, (0, 0, 0, 0))
        new = (0, 0, 0, 0)
        if record.history_type != "-":
            counted = record.kind != ItemKind.GROUP
            done = record.status == ItemStatus.COMPLETE
            points = (record.points or 0) if record.kind == ItemKind.TASK else 0
            new = (int(counted and done), int(counted), 0 if done else points, points)
            weights[record.id] = new
        totals = [t + n - o for t, n, o in zip(totals, new, old, strict=True)]
    if current is None:
        return []
    ends[current] = tuple(totals)
    first = max(min(ends), today - datetime.timedelta(days=days - 1))
    last = next((ends[d] for d in sorted(ends, reverse=True) if d < first), (0, 0, 0, 0))
    out, day = [], first
    while day <= max(today, current):
        last = ends.get(day, last)
        out.append((day, *last))
        day += datetime.timedelta(days=1)
    return out


def _figures(trend):
    return [(d.day, d.complete, d.total, d.points_open, d.points_total) for d in trend.days]


def _varied_history_release():
    """Ten days of changes around midnight: creations, status back and forth (several on one
    day), a kind change (check → group → task), points changed and cleared, a removal, a task
    re-opened after completion, and an item created and removed on the same day."""
    release = ReleaseFactory()
    section = SectionFactory(release=release)
    day = lambda n, hour=12, minute=0: datetime.datetime.combine(  # noqa: E731
        DAY1 + datetime.timedelta(days=n), datetime.time(hour, minute), tzinfo=datetime.UTC
    )
    checks = [_save(ItemFactory.build(section=section), day(0, 9)) for _ in range(4)]
    task = _save(ItemFactory.build(section=section, task=True, points=8), day(0, 9))
    other = _save(ItemFactory.build(section=section, task=True, points=None), day(0, 10))
    group = _save(ItemFactory.build(section=section, kind=ItemKind.GROUP), day(0, 10))
    _save(checks[0], day(1, 23, 50), status=ItemStatus.COMPLETE)
    _save(checks[1], day(1, 23, 55), status=ItemStatus.IN_PROGRESS)
    _save(checks[1], day(2, 0, 5), status=ItemStatus.COMPLETE)
    _save(checks[1], day(2, 18), status=ItemStatus.BLOCKED)
    _save(task, day(2, 18, 30), points=13)
    _save(task, day(3, 1), status=ItemStatus.COMPLETE)
    _save(checks[2], day(3, 4), kind=ItemKind.GROUP, status=ItemStatus.COMPLETE)
    _save(checks[2], day(4, 20), kind=ItemKind.TASK, points=3)
    _save(other, day(4, 21), points=5, status=ItemStatus.AT_RISK)
    _save(group, day(5, 6), status=ItemStatus.COMPLETE)
    _save(task, day(6, 22), status=ItemStatus.IN_PROGRESS)
    _save(other, day(6, 22, 30), points=None)
    checks[3]._history_date = day(7, 3)
    checks[3].delete()
    brief = _save(ItemFactory.build(section=section, complete=True), day(8, 8))
    brief._history_date = day(8, 17)
    brief.delete()
    _save(checks[0], day(9, 23, 59), status=ItemStatus.NOT_STARTED)
    return release


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/Los_Angeles"])
@pytest.mark.parametrize(("window", "days_to_today", "distinct"), [(60, 12, 5), (4, 8, 2)])
def test_readiness_trend_equals_the_replay_when_history_varies(
    zone, window, days_to_today, distinct
):
    release = _varied_history_release()
    today = DAY1 + datetime.timedelta(days=days_to_today)
    with timezone.override(zone):
        figures = _figures(readiness_trend(release, today=today, days=window))
        assert figures == _replay(release, today=today, days=window)
    assert len({f[1:] for f in figures}) >= distinct  # the figures do move over the days


def test_readiness_trend_equals_the_replay_when_history_is_dated_after_today():
    release = _varied_history_release()
    today = DAY1 + datetime.timedelta(days=5)
    figures = _figures(readiness_trend(release, today=today))
    assert figures == _replay(release, today=today)
    assert figures[-1][0] == DAY1 + datetime.timedelta(days=9)


def test_readiness_trend_equals_the_replay_when_the_seed_is_imported_and_changed(seed):
    items = list(Item.objects.filter(release=seed, kind=ItemKind.TASK)[:5])
    for n, item in enumerate(items):
        _save(item, timezone.now() + datetime.timedelta(minutes=n), status=ItemStatus.COMPLETE)
    today = timezone.localdate()
    assert _figures(readiness_trend(seed, today=today)) == _replay(seed, today=today)


def test_dashboard_trend_is_cached_until_the_release_history_grows(django_assert_num_queries):
    release = _varied_history_release()
    today = DAY1 + datetime.timedelta(days=12)
    first = daily_totals_cached(release)
    with django_assert_num_queries(1):  # the history stamp; the totals come from the cache
        again = daily_totals_cached(release)
    assert again == first == daily_totals(release)
    item = Item.objects.filter(release=release, kind=ItemKind.CHECK).first()
    _save(item, _at(DAY1 + datetime.timedelta(days=11)), status=ItemStatus.COMPLETE)
    trend = readiness_trend(release, today=today, ends=daily_totals_cached(release))
    assert _figures(trend) == _replay(release, today=today)
    assert trend.days[-1].complete == first[max(first)][0] + 1


def test_dashboard_trend_cache_is_per_time_zone_when_zones_differ():
    release = _varied_history_release()
    with timezone.override("Asia/Kolkata"):
        kolkata = daily_totals_cached(release)
    assert daily_totals_cached(release) == daily_totals(release) != kolkata


# ---------------------------------------------------------------- my work
def test_my_work_lists_owned_items_open_first_and_unsigned_roles_when_assigned(review, pm):
    release, roles = review
    qa = roles["QA Lead"].assignee
    section = release.sections.first()
    ItemFactory(section=section, owner=qa, text="done", status=ItemStatus.COMPLETE)
    ItemFactory(section=section, owner=qa, text="open")
    ItemFactory(section=section, owner=pm, text="not mine")
    RiskFactory(release=release, owner=qa, key="R-9")
    work = my_work(release, qa, since=None)
    assert [i.text for i in work.items] == ["open", "done"]
    assert (work.items_total, work.items_open) == (2, 1)
    assert [r.key for r in work.risks] == ["R-9"]
    assert [w.requirement.role for w in work.waiting] == ["QA Lead"]
    assert work.changes == [] and work.since is None


def test_my_work_does_not_wait_for_a_role_when_its_signature_is_valid(review, password):
    from signoffs.services import signature_give

    release, roles = review
    qa = roles["QA Lead"].assignee
    signature_give(
        requirement=roles["QA Lead"],
        user=qa,
        username=qa.username,
        password=password,
        meaning="approved",
        comment="",
    )
    assert my_work(release, qa, since=None).waiting == []
    item = release.items.get()
    item.text = "p95 latency (changed after signing)"
    item.save()  # a material change: the approval goes stale
    [waiting] = my_work(release, qa, since=None).waiting
    assert waiting.requirement == roles["QA Lead"]
    assert waiting.last.state == SignatureState.STALE


def test_my_work_lists_changes_newest_first_when_visited_before(review, pm):
    release, _ = review
    since = timezone.now()
    item = release.items.get()
    _save(item, since + datetime.timedelta(seconds=1), text="first edit")
    _save(item, since + datetime.timedelta(seconds=2), text="second edit")
    work = my_work(release, pm, since=since)
    assert [c.label for c in work.changes] == ["second edit", "first edit"]
    assert work.changes_more is False


# ---------------------------------------------------------------- gate and the whole page
def test_release_gate_is_open_when_everything_holds():
    release = ReleaseFactory()
    CriterionFactory(release=release, kind=CriterionKind.GO, manual_verdict=True)
    CriterionFactory(release=release, kind=CriterionKind.NO_GO, manual_verdict=False)
    gate = release_gate(release)
    assert gate.go_possible is True
    assert len(gate.results) == 2


def test_release_gate_names_each_missing_signoff_when_roles_are_unsigned(review):
    release, _ = review
    gate = release_gate(release)
    assert gate.go_possible is False
    assert "Missing valid sign-off: QA Lead" in gate.refusals
    assert "Missing valid sign-off: Security Officer" in gate.refusals


def _bulk_items(release, n: int) -> None:
    section = SectionFactory(release=release)
    rows = []
    for i in range(n):
        kind = (ItemKind.CHECK, ItemKind.TASK, ItemKind.METRIC)[i % 3]
        item = Item(
            release=release,
            section=section,
            order=i,
            kind=kind,
            text=f"item {i}",
            status=ItemStatus.COMPLETE if i % 4 == 0 else ItemStatus.NOT_STARTED,
        )
        if kind == ItemKind.TASK:
            item.key, item.points = f"T-{i}", 3
        if kind == ItemKind.METRIC:
            item.target_op, item.target_value, item.target_unit = "<", Decimal(200), "ms"
            item.actual_value, item.actual_unit = Decimal(100 + i % 200), "ms"
            item.target_met = item.compute_target_met()
        rows.append(item)
    bulk_create_with_history(rows, Item, batch_size=500)


@pytest.mark.parametrize("n", [10, 2000])
def test_release_dashboard_query_count_is_constant_when_items_grow(
    n, django_assert_max_num_queries
):
    user = UserFactory(superuser=True)
    release = ReleaseFactory()
    _bulk_items(release, n)
    RiskFactory(release=release)
    ActionItemFactory(release=release)
    CriterionFactory(release=release)
    SignoffRequirementFactory(release=release, assignee=user)
    with django_assert_max_num_queries(40):
        dashboard = release_dashboard(release, user, since=timezone.now())
    assert dashboard.summary.rows[0].total == n
    assert dashboard.tasks.tasks == len(range(1, n, 3))


def test_release_dashboard_figures_match_the_seed_when_imported(seed):
    user = UserFactory(superuser=True)
    dashboard = release_dashboard(seed, user, since=None)
    sprint = dashboard.summary.rows[0]
    assert (sprint.category, sprint.total, sprint.complete) == ("Sprint 18 Tasks", 72, 2)
    assert (sprint.points_total, sprint.points_complete) == (81, 13)
    assert dashboard.summary.total.total == 376  # 368 checklist items + 8 sign-offs
    assert (dashboard.checklist.total, dashboard.checklist.complete) == (368, 2)
    assert dashboard.checklist.percent_complete == 1
    assert dashboard.gate.go_possible is False
    assert dashboard.heat_map.total == 5
    assert dashboard.actions.total == 5


# ---------------------------------------------------------------- the admin index
def test_releases_readiness_gives_percent_and_verdict_when_listing(small, seed):
    from checklist.models import Release

    overview = releases_readiness(Release.objects.all(), limit=10)
    by_version = {row.release.version: row for row in overview.rows}
    assert (by_version["v0.3.0"].items_complete, by_version["v0.3.0"].items_total) == (2, 368)
    assert by_version["v0.3.0"].percent_complete == 1
    assert by_version["v0.3.0"].go_possible is False
    mine = by_version[small.version]
    assert (mine.items_complete, mine.items_total, mine.percent_complete) == (2, 9, 22)
    assert mine.go_possible is True  # nothing to sign, no criterion
    assert overview.more == 0


def test_releases_readiness_caps_the_list_and_counts_the_rest_when_many():
    from checklist.models import Release

    for _ in range(4):
        ReleaseFactory()
    overview = releases_readiness(Release.objects.all(), limit=3)
    assert len(overview.rows) == 3
    assert (overview.total, overview.more) == (4, 1)
