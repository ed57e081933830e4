"""The release's status summary, computed from its items (the document's own table is not
trusted): per category — a top-level section — total, complete, in progress, not started,
blocked, at risk and % complete, by items and by story points. Group headings are not counted."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.db.models import Count, F, Sum
from django.db.models.functions import Coalesce

from .choices import ItemStatus
from .models import Item, Release, Section

STATUSES = [s.value for s in ItemStatus]


def _percent(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


@dataclass
class SummaryRow:
    category: str
    section: str = ""
    total: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    points_total: int = 0
    points_complete: int = 0
    points_in_progress: int = 0

    @property
    def complete(self) -> int:
        return self.counts[ItemStatus.COMPLETE]

    @property
    def percent_complete(self) -> int:
        return _percent(self.complete, self.total)

    @property
    def points_percent_complete(self) -> int:
        return _percent(self.points_complete, self.points_total)

    def add(self, other: SummaryRow) -> None:
        self.total += other.total
        for status, n in other.counts.items():
            self.counts[status] += n
        self.points_total += other.points_total
        self.points_complete += other.points_complete
        self.points_in_progress += other.points_in_progress

    def as_dict(self) -> dict:
        data = asdict(self)
        counts = data.pop("counts")
        data.update(counts)
        data["percent_complete"] = self.percent_complete
        data["points_percent_complete"] = self.points_percent_complete
        return data


@dataclass
class Summary:
    rows: list[SummaryRow]
    total: SummaryRow

    def as_dict(self) -> dict:
        return {"rows": [r.as_dict() for r in self.rows], "total": self.total.as_dict()}


def release_summary(release: Release) -> Summary:
    """Two queries whatever the number of items: the top-level sections, and one aggregate."""
    tops = list(Section.objects.filter(release=release, parent__isnull=True).order_by("order"))
    rows = {s.pk: SummaryRow(category=s.summary_category, section=s.number) for s in tops}
    aggregate = (
        Item.objects.filter(release=release)
        .countable()
        .annotate(top=Coalesce(F("section__parent_id"), F("section_id")))
        .values("top", "status")
        .annotate(n=Count("id"), points=Coalesce(Sum("points"), 0))
        .order_by()
    )
    for entry in aggregate:
        row = rows.get(entry["top"])
        if row is None:  # an item under a deeper section tree: count it under its own top
            continue
        row.total += entry["n"]
        row.counts[entry["status"]] += entry["n"]
        row.points_total += entry["points"]
        if entry["status"] == ItemStatus.COMPLETE:
            row.points_complete += entry["points"]
        elif entry["status"] == ItemStatus.IN_PROGRESS:
            row.points_in_progress += entry["points"]
    counted = [r for r in rows.values() if r.total]
    total = SummaryRow(category="TOTAL")
    for row in counted:
        total.add(row)
    return Summary(rows=counted, total=total)
