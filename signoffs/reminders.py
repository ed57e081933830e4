"""What each person is reminded of, per release and day: read-only, no writes, no mail.

One digest per person per release per day (``ReminderDispatch`` is unique on recipient, release
and date): a person working on two releases gets two mails, each about one release, each with
its own links and its own "what changed". A digest lists, for its recipient:

- checklist items they own that are not complete or miss their measured target (failing first);
- action items they own that are not complete (overdue first, with the days overdue);
- sign-offs waiting for their role (their requirement has no valid signature) — only while the
  release is in review;
- their stale signatures to renew (the release changed after they signed);
- for the release owner (the PM) only, the escalations: action items overdue by more than
  ``REMINDER_ESCALATE_OVERDUE_DAYS`` and sign-offs still missing when the go/no-go date is at
  most ``REMINDER_ESCALATE_SIGNOFF_DAYS`` away (or past; nothing when the date is unknown);
- what changed on the release since their previous sent digest (since the review opened for a
  first digest), newest first, at most ``REMINDER_CHANGES_SHOWN``.

Changes alone are context, not a reason to write: a person with nothing to act on gets no mail,
and no dispatch is recorded for them. Inactive accounts and accounts without an e-mail address
get nothing. A release sends digests only when its status is in ``REMINDER_SEND_FOR_STATUSES``
(default: in review) and its ``review_cadence`` says the day is a review day (daily; weekdays
Monday to Friday; weekly on Mondays; off never).

Queries are bounded by the number of releases, never by people × items: per release a fixed
number of queries (items, action items, requirements, signatures, people, last digests, the
change trail), whatever the number of recipients.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Max, Q
from django.urls import reverse

from checklist.choices import ItemKind, ItemStatus, ReleaseStatus, ReviewCadence
from checklist.models import Item, Release
from risks.models import ActionItem

from .changes import Change, release_changes_since, review_opened_at
from .choices import DispatchStatus, SignatureState
from .models import ReminderDispatch, Signature, SignoffRequirement

MONDAY = 0
FIELDS_SHOWN_PER_CHANGE = 3


# ---------------------------------------------------------------- what a digest holds
@dataclass(frozen=True)
class ItemLine:
    """A checklist item its owner has to move: status, target and actual as written."""

    label: str
    status: str
    target: str
    actual: str
    failing: bool
    url: str


@dataclass(frozen=True)
class ActionLine:
    """An open action item: due as written (and the date), days overdue (0: not overdue)."""

    label: str
    owner: str
    due: str
    days_overdue: int
    url: str


@dataclass(frozen=True)
class SignoffLine:
    """A role's block with no valid signature: waiting to be signed, or a stale one to renew."""

    role: str
    assignee: str
    final_decision: bool
    url: str
    signed_at: datetime.datetime | None = None


@dataclass(frozen=True)
class ChangeLine:
    when: datetime.datetime
    who: str
    what: str
    detail: str


@dataclass(frozen=True)
class Escalation:
    """What is slipping, for the release owner: overdue actions past the threshold and
    missing sign-offs close to the go/no-go date."""

    overdue_actions: tuple[ActionLine, ...] = ()
    missing_signoffs: tuple[SignoffLine, ...] = ()
    days_to_go_no_go: int | None = None

    def __bool__(self) -> bool:
        return bool(self.overdue_actions or self.missing_signoffs)


@dataclass(frozen=True)
class Digest:
    """One person's digest about one release for one day."""

    recipient_id: int
    recipient_name: str
    recipient_email: str
    release_id: int
    release_label: str
    release_url: str
    date: datetime.date
    items: tuple[ItemLine, ...] = ()
    actions: tuple[ActionLine, ...] = ()
    signoffs: tuple[SignoffLine, ...] = ()
    stale: tuple[SignoffLine, ...] = ()
    escalation: Escalation = field(default_factory=Escalation)
    changes: tuple[ChangeLine, ...] = ()
    changes_more: bool = False

    @property
    def has_content(self) -> bool:
        """Something to act on; changes alone never make a mail."""
        return bool(self.items or self.actions or self.signoffs or self.stale or self.escalation)

    @property
    def summary(self) -> str:
        """The digest in one line, as the dispatch row and the dry run show it."""
        failing = sum(1 for item in self.items if item.failing)
        overdue = sum(1 for action in self.actions if action.days_overdue)
        parts = [
            f"{len(self.items)} item(s)" + (f" ({failing} failing)" if failing else ""),
            f"{len(self.actions)} action(s)" + (f" ({overdue} overdue)" if overdue else ""),
            f"{len(self.signoffs)} sign-off(s) waiting",
            f"{len(self.stale)} stale signature(s)",
        ]
        if self.escalation:
            parts.append(
                f"escalations: {len(self.escalation.overdue_actions)} overdue action(s), "
                f"{len(self.escalation.missing_signoffs)} missing sign-off(s)"
            )
        parts.append(f"{len(self.changes)}{'+' if self.changes_more else ''} change(s)")
        return "; ".join(parts)


