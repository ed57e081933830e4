"""The figures of a release's governance dashboard, computed, never typed. Read-only.

Every figure is aggregated in the database: the number of queries does not grow with the number
of items, risks or action items (lists shown on the page are capped and say how many more there
are). The readiness trend and the burndown are reconstructed from the items' audit history:
each history record is the state of one item from that moment on, so replaying them in time
order gives, at the end of each day, how many items were complete and how many story points were
still open. The database does that replay as per-day sums (one query), and the dashboard keeps
the result in the cache until the release's history grows.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Case, Count, F, IntegerField, Max, Q, Sum, Value, When, Window
from django.db.models.functions import Coalesce, Lag, TruncDate
from django.utils import timezone

from checklist.choices import ItemKind, ItemStatus, ReleaseStatus
from checklist.models import Item, Release
from checklist.summary import Summary, SummaryRow
from dcmms_release.cache_guard import cache_get, cache_set
from risks.choices import LEVEL_WEIGHT, Level
from risks.models import ActionItem, Risk

from .changes import Change, release_changes_since
from .freeze import Decision, decision_annotations, decision_from_row
from .gates import CriterionResult, criteria_evaluate, go_refusals
from .models import Signature, SignoffRequirement
from .summary import SIGNOFF_CATEGORY, release_full_summary

METRICS_SHOWN = 100
ACTIONS_SHOWN = 50
MY_ROWS_SHOWN = 25
CHANGES_SHOWN = 50
TREND_DAYS = 60
TREND_CACHE_SECONDS = 24 * 60 * 60  # keys change with the history; this only frees old ones
# High first: the heat map reads from the top-left corner (high impact, high probability).
LEVELS_DOWN = (Level.HIGH, Level.MEDIUM, Level.LOW)


# ---------------------------------------------------------------- tasks
@dataclass(frozen=True)
class TaskProgress:
    """The release's tasks (items of kind task) and their story points."""

    tasks: int
    complete: int
    in_progress: int
    points_total: int
    points_complete: int

    @property
    def percent_complete(self) -> int:
        return round(100 * self.complete / self.tasks) if self.tasks else 0

    @property
    def points_percent_complete(self) -> int:
        return round(100 * self.points_complete / self.points_total) if self.points_total else 0

    @property
    def points_open(self) -> int:
        return self.points_total - self.points_complete


def task_progress(release: Release) -> TaskProgress:
    """Tasks: how many, how many complete and in progress, story points in all and complete.
    One query."""
    complete = Q(status=ItemStatus.COMPLETE)
    row = Item.objects.filter(release=release, kind=ItemKind.TASK).aggregate(
        tasks=Count("id"),
        complete=Count("id", filter=complete),
        in_progress=Count("id", filter=Q(status=ItemStatus.IN_PROGRESS)),
        points_total=Coalesce(Sum("points"), 0),
        points_complete=Coalesce(Sum("points", filter=complete), 0),
    )
    return TaskProgress(**row)


# ---------------------------------------------------------------- measurements
@dataclass(frozen=True)
class MetricCounts:
    failing: int
    unmeasured: int
    passing: int

    @property
    def total(self) -> int:
        return self.failing + self.unmeasured + self.passing


@dataclass(frozen=True)
class Measurements:
    """Every metric with its target, actual and pass/fail: failing first, then those not yet
    measured, then those passing. ``rows`` holds at most ``METRICS_SHOWN`` of them."""

    counts: MetricCounts
    rows: list[Item]

    @property
    def more(self) -> int:
        return self.counts.total - len(self.rows)


