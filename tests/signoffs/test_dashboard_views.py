import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from checklist.choices import ItemKind, ItemStatus
from checklist.models import Item
from risks.choices import Level
from signoffs.dashboard_views import release_visit_mark
from signoffs.documents import release_import
from signoffs.models import ReleaseVisit
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

EVIL = '<script>alert("x")</script>'


def _url(release) -> str:
    return reverse("admin:checklist_release_dashboard", args=[release.pk])


@pytest.fixture
def seed(seed_text):
    return release_import(text=seed_text, source_name="seed.md")


@pytest.fixture
def root():
    return UserFactory(username="root", superuser=True)


# ---------------------------------------------------------------- access
def test_dashboard_redirects_to_login_when_anonymous(client, review):
    release, _ = review
    response = client.get(_url(release))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_dashboard_is_404_when_staff_is_not_assigned_to_the_release(client, review):
    release, _ = review
    client.force_login(UserFactory(staff=True))
    assert client.get(_url(release)).status_code == 404


def test_dashboard_is_404_when_the_release_does_not_exist(client, root):
    client.force_login(root)
    assert client.get("/admin/checklist/release/999999/dashboard/").status_code == 404
    assert client.get("/admin/checklist/release/abc/dashboard/").status_code == 404


def test_dashboard_shows_the_release_when_the_stakeholder_is_assigned(client, review):
    release, roles = review
    qa = roles["QA Lead"].assignee
    client.force_login(qa)
    response = client.get(_url(release))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"Dashboard — {release}" in body
    sign = reverse("admin:signoffs_signoffrequirement_sign", args=[roles["QA Lead"].pk])
    assert f'href="{sign}">Sign as QA Lead</a>' in body
    assert "Missing valid sign-off: Security Officer" in body
    assert "GO not possible yet" in body


def test_dashboard_shows_the_release_when_superuser(client, review, root):
    release, _ = review
    client.force_login(root)
    response = client.get(_url(release))
    assert response.status_code == 200
    assert 'id="panel-gate"' in response.content.decode()


def test_release_page_links_to_the_dashboard_when_opened(client, review, root):
    release, _ = review
    client.force_login(root)
    response = client.get(reverse("admin:checklist_release_change", args=[release.pk]))
    assert f'href="{_url(release)}">Dashboard</a>' in response.content.decode()


# ---------------------------------------------------------------- figures on the page
def test_dashboard_shows_the_seed_figures_when_imported(client, seed, root):
    client.force_login(root)
    body = client.get(_url(seed)).content.decode()
    assert "checklist items complete (2 / 368)" in body
    assert "1 / 13</span>tasks complete, 1 in progress; 13 / 81 story points" in body
    assert "<td>1 Sprint 18 Tasks</td><td>72</td><td>2</td><td>1</td><td>69</td>" in body
    assert "<strong>0</strong> failing" in body
    assert "<strong>44</strong> not measured" in body
    # the heat map: HIGH × MEDIUM holds
    cell = body.split('data-impact="HIGH" data-probability="MEDIUM"')[1].split("</a>")[0]
    assert ">3</text>" in cell
    risks = reverse("admin:risks_risk_changelist")
    assert (
        f"{risks}?release__id__exact={seed.pk}&amp;impact__exact=HIGH&amp;probability__exact=MEDIUM"
        in body
    )
    assert "Open action items (5," in body
    assert "No go/no-go date is set" in body
    assert "Sprint 18 Day 14" in body


def test_dashboard_lists_failing_metrics_first_with_days_overdue_when_set(client, root):
    release = ReleaseFactory()
    section = SectionFactory(release=release)
    ItemFactory(section=section, text="fine metric", failing=True, actual_value=Decimal(10))
    ItemFactory(section=section, text="broken metric", failing=True)
    ActionItemFactory(
        release=release, key="A-9", due_date=timezone.localdate() - datetime.timedelta(days=3)
    )
    client.force_login(root)
    body = client.get(_url(release)).content.decode()
    assert body.index("broken metric") < body.index("fine metric")
    assert "✘ fail" in body and "✔ pass" in body
    assert "Overdue by 3 days" in body


def test_dashboard_links_a_criterion_to_what_decides_it_when_linked(client, review, root):
    release, roles = review
    item = release.items.get()
    criterion = CriterionFactory(release=release, text="Latency holds")
    criterion.items.add(item)
    criterion.requirements.add(roles["QA Lead"])
    manual = CriterionFactory(release=release, text="Docs done", manual_verdict=True)
    client.force_login(root)
    body = client.get(_url(release)).content.decode()
    assert reverse("admin:checklist_item_change", args=[item.pk]) in body
    sign = reverse("admin:signoffs_signoffrequirement_sign", args=[roles["QA Lead"].pk])
    assert f'<a href="{sign}">sign-off QA Lead</a>' in body
    manual_url = reverse("admin:signoffs_criterion_change", args=[manual.pk])
    assert f'<a href="{manual_url}">manual verdict</a>' in body


