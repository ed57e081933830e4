import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from checklist.choices import ItemStatus
from risks.choices import Level
from risks.models import ActionItem, Risk
from tests.factories import ActionItemFactory, ReleaseFactory, RiskFactory, UserFactory

RISKS = reverse("admin:risks_risk_changelist")
ACTIONS = reverse("admin:risks_actionitem_changelist")


def _days_ago(days: int) -> datetime.date:
    return timezone.localdate() - datetime.timedelta(days=days)


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context)


# ---------------------------------------------------------------- risks
@pytest.mark.django_db
def test_risk_changelist_shows_the_computed_score_when_listed(admin_client):
    RiskFactory(impact=Level.HIGH, probability=Level.HIGH, title="Data loss")
    RiskFactory(impact=Level.LOW, probability=Level.MEDIUM, title="Slow docs")

    html = admin_client.get(RISKS).content.decode()

    assert '<strong class="risk-score" style="color:#b91c1c">9</strong> / 9' in html
    assert '<strong class="risk-score" style="color:#15803d">2</strong> / 9' in html


@pytest.mark.parametrize(
    ("params", "shown", "hidden"),
    [
        ({"impact__exact": Level.HIGH}, "Data loss", "Slow docs"),
        ({"probability__exact": Level.MEDIUM}, "Slow docs", "Data loss"),
        ({"status__exact": ItemStatus.AT_RISK}, "Data loss", "Slow docs"),
    ],
)
@pytest.mark.django_db
def test_risk_changelist_filters_by_impact_probability_and_status_when_chosen(
    admin_client, params, shown, hidden
):
    RiskFactory(
        impact=Level.HIGH, probability=Level.HIGH, status=ItemStatus.AT_RISK, title="Data loss"
    )
    RiskFactory(impact=Level.LOW, probability=Level.MEDIUM, title="Slow docs")

    html = admin_client.get(RISKS, params).content.decode()

    assert shown in html
    assert hidden not in html


@pytest.mark.django_db
def test_risk_changelist_escapes_the_title_when_it_holds_markup(admin_client):
    RiskFactory(title="<b>bold</b> risk")

    html = admin_client.get(RISKS).content.decode()

    assert "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt; risk" in html


@pytest.mark.django_db
def test_risk_changelist_runs_a_constant_number_of_queries_when_risks_grow(admin_client):
    release = ReleaseFactory()
    owners = UserFactory.create_batch(3)

    def add(start: int, stop: int) -> None:
        Risk.objects.bulk_create(
            Risk(
                release=release,
                key=f"R-{n:03d}",
                title=f"Risk {n}",
                impact=list(Level)[n % 3],
                probability=list(Level)[(n + 1) % 3],
                owner=owners[n % 3] if n % 2 else None,
                order=n,
            )
            for n in range(start, stop)
        )

    add(0, 10)
    _queries(admin_client, RISKS)
    small = _queries(admin_client, RISKS)
    add(10, 500)

    assert _queries(admin_client, RISKS) == small


# ---------------------------------------------------------------- action items
@pytest.mark.django_db
def test_action_item_changelist_highlights_overdue_items_in_red_when_past_due(admin_client):
    ActionItemFactory(action="Late one", due_date=_days_ago(3))
    ActionItemFactory(action="Late but done", due_date=_days_ago(3), status=ItemStatus.COMPLETE)
    ActionItemFactory(action="Due later", due_date=_days_ago(-2))

    html = admin_client.get(ACTIONS).content.decode()

    assert html.count("Overdue by") == 1
    assert '<strong class="overdue" style="color:#b91c1c">Overdue by 3 days</strong>' in html


@pytest.mark.django_db
def test_action_item_overdue_filter_splits_overdue_from_the_rest_when_chosen(admin_client):
    ActionItemFactory(action="Late one", due_date=_days_ago(1))
    ActionItemFactory(action="Late but done", due_date=_days_ago(1), status=ItemStatus.COMPLETE)
    ActionItemFactory(action="No date known", due_date=None)

    overdue = admin_client.get(ACTIONS, {"overdue": "yes"}).content.decode()
    rest = admin_client.get(ACTIONS, {"overdue": "no"}).content.decode()

    assert "Late one" in overdue
    assert "Late but done" not in overdue and "No date known" not in overdue
    assert "Late one" not in rest
    assert "Late but done" in rest and "No date known" in rest


@pytest.mark.django_db
def test_action_item_page_says_overdue_by_one_day_when_due_yesterday(admin_client):
    item = ActionItemFactory(due_date=_days_ago(1))

    url = reverse("admin:risks_actionitem_change", args=[item.pk])
    html = admin_client.get(url).content.decode()

    assert "Overdue by 1 day<" in html


@pytest.mark.django_db
def test_action_item_changelist_runs_a_constant_number_of_queries_when_items_grow(admin_client):
    release = ReleaseFactory()
    owners = UserFactory.create_batch(3)

    def add(start: int, stop: int) -> None:
        ActionItem.objects.bulk_create(
            ActionItem(
                release=release,
                key=f"A-{n:03d}",
                action=f"Action {n}",
                owner=owners[n % 3] if n % 2 else None,
                due_date=_days_ago(n % 7 - 3),
                order=n,
            )
            for n in range(start, stop)
        )

    add(0, 10)
    url = f"{ACTIONS}?release__id__exact={release.pk}"
    _queries(admin_client, url)
    small = _queries(admin_client, url)
    add(10, 500)

    assert _queries(admin_client, url) == small


@pytest.mark.django_db
def test_risk_history_shows_level_labels_when_impact_changes(admin_client, admin_user):
    risk = RiskFactory(impact=Level.LOW)
    risk.impact = Level.HIGH
    risk._history_user = admin_user
    risk.save()

    response = admin_client.get(reverse("admin:risks_risk_history", args=[risk.pk]))

    html = " ".join(response.content.decode().split())
    assert "<strong>Impact:</strong> Low &nbsp;&rarr;&nbsp;&nbsp;High" in html