def measurements(release: Release, *, limit: int = METRICS_SHOWN) -> Measurements:
    """Two queries: the counts, and the first ``limit`` metrics in the order failing (target
    missed), not measured, passing."""
    metrics = Item.objects.filter(release=release, kind=ItemKind.METRIC)
    counts = metrics.aggregate(
        failing=Count("id", filter=Q(target_met=False)),
        unmeasured=Count("id", filter=Q(target_met__isnull=True)),
        passing=Count("id", filter=Q(target_met=True)),
    )
    rank = Case(
        When(target_met=False, then=Value(0)),
        When(target_met__isnull=True, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    rows = list(
        metrics.select_related("section")
        .annotate(rank=rank)
        .order_by("rank", "section__order", "order", "pk")[:limit]
    )
    return Measurements(counts=MetricCounts(**counts), rows=rows)


# ---------------------------------------------------------------- risks
@dataclass(frozen=True)
class HeatCell:
    impact: str
    probability: str
    count: int
    open: int

    @property
    def score(self) -> int:
        return LEVEL_WEIGHT[Level(self.impact)] * LEVEL_WEIGHT[Level(self.probability)]


@dataclass(frozen=True)
class HeatMap:
    """Impact (rows, high first) × probability (columns, high first), with the number of risks
    in each cell and how many of them are still open."""

    rows: list[list[HeatCell]]

    def cell(self, impact: str, probability: str) -> HeatCell:
        return self.rows[LEVELS_DOWN.index(Level(impact))][LEVELS_DOWN.index(Level(probability))]

    @property
    def total(self) -> int:
        return sum(cell.count for row in self.rows for cell in row)


def risk_heat_map(release: Release) -> HeatMap:
    """Counts of the release's risks per impact × probability. One query."""
    counts = {
        (row["impact"], row["probability"]): (row["n"], row["open"])
        for row in Risk.objects.filter(release=release)
        .values("impact", "probability")
        .annotate(n=Count("id"), open=Count("id", filter=~Q(status=ItemStatus.COMPLETE)))
        .order_by()
    }
    return HeatMap(
        rows=[
            [
                HeatCell(impact, probability, *counts.get((impact, probability), (0, 0)))
                for probability in LEVELS_DOWN
            ]
            for impact in LEVELS_DOWN
        ]
    )


@dataclass(frozen=True)
class OpenAction:
    action: ActionItem
    days_overdue: int


@dataclass(frozen=True)
class OpenActions:
    rows: list[OpenAction]
    total: int
    overdue: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


def open_actions(
    release: Release, *, today: datetime.date | None = None, limit: int = ACTIONS_SHOWN
) -> OpenActions:
    """Action items not complete: overdue first (the most days late first), then by due date,
    those with no known date last. Two queries."""
    today = today or timezone.localdate()
    pending = ActionItem.objects.filter(release=release).exclude(status=ItemStatus.COMPLETE)
    overdue = Q(due_date__lt=today)
    totals = pending.aggregate(total=Count("id"), overdue=Count("id", filter=overdue))
    rank = Case(
        When(overdue, then=Value(0)),
        When(due_date__isnull=False, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    actions = (
        pending.select_related("owner").annotate(rank=rank).order_by("rank", "due_date", "order")
    )
    rows = [OpenAction(a, a.days_overdue(today)) for a in actions[:limit]]
    return OpenActions(rows=rows, total=totals["total"], overdue=totals["overdue"])


# ---------------------------------------------------------------- trend and burndown
@dataclass(frozen=True)
class DayPoint:
    """The state of the checklist at the end of one day."""

    day: datetime.date
    complete: int
    total: int
    points_open: int
    points_total: int


@dataclass(frozen=True)
class Trend:
    """Per day, from the first day the history knows (at most ``TREND_DAYS`` back) to today."""

    days: list[DayPoint]


@dataclass(frozen=True)
class Burndown:
    """Open story points per day against the ideal line from the first day's total to zero on
    the go/no-go date. With no go/no-go date known, the chart ends today and says so."""

    days: list[DayPoint]
    end: datetime.date
    end_known: bool
    start_points: int


# The four running totals of the trend, as SQL over one history record: what the item adds to
# (complete, counted, story points open, story points in all) from that moment on. A removal
# adds nothing; group headings are not counted; only tasks carry story points.
_LIVE = ~Q(history_type="-")
_COUNTED = _LIVE & ~Q(kind=ItemKind.GROUP)
_DONE = Q(status=ItemStatus.COMPLETE)
_TASK = _LIVE & Q(kind=ItemKind.TASK)
_TASK_POINTS = Coalesce(F("points"), Value(0))
TREND_TOTALS = ("complete", "total", "points_open", "points_total")


class _LocalDate(TruncDate):
    """The date of a moment in the current time zone. On SQLite in UTC it is the first ten
    characters of the stored text ('2026-11-29 09:52:03.123456'): Django's own SQLite version
    calls a Python function for every row, which costs more than the rest of the query."""

    def as_sqlite(self, compiler, connection, **extra_context):
        if self.get_tzname() != "UTC":
            return self.as_sql(compiler, connection)
        sql, params = compiler.compile(self.lhs)
        return f"substr({sql}, 1, 10)", params


def _int_case(condition: Q, then: Any) -> Case:
    return Case(When(condition, then=then), default=Value(0), output_field=IntegerField())


def _weights() -> dict[str, Case]:
    return {
        "complete": _int_case(_COUNTED & _DONE, Value(1)),
        "total": _int_case(_COUNTED, Value(1)),
        "points_open": _int_case(_TASK & ~_DONE, _TASK_POINTS),
        "points_total": _int_case(_TASK, _TASK_POINTS),
    }


def daily_totals(release: Release) -> dict[datetime.date, tuple[int, int, int, int]]:
    """Per day of the items' history (in the current time zone): the trend's four totals at the
    end of that day. One query, aggregated in the database: each history record adds its weight
    minus the weight of the item's previous record (a window over the item's records in time
    order), and the differences are summed per day; the running sum gives each day's totals. The
    same figures as replaying every record in time order, without reading the records."""
    order = [F("history_date").asc(), F("history_id").asc()]
    columns: dict[str, Any] = {}
    for name, weight in _weights().items():
        columns[f"w_{name}"] = weight
        columns[f"was_{name}"] = Window(
            Lag(weight, default=Value(0)), partition_by=[F("id")], order_by=order
        )
    records = (
        Item.history.filter(release_id=release.pk)
        .annotate(on_day=_LocalDate("history_date"), **columns)
        .values("on_day", *columns)
        .order_by()
    )
    sql, params = records.query.sql_with_params()
    sums = ", ".join(f"SUM(w_{name} - was_{name})" for name in TREND_TOTALS)
    # A window cannot be aggregated in the same SELECT: sum its rows in an outer query.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT on_day, {sums} FROM ({sql}) AS changes GROUP BY on_day ORDER BY on_day",
            params,
        )
        rows = cursor.fetchall()
    totals = [0, 0, 0, 0]
    ends: dict[datetime.date, tuple[int, int, int, int]] = {}
    for day, *changes in rows:
        if not isinstance(day, datetime.date):  # SQLite answers the date as text
            day = datetime.date.fromisoformat(str(day))
        for index, change in enumerate(changes):
            totals[index] += int(change or 0)
        ends[day] = (totals[0], totals[1], totals[2], totals[3])
    return ends


def daily_totals_cached(release: Release) -> dict[datetime.date, tuple[int, int, int, int]]:
    """``daily_totals``, kept in Django's cache under the release's history stamp (how many
    history records its items have and the newest one's id: one indexed aggregate query).
    Any change to an item writes a history record, so a changed release gets a new key and the
    figures are computed again; an unchanged one costs the stamp query alone."""
    stamp = Item.history.filter(release_id=release.pk).aggregate(
        records=Count("history_id"), newest=Max("history_id")
    )
    if not stamp["records"]:
        return {}
    key = (
        f"dashboard:daily-totals:v1:{release.pk}:{stamp['records']}:{stamp['newest']}:"
        f"{timezone.get_current_timezone_name()}"
    )
    ends = cache_get(key)  # a miss while the cache is down: computed, not kept
    if ends is None:
        ends = daily_totals(release)
        cache_set(key, ends, timeout=TREND_CACHE_SECONDS)
    return ends


def readiness_trend(
    release: Release,
    *,
    today: datetime.date | None = None,
    days: int = TREND_DAYS,
    ends: dict[datetime.date, tuple[int, int, int, int]] | None = None,
) -> Trend:
    """Items complete (and items counted) at the end of each day, from the items' history;
    group headings are not counted, as in the status summary. ``ends`` are the per-day totals
    (``daily_totals``, one query, when not given). A day with no change carries the day
    before over."""
    today = today or timezone.localdate()
    if ends is None:
        ends = daily_totals(release)
    if not ends:
        return Trend(days=[])
    current = max(ends)
    first = max(min(ends), today - datetime.timedelta(days=days - 1))
    points: list[DayPoint] = []
    last = next((ends[d] for d in sorted(ends, reverse=True) if d < first), (0, 0, 0, 0))
    day = first
    while day <= max(today, current):
        last = ends.get(day, last)
        points.append(DayPoint(day, *last))
        day += datetime.timedelta(days=1)
    return Trend(days=points)


def burndown(release: Release, trend: Trend, *, today: datetime.date | None = None) -> Burndown:
    """The open story points of the trend's days, to the go/no-go date (or today when none is
    known). No query beyond the trend's."""
    today = today or timezone.localdate()
    end = release.go_no_go_date
    end_known = end is not None
    if end is None or (trend.days and end < trend.days[0].day):
        end = max(today, trend.days[-1].day) if trend.days else today
    start_points = trend.days[0].points_total if trend.days else 0
    return Burndown(days=trend.days, end=end, end_known=end_known, start_points=start_points)


# ---------------------------------------------------------------- my work
@dataclass(frozen=True)
class Waiting:
    requirement: SignoffRequirement
    last: Signature | None


@dataclass(frozen=True)
class MyWork:
    """What the signed-in person owns on the release, what waits for their signature, and what
    changed since they last opened this dashboard (None: this is their first visit)."""

    items: list[Item]
    items_total: int
    items_open: int
    risks: list[Risk]
    actions: list[ActionItem]
    waiting: list[Waiting]
    since: datetime.datetime | None
    changes: list[Change] = field(default_factory=list)
    changes_more: bool = False


def my_work(
    release: Release, user: Any, *, since: datetime.datetime | None, limit: int = MY_ROWS_SHOWN
) -> MyWork:
    """Open items first among the user's own; requirements assigned to them with no valid
    signature; the audit trail since ``since``, newest first, at most ``CHANGES_SHOWN``."""
    mine = Item.objects.filter(release=release, owner_id=user.pk)
    totals = mine.aggregate(
        total=Count("id"), open=Count("id", filter=~Q(status=ItemStatus.COMPLETE))
    )
    done_last = Case(
        When(status=ItemStatus.COMPLETE, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    items = list(
        mine.select_related("section")
        .annotate(done=done_last)
        .order_by("done", "due_date", "pk")[:limit]
    )
    risks = list(Risk.objects.filter(release=release, owner_id=user.pk).open()[:limit])
    actions = list(
        ActionItem.objects.filter(release=release, owner_id=user.pk)
        .exclude(status=ItemStatus.COMPLETE)
        .order_by("due_date", "order")[:limit]
    )
    requirements = list(
        SignoffRequirement.objects.filter(release=release, assignee_id=user.pk).order_by("order")
    )
    latest: dict[int, Signature] = {}
    for signature in Signature.objects.filter(requirement__in=requirements).order_by(
        "signed_at", "pk"
    ):
        latest[signature.requirement_id] = signature
    waiting = [
        Waiting(r, latest.get(r.pk))
        for r in requirements
        if r.pk not in latest or not latest[r.pk].is_valid
    ]
    changes: list[Change] = []
    if since is not None:
        changes = release_changes_since(release, since, limit=CHANGES_SHOWN + 1)
    return MyWork(
        items=items,
        items_total=totals["total"],
        items_open=totals["open"],
        risks=risks,
        actions=actions,
        waiting=waiting,
        since=since,
        changes=changes[:CHANGES_SHOWN],
        changes_more=len(changes) > CHANGES_SHOWN,
    )


# ---------------------------------------------------------------- the gate
@dataclass(frozen=True)
class Gate:
    """GO is possible when nothing refuses it; each criterion with its verdict and why."""

    refusals: list[str]
    results: list[CriterionResult]

    @property
    def go_possible(self) -> bool:
        return not self.refusals


def release_gate(release: Release) -> Gate:
    return Gate(refusals=go_refusals(release), results=criteria_evaluate(release))


# ---------------------------------------------------------------- the whole page
def checklist_total(summary: Summary) -> SummaryRow:
    """The checklist's items alone: the summary's total without the sign-off row (a sign-off
    is not a checklist item). No query."""
    total = SummaryRow(category="Checklist")
    for row in summary.rows:
        if row.category != SIGNOFF_CATEGORY:
            total.add(row)
    return total


@dataclass(frozen=True)
class Dashboard:
    release: Release
    summary: Summary
    checklist: SummaryRow
    tasks: TaskProgress
    gate: Gate
    measurements: Measurements
    heat_map: HeatMap
    actions: OpenActions
    trend: Trend
    burndown: Burndown
    my_work: MyWork


def release_dashboard(
    release: Release,
    user: Any,
    *,
    since: datetime.datetime | None,
    today: datetime.date | None = None,
) -> Dashboard:
    """Every figure of the release's dashboard for ``user``, whose last visit was ``since``."""
    today = today or timezone.localdate()
    trend = readiness_trend(release, today=today, ends=daily_totals_cached(release))
    summary = release_full_summary(release)
    return Dashboard(
        release=release,
        summary=summary,
        checklist=checklist_total(summary),
        tasks=task_progress(release),
        gate=release_gate(release),
        measurements=measurements(release),
        heat_map=risk_heat_map(release),
        actions=open_actions(release, today=today),
        trend=trend,
        burndown=burndown(release, trend, today=today),
        my_work=my_work(release, user, since=since),
    )


# ---------------------------------------------------------------- the admin index
@dataclass(frozen=True)
class ReleaseReadiness:
    release: Release
    items_total: int
    items_complete: int
    go_possible: bool
    refusal_count: int
    # The latest final decision: shown instead of the gate while it is valid (the release is
    # decided), with a warning once it is stale (reopened).
    decision: Decision | None = None

    @property
    def decided(self) -> bool:
        valid = self.decision is not None and self.decision.is_valid
        return valid and self.release.status == ReleaseStatus.DECIDED

    @property
    def stale_decision(self) -> bool:
        return self.decision is not None and not self.decided

    @property
    def percent_complete(self) -> int:
        return round(100 * self.items_complete / self.items_total) if self.items_total else 0


@dataclass(frozen=True)
class ReadinessOverview:
    rows: list[ReleaseReadiness]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


def releases_readiness(releases, *, limit: int = 10) -> ReadinessOverview:
    """The newest ``limit`` of ``releases`` (already limited to what the user may see) with
    % complete (one aggregate query) and the gate's verdict (the gate's own queries, a fixed
    number per release shown: at most ``limit`` releases are evaluated)."""
    countable = ~Q(items__kind=ItemKind.GROUP)
    annotated = releases.annotate(
        n_items=Count("items", filter=countable),
        n_complete=Count("items", filter=countable & Q(items__status=ItemStatus.COMPLETE)),
        **decision_annotations(),
    ).order_by("-created_at", "version")
    shown = list(annotated[:limit])
    total = len(shown) if len(shown) < limit else releases.count()
    rows = []
    for release in shown:
        decision = decision_from_row(release)
        decided = release.status == ReleaseStatus.DECIDED and decision and decision.is_valid
        refusals = [] if decided else go_refusals(release)  # a decided release has no gate
        rows.append(
            ReleaseReadiness(
                release=release,
                items_total=release.n_items,
                items_complete=release.n_complete,
                go_possible=not refusals,
                refusal_count=len(refusals),
                decision=decision,
            )
        )
    return ReadinessOverview(rows=rows, total=total)
