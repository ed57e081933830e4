from django.db import models


class ReleaseStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    DECIDED = "decided", "Decided"


class ReviewCadence(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKDAYS = "weekdays", "Weekdays"
    WEEKLY = "weekly", "Weekly"
    OFF = "off", "Off"


class ItemKind(models.TextChoices):
    TASK = "task", "Task"
    GROUP = "group", "Group"
    CHECK = "check", "Check"
    METRIC = "metric", "Metric"
    FIELD = "field", "Field"


class ItemStatus(models.TextChoices):
    """The checklist legend: ⚪ 🟡 ✅ ❌ ⚠️."""

    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETE = "complete", "Complete"
    BLOCKED = "blocked", "Blocked"
    AT_RISK = "at_risk", "At risk"


# The legend's symbols, as the checklist writes them (clean UTF-8).
STATUS_EMOJI = {
    ItemStatus.COMPLETE: "✅",
    ItemStatus.IN_PROGRESS: "🟡",
    ItemStatus.NOT_STARTED: "⚪",
    ItemStatus.BLOCKED: "❌",
    ItemStatus.AT_RISK: "⚠️",
}


class TargetOperator(models.TextChoices):
    LT = "<", "<"
    LE = "<=", "≤"
    GT = ">", ">"
    GE = ">=", "≥"
    EQ = "=", "="


class ImportJobState(models.TextChoices):
    """An upload handed to the worker: queued → running → done | failed."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Importing"
    DONE = "done", "Imported"
    FAILED = "failed", "Failed"