# ---------------------------------------------------------------- escaping
def test_dashboard_escapes_user_text_when_it_holds_markup(client, root):
    release = ReleaseFactory()
    section = SectionFactory(release=release, title=EVIL)
    ItemFactory(section=section, text=EVIL, metric=True, owner=root)
    RiskFactory(release=release, title=EVIL, owner=root, impact=Level.LOW)
    ActionItemFactory(release=release, action=EVIL)
    CriterionFactory(release=release, text=EVIL)
    client.force_login(root)
    body = client.get(_url(release)).content.decode()
    assert "<script>" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    # the category label inside the SVG progress bar is escaped too
    assert 'aria-label="1 &lt;script&gt;' not in body  # section number not in the label
    assert 'aria-label="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; items: 0%"' in body


# ---------------------------------------------------------------- the visit mark
def test_dashboard_marks_the_visit_and_lists_changes_since_when_visited_again(client, review, pm):
    from signoffs.services import release_access_refresh

    release, _ = review
    release_access_refresh(release=release, user=pm)  # the owner sees the release
    client.force_login(pm)
    first = client.get(_url(release)).content.decode()
    assert "This is your first visit" in first
    mark = ReleaseVisit.objects.get(user=pm, release=release)
    seen = mark.seen_at
    item = release.items.get()
    item.text = "p95 latency, now measured"
    item.save()  # recorded now, after the first visit
    second = client.get(_url(release)).content.decode()
    assert "p95 latency, now measured" in second
    assert "Text: p95 latency → p95 latency, now measured" in second
    assert ReleaseVisit.objects.filter(user=pm, release=release).count() == 1
    mark.refresh_from_db()
    assert mark.seen_at > seen
    third = client.get(_url(release)).content.decode()
    assert "Nothing changed since your last visit" in third


def test_release_visit_mark_returns_the_previous_visit_when_called_twice(review, pm):
    release, _ = review
    t1 = timezone.now()
    t2 = t1 + datetime.timedelta(hours=1)
    assert release_visit_mark(release=release, user=pm, at=t1) is None
    assert release_visit_mark(release=release, user=pm, at=t2) == t1
    assert ReleaseVisit.objects.get(user=pm, release=release).seen_at == t2


# ---------------------------------------------------------------- queries
def _release_with(n: int, user):
    release = ReleaseFactory()
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
            owner=user if i % 5 == 0 else None,
            status=ItemStatus.COMPLETE if i % 4 == 0 else ItemStatus.NOT_STARTED,
        )
        if kind == ItemKind.TASK:
            item.key, item.points = f"T-{i}", 2
        if kind == ItemKind.METRIC:
            item.target_op, item.target_value, item.target_unit = ">", Decimal(50), "%"
            item.actual_value, item.actual_unit = Decimal(i % 100), "%"
            item.target_met = item.compute_target_met()
        rows.append(item)
    bulk_create_with_history(rows, Item, batch_size=500)
    RiskFactory(release=release)
    ActionItemFactory(release=release)
    CriterionFactory(release=release).items.add(*Item.objects.filter(release=release)[:3])
    SignoffRequirementFactory(release=release, assignee=user)
    return release


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_dashboard_query_count_is_the_same_when_items_go_from_10_to_2000(
    client, root, django_assert_max_num_queries
):
    small, large = _release_with(10, root), _release_with(2000, root)
    client.force_login(root)
    client.get(_url(small)), client.get(_url(large))  # first visits: the mark is created
    counts = {_count(client, _url(small)), _count(client, _url(large))}
    assert len(counts) == 1, counts
    with django_assert_max_num_queries(55):
        client.get(_url(large))


# ---------------------------------------------------------------- the admin index
def test_admin_index_lists_only_visible_releases_with_readiness_when_signed_in(client, review):
    release, roles = review
    hidden = ReleaseFactory(name="Hidden release")
    client.force_login(roles["QA Lead"].assignee)
    body = client.get(reverse("admin:index")).content.decode()
    assert 'id="releases-overview"' in body
    assert str(release) in body
    assert "Hidden release" not in body and hidden.version not in body
    assert f'href="{_url(release)}" class="dashboard-link">{release}</a>' in body
    assert "0 / 1 (0%)" in body
    assert "✘ Not yet" in body


def test_admin_index_shows_go_possible_and_percent_when_the_gate_is_open(client, root):
    release = ReleaseFactory(name="Ready release")
    section = SectionFactory(release=release)
    ItemFactory(section=section, complete=True)
    ItemFactory(section=section, complete=True)
    ItemFactory(section=section, complete=True)
    ItemFactory(section=section)
    client.force_login(root)
    body = client.get(reverse("admin:index")).content.decode()
    assert "3 / 4 (75%)" in body
    assert "✔ GO possible" in body


def test_admin_index_query_count_is_bounded_when_releases_grow(client, root):
    client.force_login(root)
    ReleaseFactory()
    few = _count(client, reverse("admin:index"))
    for _ in range(15):
        SignoffRequirementFactory(release=ReleaseFactory())
    many = _count(client, reverse("admin:index"))
    # at most 10 releases are evaluated, each with the gate's fixed number of queries
    assert many <= few + 9 * 8
    body = client.get(reverse("admin:index")).content.decode()
    assert body.count('class="dashboard-link"') == 10
    assert "6 more" in body


def test_admin_index_has_no_release_list_when_the_user_sees_none(client):
    client.force_login(UserFactory(staff=True))
    body = client.get(reverse("admin:index")).content.decode()
    assert 'id="releases-overview"' not in body