# ---------------------------------------------------------------- helpers
def one_line(text: str) -> str:
    """Text safe for a mail header: CR, LF and other line breaks become spaces."""
    return " ".join(str(text).split())


def absolute_url(viewname: str, *args: Any) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse(viewname, args=args)


def _name(user: Any) -> str:
    if user is None:
        return "unassigned"
    full = user.get_full_name()
    return f"{full} ({user.get_username()})" if full else user.get_username()


def _short(text: str, limit: int = 120) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _item_line(item: Item) -> ItemLine:
    label = f"{item.key}: {item.text}" if item.key else item.text
    return ItemLine(
        label=_short(label),
        status=item.get_status_display(),
        target=item.target_display,
        actual=item.actual_display,
        failing=item.target_met is False,
        url=absolute_url("admin:checklist_item_change", item.pk),
    )


def _action_line(action: ActionItem, date: datetime.date) -> ActionLine:
    due = action.due_text or ""
    if action.due_date is not None:
        due = f"{due} ({action.due_date.isoformat()})" if due else action.due_date.isoformat()
    return ActionLine(
        label=_short(f"{action.key}: {action.action}"),
        owner=_name(action.owner) if action.owner_id else (action.owner_label or "unassigned"),
        due=due or "no date",
        days_overdue=action.days_overdue(date),
        url=absolute_url("admin:risks_actionitem_change", action.pk),
    )


def _signoff_line(
    requirement: SignoffRequirement, signed_at: datetime.datetime | None = None
) -> SignoffLine:
    return SignoffLine(
        role=requirement.role,
        assignee=_name(requirement.assignee),
        final_decision=requirement.final_decision,
        url=absolute_url("admin:signoffs_signoffrequirement_sign", requirement.pk),
        signed_at=signed_at,
    )


def _change_line(change: Change) -> ChangeLine:
    shown = change.fields[:FIELDS_SHOWN_PER_CHANGE]
    detail = "; ".join(f"{f.field}: {_short(f.old, 40)} → {_short(f.new, 40)}" for f in shown)
    if len(change.fields) > FIELDS_SHOWN_PER_CHANGE:
        detail += f"; and {len(change.fields) - FIELDS_SHOWN_PER_CHANGE} more"
    if change.reason:
        detail = f"{detail} ({_short(change.reason, 80)})" if detail else _short(change.reason, 80)
    return ChangeLine(
        when=change.when,
        who=change.who,
        what=_short(f"{change.model} {change.label} {change.kind}"),
        detail=detail,
    )


# ---------------------------------------------------------------- which releases, which days
def cadence_due(cadence: str, date: datetime.date) -> bool:
    """Whether a review cadence makes ``date`` a reminder day."""
    if cadence == ReviewCadence.DAILY:
        return True
    if cadence == ReviewCadence.WEEKDAYS:
        return date.weekday() < 5
    if cadence == ReviewCadence.WEEKLY:
        return date.weekday() == MONDAY
    return False


def sends_for_status(status: str) -> bool:
    return status in settings.REMINDER_SEND_FOR_STATUSES


def releases_due(date: datetime.date) -> list[Release]:
    """Releases whose status sends reminders and whose cadence makes ``date`` a review day.
    One query."""
    releases = Release.objects.filter(status__in=settings.REMINDER_SEND_FOR_STATUSES)
    return [r for r in releases.order_by("pk") if cadence_due(r.review_cadence, date)]


# ---------------------------------------------------------------- one release
def _last_sent(release: Release) -> dict[int, datetime.datetime]:
    """Recipient id → when their latest digest about the release was sent. One query."""
    rows = (
        ReminderDispatch.objects.filter(release=release, status=DispatchStatus.SENT)
        .values("recipient_id")
        .annotate(last=Max("sent_at"))
    )
    return {row["recipient_id"]: row["last"] for row in rows if row["last"] is not None}


def _changes_for(
    release: Release, recipients: Iterable[int], last_sent: dict[int, datetime.datetime]
) -> dict[int, tuple[tuple[ChangeLine, ...], bool]]:
    """Recipient id → (their changes, whether there are more than shown). The trail is read
    once per release, from the earliest point any recipient needs."""
    recipients = list(recipients)
    if not recipients:
        return {}
    cap = settings.REMINDER_CHANGES_SHOWN
    opened = review_opened_at(release)
    since_of = {pk: last_sent.get(pk, opened) for pk in recipients}
    earliest = None if any(s is None for s in since_of.values()) else min(since_of.values())
    trail = release_changes_since(release, earliest, limit=cap + 1)
    result = {}
    for pk, since in since_of.items():
        mine = [c for c in trail if since is None or c.when > since]
        result[pk] = (tuple(_change_line(c) for c in mine[:cap]), len(mine) > cap)
    return result


