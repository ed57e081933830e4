"""What each person's digest says (signoffs.reminders): read-only, one per person and release."""

import datetime

import pytest
from django.utils import timezone

from checklist.choices import ItemKind, ItemStatus, ReleaseStatus, ReviewCadence
from signoffs.choices import DispatchStatus, SignatureState
from signoffs.models import ReminderDispatch
from signoffs.reminders import (
    cadence_due,
    digest_for,
    digests_due,
    one_line,
    release_digests,
    releases_due,
)
from tests.factories import (
    ActionItemFactory,
    ItemFactory,
    ReleaseFactory,
    SectionFactory,
    SignoffRequirementFactory,
)
from tests.signoffs.reminder_helpers import (
    BASE_URL,
    DAY,
    MONDAY,
    SATURDAY,
    person,
    release_in_review,
    signature,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.PORTAL_BASE_URL = BASE_URL
    settings.REMINDER_SEND_FOR_STATUSES = ["in_review"]
    settings.REMINDER_ESCALATE_OVERDUE_DAYS = 2
    settings.REMINDER_ESCALATE_SIGNOFF_DAYS = 3
    settings.REMINDER_CHANGES_SHOWN = 20


@pytest.fixture
def pm():
    return person("pm")


def _by_user(digests):
    return {d.recipient_email.split("@")[0]: d for d in digests}


# ---------------------------------------------------------------- items and actions
def test_release_digests_lists_failing_items_first_when_owner_has_open_and_failing_items(pm):
    release, section = release_in_review(pm)
    dev = person("dev")
    ItemFactory(section=section, owner=dev, text="Write the runbook")
    ItemFactory(section=section, owner=dev, text="p95 latency", failing=True, complete=True)
    ItemFactory(section=section, owner=dev, text="Already done", complete=True)
    ItemFactory(section=section, owner=dev, text="Heading", kind=ItemKind.GROUP)

    digest = _by_user(release_digests(release, DAY))["dev"]

    assert [i.label for i in digest.items] == ["p95 latency", "Write the runbook"]
    assert digest.items[0].failing and digest.items[0].target == "< 200 ms"
    assert digest.items[0].actual == "350 ms"
    assert digest.items[0].url.startswith(f"{BASE_URL}/admin/checklist/item/")


def test_release_digests_lists_overdue_actions_first_with_days_when_actions_overdue(pm):
    release, _ = release_in_review(pm)
    ops = person("ops")
    ActionItemFactory(release=release, owner=ops, key="A-001", due_date=DAY, order=1)
    ActionItemFactory(
        release=release, owner=ops, key="A-002", due_date=DAY - datetime.timedelta(days=4), order=2
    )
    ActionItemFactory(
        release=release,
        owner=ops,
        key="A-003",
        status=ItemStatus.COMPLETE,
        order=3,
        due_date=DAY - datetime.timedelta(days=9),
    )

    digest = _by_user(release_digests(release, DAY))["ops"]

    assert [(a.label.split(":")[0], a.days_overdue) for a in digest.actions] == [
        ("A-002", 4),
        ("A-001", 0),
    ]
    assert "/admin/risks/actionitem/" in digest.actions[0].url


# ---------------------------------------------------------------- sign-offs
def test_release_digests_lists_waiting_signoffs_when_release_in_review(pm):
    release, _ = release_in_review(pm)
    qa, sec = person("qa"), person("sec")
    waiting = SignoffRequirementFactory(release=release, role="QA Lead", assignee=qa)
    signed = SignoffRequirementFactory(release=release, role="Security Officer", assignee=sec)
    signature(signed)

    digests = _by_user(release_digests(release, DAY))

    assert set(digests) == {"qa"}
    assert [s.role for s in digests["qa"].signoffs] == ["QA Lead"]
    assert digests["qa"].signoffs[0].url == (
        f"{BASE_URL}/admin/signoffs/signoffrequirement/{waiting.pk}/sign/"
    )


def test_release_digests_lists_stale_signature_to_renew_when_release_changed_after_signing(pm):
    release, _ = release_in_review(pm)
    qa = person("qa")
    requirement = SignoffRequirementFactory(release=release, role="QA Lead", assignee=qa)
    signature(requirement, state=SignatureState.STALE)

    digest = _by_user(release_digests(release, DAY))["qa"]

    assert [s.role for s in digest.stale] == ["QA Lead"]
    assert digest.stale[0].signed_at is not None
    assert digest.signoffs == ()  # listed once, as a renewal


def test_release_digests_lists_no_signoffs_when_release_is_draft(pm, settings):
    settings.REMINDER_SEND_FOR_STATUSES = ["draft", "in_review"]
    release = ReleaseFactory(status=ReleaseStatus.DRAFT, owner=pm)
    SignoffRequirementFactory(release=release, role="QA Lead", assignee=person("qa"))

    assert release_digests(release, DAY) == []


# ---------------------------------------------------------------- nothing to say
def test_release_digests_returns_nothing_when_everything_is_done(pm):
    release, section = release_in_review(pm)
    dev = person("dev")
    ItemFactory(section=section, owner=dev, complete=True)
    ActionItemFactory(release=release, owner=dev, status=ItemStatus.COMPLETE)
    requirement = SignoffRequirementFactory(release=release, role="QA Lead", assignee=dev)
    signature(requirement)

    assert release_digests(release, DAY) == []
    assert digests_due(DAY) == []


def test_release_digests_skips_people_when_inactive_or_without_email(pm):
    release, section = release_in_review(pm)
    ItemFactory(section=section, owner=person("gone", is_active=False))
    nomail = person("nomail")
    nomail.email = ""
    nomail.save()
    ItemFactory(section=section, owner=nomail)

    assert release_digests(release, DAY) == []


# ---------------------------------------------------------------- escalation
@pytest.mark.parametrize(("days_overdue", "escalated"), [(2, False), (3, True)])
def test_release_digests_escalates_overdue_action_when_past_threshold(pm, days_overdue, escalated):
    release, _ = release_in_review(pm)
    ops = person("ops")
    due = DAY - datetime.timedelta(days=days_overdue)
    ActionItemFactory(release=release, owner=ops, key="A-007", due_date=due)

    digests = _by_user(release_digests(release, DAY))

    assert ("pm" in digests) is escalated
    if escalated:
        line = digests["pm"].escalation.overdue_actions[0]
        assert (line.label.split(":")[0], line.days_overdue) == ("A-007", days_overdue)
        assert "Ops Tester (ops)" in line.owner
    assert not digests["ops"].escalation  # only the owner hears of escalations


@pytest.mark.parametrize(("days_left", "escalated"), [(4, False), (3, True), (0, True), (-2, True)])
def test_release_digests_escalates_missing_signoffs_when_go_no_go_close(pm, days_left, escalated):
    release, _ = release_in_review(pm, go_no_go_date=DAY + datetime.timedelta(days=days_left))
    SignoffRequirementFactory(release=release, role="CEO", assignee=person("ceo"))
    signed = SignoffRequirementFactory(release=release, role="CTO", assignee=person("cto"))
    signature(signed)

    digests = _by_user(release_digests(release, DAY))

    assert ("pm" in digests) is escalated
    if escalated:
        escalation = digests["pm"].escalation
        assert [s.role for s in escalation.missing_signoffs] == ["CEO"]
        assert escalation.days_to_go_no_go == days_left


def test_release_digests_escalates_no_signoff_when_go_no_go_date_unknown(pm):
    release, _ = release_in_review(pm, go_no_go_date=None)
    SignoffRequirementFactory(release=release, role="CEO", assignee=person("ceo"))

    assert "pm" not in _by_user(release_digests(release, DAY))


# ---------------------------------------------------------------- cadence and status
@pytest.mark.parametrize(
    ("cadence", "day", "due"),
    [
        (ReviewCadence.DAILY, SATURDAY, True),
        (ReviewCadence.WEEKDAYS, DAY, True),
        (ReviewCadence.WEEKDAYS, SATURDAY, False),
        (ReviewCadence.WEEKLY, MONDAY, True),
        (ReviewCadence.WEEKLY, DAY, False),
        (ReviewCadence.OFF, MONDAY, False),
    ],
)
def test_cadence_due_follows_release_cadence(cadence, day, due):
    assert cadence_due(cadence, day) is due


@pytest.mark.parametrize(
    ("status", "configured", "due"),
    [
        (ReleaseStatus.IN_REVIEW, ["in_review"], True),
        (ReleaseStatus.DRAFT, ["in_review"], False),
        (ReleaseStatus.DECIDED, ["in_review"], False),
        (ReleaseStatus.DECIDED, ["in_review", "decided"], True),
    ],
)
def test_releases_due_sends_for_configured_statuses_only(pm, settings, status, configured, due):
    settings.REMINDER_SEND_FOR_STATUSES = configured
    release = ReleaseFactory(status=status, owner=pm)

    assert (release in releases_due(DAY)) is due


def test_releases_due_skips_release_when_cadence_off(pm):
    release, _ = release_in_review(pm, review_cadence=ReviewCadence.OFF)

    assert release not in releases_due(DAY)


# ---------------------------------------------------------------- what changed
def test_release_digests_lists_changes_since_last_sent_digest_when_one_was_sent(pm):
    release, section = release_in_review(pm)
    dev = person("dev")
    item = ItemFactory(section=section, owner=dev, text="Load test")
    ReminderDispatch.objects.create(
        recipient=dev,
        release=release,
        date=DAY - datetime.timedelta(days=1),
        status=DispatchStatus.SENT,
        sent_at=timezone.now(),
    )
    item.status = ItemStatus.IN_PROGRESS
    item._change_reason = "Started"
    item.save()

    digest = _by_user(release_digests(release, DAY))["dev"]

    assert len(digest.changes) == 1
    assert "Load test" in digest.changes[0].what
    assert "Status: Not started → In progress" in digest.changes[0].detail


def test_release_digests_caps_changes_when_more_than_shown(pm, settings):
    settings.REMINDER_CHANGES_SHOWN = 3
    release, section = release_in_review(pm)
    dev = person("dev")
    for n in range(6):
        ItemFactory(section=section, owner=dev, text=f"Item {n}")

    digest = _by_user(release_digests(release, DAY))["dev"]

    assert len(digest.changes) == 3
    assert digest.changes_more
    assert "3+ change(s)" in digest.summary


# ---------------------------------------------------------------- one person, one release
def test_digest_for_returns_none_when_person_has_nothing_to_do(pm):
    release, section = release_in_review(pm)
    ItemFactory(section=section, owner=person("dev"))

    assert digest_for(recipient_id=pm.pk, release=release, date=DAY) is None


def test_one_line_removes_line_breaks_when_title_has_them():
    assert one_line("v1\r\nBcc: victim@example.com\n") == "v1 Bcc: victim@example.com"


# ---------------------------------------------------------------- queries
def _populate(release, section, people: int, items_each: int, first: int = 0) -> None:
    for n in range(first, first + people):
        user = person(f"worker{release.pk}x{n}")
        for _ in range(items_each):
            ItemFactory(section=section, owner=user)
        ActionItemFactory(release=release, owner=user, due_date=DAY - datetime.timedelta(days=5))
        requirement = SignoffRequirementFactory(release=release, assignee=user)
        if n % 2:
            signature(requirement, state=SignatureState.STALE)


def _count_queries(django_assert_max_num_queries, limit: int) -> int:
    with django_assert_max_num_queries(limit) as captured:
        digests = digests_due(DAY)
    assert digests
    return len(captured.captured_queries)


# One query for the releases, then a fixed number per release (items, actions, sign-offs,
# signatures, people, last digests, the review's start and the change trail).
QUERIES_PER_RELEASE = 15


def test_digests_due_queries_grow_with_releases_not_people_or_items_when_release_is_large(
    pm, django_assert_max_num_queries
):
    release, section = release_in_review(pm, go_no_go_date=DAY)
    _populate(release, section, people=2, items_each=2)
    small = _count_queries(django_assert_max_num_queries, 1 + QUERIES_PER_RELEASE)
    _populate(release, section, people=12, items_each=8, first=2)

    large = _count_queries(django_assert_max_num_queries, 1 + QUERIES_PER_RELEASE)

    assert large == small, (small, large)
    assert len(digests_due(DAY)) == 15  # 14 workers and the PM (escalations)


def test_digests_due_queries_pinned_per_release_when_two_releases(
    pm, django_assert_max_num_queries
):
    for _ in range(2):
        release, section = release_in_review(pm)
        _populate(release, section, people=5, items_each=4)

    _count_queries(django_assert_max_num_queries, 1 + 2 * QUERIES_PER_RELEASE)


def test_release_digests_ignores_items_of_other_releases_when_person_works_on_two(pm):
    first, first_section = release_in_review(pm)
    second = SectionFactory(release=ReleaseFactory(status=ReleaseStatus.IN_REVIEW, owner=pm))
    dev = person("dev")
    ItemFactory(section=first_section, owner=dev, text="First release work")
    ItemFactory(section=second, owner=dev, text="Second release work")

    digests = [d for d in digests_due(DAY) if d.recipient_id == dev.pk]

    assert sorted(d.items[0].label for d in digests) == [
        "First release work",
        "Second release work",
    ]
    assert len({d.release_id for d in digests}) == 2