def release_digests(release: Release, date: datetime.date) -> list[Digest]:
    """The digests one release sends on ``date``, one per person with something to act on,
    ordered by username. Status and cadence are not checked here (see ``releases_due``)."""
    in_review = release.status == ReleaseStatus.IN_REVIEW
    items = (
        Item.objects.filter(release=release, owner__isnull=False)
        .exclude(kind=ItemKind.GROUP)
        .filter(~Q(status=ItemStatus.COMPLETE) | Q(target_met=False))
        .select_related("section")
        .order_by("section__order", "order", "pk")
    )
    items_of: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        items_of[item.owner_id].append(item)

    actions = list(
        ActionItem.objects.filter(release=release)
        .exclude(status=ItemStatus.COMPLETE)
        .select_related("owner")
        .order_by("order", "key")
    )
    actions_of: dict[int, list[ActionItem]] = defaultdict(list)
    for action in actions:
        if action.owner_id is not None:
            actions_of[action.owner_id].append(action)

    requirements = list(
        SignoffRequirement.objects.filter(release=release)
        .select_related("assignee")
        .order_by("order", "pk")
    )
    valid: set[int] = set()
    stale_of: dict[int, Signature] = {}
    signatures = Signature.objects.filter(
        release=release, state__in=(SignatureState.VALID, SignatureState.STALE)
    ).order_by("signed_at", "pk")
    for signature in signatures:
        if signature.state == SignatureState.VALID:
            valid.add(signature.requirement_id)
        else:
            stale_of[signature.requirement_id] = signature
    unsigned = [r for r in requirements if r.pk not in valid]
    waiting_of: dict[int, list[SignoffLine]] = defaultdict(list)
    stale_lines_of: dict[int, list[SignoffLine]] = defaultdict(list)
    if in_review:
        for requirement in unsigned:
            if requirement.assignee_id is None:
                continue
            stale = stale_of.get(requirement.pk)
            if stale is not None and stale.signer_id == requirement.assignee_id:
                line = _signoff_line(requirement, stale.signed_at)
                stale_lines_of[requirement.assignee_id].append(line)
            else:
                waiting_of[requirement.assignee_id].append(_signoff_line(requirement))

    escalation = _escalation(release, date, actions, unsigned if in_review else [])
    people = set(items_of) | set(actions_of) | set(waiting_of) | set(stale_lines_of)
    if escalation and release.owner_id is not None:
        people.add(release.owner_id)
    users = {
        u.pk: u
        for u in get_user_model()
        .objects.filter(pk__in=people, is_active=True)
        .exclude(email="")
        .order_by("username")
    }
    last_sent = _last_sent(release) if users else {}
    changes = _changes_for(release, users, last_sent)
    label = one_line(str(release))
    release_url = absolute_url("admin:checklist_release_change", release.pk)

    digests = []
    for pk, user in users.items():
        mine = sorted(items_of.get(pk, []), key=lambda i: i.target_met is not False)
        my_actions = sorted(
            (_action_line(a, date) for a in actions_of.get(pk, [])),
            key=lambda line: -line.days_overdue,
        )
        my_changes, more = changes.get(pk, ((), False))
        digests.append(
            Digest(
                recipient_id=pk,
                recipient_name=_name(user),
                recipient_email=user.email,
                release_id=release.pk,
                release_label=label,
                release_url=release_url,
                date=date,
                items=tuple(_item_line(i) for i in mine),
                actions=tuple(my_actions),
                signoffs=tuple(waiting_of.get(pk, ())),
                stale=tuple(stale_lines_of.get(pk, ())),
                escalation=escalation if pk == release.owner_id else Escalation(),
                changes=my_changes,
                changes_more=more,
            )
        )
    return [d for d in digests if d.has_content]


def _escalation(
    release: Release,
    date: datetime.date,
    actions: list[ActionItem],
    unsigned: list[SignoffRequirement],
) -> Escalation:
    """Overdue by more than the threshold (strictly), and sign-offs missing when the go/no-go
    date is at most the threshold away (a passed date included; none when it is unknown)."""
    threshold = settings.REMINDER_ESCALATE_OVERDUE_DAYS
    overdue = sorted(
        (
            _action_line(a, date)
            for a in actions
            if a.is_overdue(date) and a.days_overdue(date) > threshold
        ),
        key=lambda line: -line.days_overdue,
    )
    missing: list[SignoffLine] = []
    days_left = None
    if release.go_no_go_date is not None:
        days_left = (release.go_no_go_date - date).days
        if days_left <= settings.REMINDER_ESCALATE_SIGNOFF_DAYS:
            missing = [_signoff_line(r) for r in unsigned]
    return Escalation(
        overdue_actions=tuple(overdue),
        missing_signoffs=tuple(missing),
        days_to_go_no_go=days_left,
    )


def digests_due(date: datetime.date) -> list[Digest]:
    """Every digest the daily run sends on ``date``: the due releases, each computed once."""
    return [digest for release in releases_due(date) for digest in release_digests(release, date)]


def digest_for(*, recipient_id: int, release: Release, date: datetime.date) -> Digest | None:
    """One person's digest about one release (None: nothing to say to them)."""
    for digest in release_digests(release, date):
        if digest.recipient_id == recipient_id:
            return digest
    return None
