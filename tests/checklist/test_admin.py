import re
from decimal import Decimal

import pytest
from django.contrib.messages import ERROR, SUCCESS, get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from checklist.admin_version import VERSION_FIELD, version_token
from checklist.choices import ItemKind, ItemStatus, ReleaseStatus
from checklist.models import Item, Release, Section
from tests.factories import (
    ItemFactory,
    ReleaseFactory,
    SectionFactory,
    SignoffRequirementFactory,
    UserFactory,
)

ITEMS = reverse("admin:checklist_item_changelist")
RELEASES = reverse("admin:checklist_release_changelist")
SECTIONS = reverse("admin:checklist_section_changelist")
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _latest(obj):
    return obj.history.order_by("-history_id").first()


def _action(client, action: str, items, url: str = ITEMS):
    return client.post(
        url,
        {"action": action, "_selected_action": [i.pk for i in items], "index": 0},
        follow=True,
    )


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


# ---------------------------------------------------------------- item changelist
@pytest.mark.django_db
def test_item_changelist_shows_badge_target_and_pass_fail_when_items_vary(admin_client):
    section = SectionFactory(title="Performance")
    ItemFactory(section=section, failing=True, text="API p95 latency")
    ItemFactory(section=section, metric=True, actual_value=Decimal("150"), text="DB query")
    ItemFactory(section=section, complete=True, text="Plain check")

    html = admin_client.get(ITEMS).content.decode()

    assert "✅ Complete" in html
    assert "⚪ Not started" in html
    assert "✘ fail" in html and "✔ pass" in html
    assert "&lt; 200 ms" in html  # the target, escaped
    assert '<td class="field-actual_column">350 ms</td>' in html  # no trailing zeros
    assert '<td class="field-actual_column">150</td>' in html  # no unit entered


@pytest.mark.django_db
def test_item_changelist_escapes_item_text_when_it_holds_markup(admin_client):
    ItemFactory(text=XSS)

    html = admin_client.get(ITEMS).content.decode()

    assert XSS not in html
    assert XSS_ESCAPED in html


@pytest.mark.django_db
def test_item_changelist_shows_the_section_number_with_its_title_on_hover(admin_client):
    section = SectionFactory(number="1.1", title=f"Production Readiness {XSS}")
    ItemFactory(section=section, release=section.release)

    html = admin_client.get(ITEMS).content.decode()

    cell = re.search(r'<td class="field-section_column">(.*?)</td>', html).group(1)
    assert ">1.1</span>" in cell and "Production Readiness" in cell
    assert XSS not in html and XSS_ESCAPED in cell


@pytest.mark.django_db
def test_item_changelist_shows_the_owner_label_when_no_user_is_assigned(admin_client):
    ItemFactory(owner_label="QA Lead")
    ItemFactory(owner=UserFactory(username="alice"))

    html = admin_client.get(ITEMS).content.decode()

    assert "QA Lead" in html and "alice" in html


@pytest.mark.parametrize(
    ("value", "expected", "absent"),
    [
        ("failing", "Fails target", "Meets target"),
        ("passing", "Meets target", "Fails target"),
        ("unmeasured", "Not measured", "Fails target"),
    ],
)
@pytest.mark.django_db
def test_item_target_filter_lists_only_matching_items_when_chosen(
    admin_client, value, expected, absent
):
    section = SectionFactory()
    ItemFactory(section=section, failing=True, text="Fails target")
    ItemFactory(section=section, metric=True, actual_value=Decimal("10"), text="Meets target")
    ItemFactory(section=section, metric=True, text="Not measured")

    html = admin_client.get(ITEMS, {"target": value}).content.decode()

    assert expected in html
    assert absent not in html


@pytest.mark.django_db
def test_item_section_filter_includes_subsections_when_a_top_section_is_chosen(admin_client):
    top = SectionFactory(number="2", title="Performance")
    sub = SectionFactory(release=top.release, parent=top, number="2.1", title="API")
    other = SectionFactory(release=top.release, number="3", title="Security")
    ItemFactory(section=sub, text="In the subsection")
    ItemFactory(section=other, text="In another section")

    html = admin_client.get(
        ITEMS, {"release__id__exact": top.release_id, "section_tree": top.pk}
    ).content.decode()

    assert "In the subsection" in html
    assert "In another section" not in html


@pytest.mark.django_db
def test_item_changelist_filters_by_release_status_kind_and_owner_when_chosen(admin_client):
    alice = UserFactory(username="alice")
    wanted = ItemFactory(owner=alice, status=ItemStatus.BLOCKED, task=True, text="Wanted")
    ItemFactory(section=wanted.section, text="Same release, other status")
    ItemFactory(task=True, status=ItemStatus.BLOCKED, owner=alice, text="Other release")

    html = admin_client.get(
        ITEMS,
        {
            "release__id__exact": wanted.release_id,
            "status__exact": ItemStatus.BLOCKED,
            "kind__exact": ItemKind.TASK,
            "owner__id__exact": alice.pk,
        },
    ).content.decode()

    assert "Wanted" in html
    assert "Same release, other status" not in html
    assert "Other release" not in html


@pytest.mark.django_db
def test_item_changelist_finds_items_by_text_key_and_owner_when_searched(admin_client):
    ItemFactory(task=True, key="DCMMS-141", text="Final Performance Validation")
    ItemFactory(text="Unrelated", owner_label="Security Officer")

    assert "Final Performance" in admin_client.get(ITEMS, {"q": "DCMMS-141"}).content.decode()
    html = admin_client.get(ITEMS, {"q": "security officer"}).content.decode()
    assert "Unrelated" in html and "Final Performance" not in html


# ---------------------------------------------------------------- item actions
@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("mark_complete", ItemStatus.COMPLETE),
        ("mark_in_progress", ItemStatus.IN_PROGRESS),
        ("mark_blocked", ItemStatus.BLOCKED),
        ("mark_at_risk", ItemStatus.AT_RISK),
    ],
)
@pytest.mark.django_db
def test_item_status_action_saves_each_item_with_history_when_run(
    admin_client, admin_user, action, status
):
    section = SectionFactory()
    chosen = ItemFactory.create_batch(2, section=section)
    untouched = ItemFactory(section=section)

    response = _action(admin_client, action, chosen)

    assert response.status_code == 200
    for item in chosen:
        item.refresh_from_db()
        assert item.status == status
        record = _latest(item)
        assert record.history_user == admin_user
        assert record.status == status
    untouched.refresh_from_db()
    assert untouched.status == ItemStatus.NOT_STARTED
    assert (SUCCESS, f"2 item(s) marked {ItemStatus(status).label}.") in _messages(response)


@pytest.mark.django_db
def test_item_status_action_reports_an_error_and_changes_nothing_when_an_item_is_invalid(
    admin_client,
):
    section = SectionFactory()
    good = ItemFactory(section=section)
    bad = ItemFactory(section=section)
    Item.objects.filter(pk=bad.pk).update(text="")

    response = _action(admin_client, "mark_complete", [good, bad])

    errors = [text for level, text in _messages(response) if level == ERROR]
    assert errors and "cannot be blank" in errors[0]
    good.refresh_from_db()
    assert good.status == ItemStatus.NOT_STARTED


# ---------------------------------------------------------------- item writes: form, bulk action
@pytest.mark.django_db
def test_item_changelist_writes_nothing_when_row_forms_are_posted(admin_client):
    """The list is read-only apart from the bulk status actions: a row form posted to it (as
    the in-place editing it once had would send) changes nothing and leaves no history."""
    item = ItemFactory(metric=True)
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(item.pk),
        "form-0-status": ItemStatus.AT_RISK,
        "form-0-actual_value": "0.35",
        "form-0-actual_unit": "s",
        "_save": "Save",
    }
    records = item.history.count()

    response = admin_client.post(ITEMS, data)

    assert response.status_code == 200
    assert 'name="form-0-status"' not in response.content.decode()
    item.refresh_from_db()
    assert (item.status, item.actual_value) == (ItemStatus.NOT_STARTED, None)
    assert item.history.count() == records


@pytest.mark.django_db
def test_item_change_form_records_history_with_the_admin_user_when_saved(admin_client, admin_user):
    item = ItemFactory(metric=True, text="API p95 latency")
    url = reverse("admin:checklist_item_change", args=[item.pk])
    data = {
        "release": item.release_id,
        "section": item.section_id,
        "order": 3,
        "kind": ItemKind.METRIC,
        "text": "API p95 latency",
        "status": ItemStatus.IN_PROGRESS,
        "target_op": "<",
        "target_value": "200",
        "target_unit": "ms",
        "actual_label": "Actual",
        "actual_value": "180",
        "actual_unit": "ms",
        VERSION_FIELD: version_token(item),
    }

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    item.refresh_from_db()
    assert item.target_met is True
    assert _latest(item).history_user == admin_user


# ---------------------------------------------------------------- history
@pytest.mark.django_db
def test_item_history_shows_a_readable_escaped_diff_when_changed(admin_client, admin_user):
    item = ItemFactory(text="Before", failing=True)
    item.text = XSS
    item.status = ItemStatus.BLOCKED
    item.actual_value = Decimal("150")
    item.owner = admin_user
    item._history_user = admin_user
    item.save()

    response = admin_client.get(reverse("admin:checklist_item_history", args=[item.pk]))

    assert response.status_code == 200
    html = " ".join(response.content.decode().split())
    arrow = "&nbsp;&rarr;&nbsp;&nbsp;"
    assert XSS not in html
    assert f"<strong>Text:</strong> Before {arrow}{XSS_ESCAPED}" in html
    assert f"<strong>Status:</strong> Not started {arrow}Blocked" in html
    assert f"<strong>Actual value:</strong> 350 {arrow}150" in html
    assert f"<strong>Owner:</strong> — {arrow}admin" in html
    assert f'<a href="/admin/auth/user/{admin_user.pk}/change/">admin</a>' in html  # changed by


@pytest.mark.django_db
def test_item_history_version_has_no_revert_when_viewed(admin_client):
    item = ItemFactory()
    record = _latest(item)
    url = reverse("admin:checklist_item_simple_history", args=[item.pk, record.history_id])

    response = admin_client.get(url)

    assert response.status_code == 200
    assert 'value="Revert"' not in response.content.decode()


@pytest.mark.django_db
def test_item_history_version_refuses_a_post_when_asked_to_revert(admin_client):
    item = ItemFactory(text="Original")
    first = _latest(item)
    item.text = "Current"
    item.save()
    count = item.history.count()
    url = reverse("admin:checklist_item_simple_history", args=[item.pk, first.history_id])

    response = admin_client.post(
        url,
        {
            "release": item.release_id,
            "section": item.section_id,
            "order": 0,
            "kind": ItemKind.CHECK,
            "text": "Original",
            "status": ItemStatus.NOT_STARTED,
            "_save": "Revert",
        },
    )

    assert response.status_code == 403
    item.refresh_from_db()
    assert item.text == "Current"
    assert item.history.count() == count


# ---------------------------------------------------------------- release page
@pytest.mark.django_db
def test_release_page_shows_the_computed_summary_when_items_exist(admin_client):
    release = ReleaseFactory()
    tasks = SectionFactory(release=release, number="1", title="Sprint 18 Tasks", order=0)
    perf = SectionFactory(
        release=release, number="2", title="Performance Validation", category="Performance"
    )
    sub = SectionFactory(release=release, parent=perf, number="2.1", title="API")
    ItemFactory(section=tasks, task=True, points=8, status=ItemStatus.COMPLETE)
    ItemFactory(section=tasks, task=True, points=5, status=ItemStatus.IN_PROGRESS)
    ItemFactory(section=tasks, kind=ItemKind.GROUP)  # headings are not counted
    ItemFactory(section=sub, status=ItemStatus.BLOCKED)
    ItemFactory(section=sub, status=ItemStatus.AT_RISK)
    ItemFactory(section=sub, status=ItemStatus.COMPLETE)
    ItemFactory(section=sub)
    SignoffRequirementFactory(release=release, role="QA Lead")

    html = admin_client.get(reverse("admin:checklist_release_change", args=[release.pk])).content
    html = html.decode()

    cells = "".join(f"<td>{v}</td>" for v in ("1 Sprint 18 Tasks", 2, 1, 1, 0, 0, 0, "50%"))
    assert cells + "<td>8 / 13</td><td>62%</td>" in html
    cells = "".join(f"<td>{v}</td>" for v in ("2 Performance", 4, 1, 0, 1, 1, 1, "25%"))
    assert cells + "<td>—</td><td>—</td>" in html
    assert "<td>Stakeholder Sign-offs</td><td>1</td>" in html
    total = "".join(f"<td>{v}</td>" for v in ("TOTAL", 7, 2, 1, 2, 1, 1, "29%"))
    assert total + "<td>8 / 13</td><td>62%</td>" in html


@pytest.mark.django_db
def test_release_page_escapes_section_titles_when_they_hold_markup(admin_client):
    section = SectionFactory(title=XSS)
    ItemFactory(section=section)

    url = reverse("admin:checklist_release_change", args=[section.release_id])
    html = admin_client.get(url).content.decode()

    assert XSS not in html
    assert XSS_ESCAPED in html


@pytest.mark.django_db
def test_release_page_keeps_status_read_only_when_posted(admin_client):
    release = ReleaseFactory()
    url = reverse("admin:checklist_release_change", args=[release.pk])
    data = {
        "project": release.project,
        "name": release.name,
        "version": release.version,
        "status": ReleaseStatus.DECIDED,
        "review_cadence": "daily",
        "sections-TOTAL_FORMS": "0",
        "sections-INITIAL_FORMS": "0",
        "signoff_requirements-TOTAL_FORMS": "0",
        "signoff_requirements-INITIAL_FORMS": "0",
        VERSION_FIELD: version_token(release),
    }

    response = admin_client.post(url, data)

    assert response.status_code == 302
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DRAFT


@pytest.mark.django_db
def test_release_open_review_action_moves_draft_to_in_review_when_run(admin_client, admin_user):
    release = ReleaseFactory()

    response = _action(admin_client, "open_review", [release], url=RELEASES)

    release.refresh_from_db()
    assert release.status == ReleaseStatus.IN_REVIEW
    assert _latest(release).history_user == admin_user
    assert (SUCCESS, "Review opened for 1 release(s).") in _messages(response)


@pytest.mark.django_db
def test_release_open_review_action_reports_an_error_when_already_decided(admin_client):
    release = ReleaseFactory(status=ReleaseStatus.DECIDED, version="v7.0.0")

    response = _action(admin_client, "open_review", [release], url=RELEASES)

    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED
    errors = [text for level, text in _messages(response) if level == ERROR]
    assert errors == [f"{release}: A decided release cannot be opened for review."]


@pytest.mark.django_db
def test_release_changelist_shows_readiness_and_failing_targets_when_items_exist(admin_client):
    release = ReleaseFactory(version="v9.9.9")
    section = SectionFactory(release=release)
    ItemFactory(section=section, complete=True)
    ItemFactory(section=section, failing=True)
    ItemFactory(section=section, kind=ItemKind.GROUP)

    html = admin_client.get(RELEASES).content.decode()

    assert "1 / 2 (50%)" in html
    assert "✘ 1" in html


# ---------------------------------------------------------------- owner autocomplete
@pytest.mark.django_db
def test_item_owner_autocomplete_finds_users_when_typed(admin_client):
    UserFactory(username="qa.lead")
    url = reverse("admin:autocomplete")

    response = admin_client.get(
        url, {"app_label": "checklist", "model_name": "item", "field_name": "owner", "term": "qa"}
    )

    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["qa.lead"]


# ---------------------------------------------------------------- query counts
def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context)


def _add_items(section: Section, count: int, owners) -> None:
    Item.objects.bulk_create(
        Item(
            release_id=section.release_id,
            section=section,
            text=f"Bulk item {n}",
            kind=ItemKind.METRIC if n % 3 == 0 else ItemKind.CHECK,
            status=list(ItemStatus)[n % 5],
            owner=owners[n % len(owners)] if n % 2 else None,
            target_op="<" if n % 3 == 0 else "",
            target_value=Decimal("200") if n % 3 == 0 else None,
            target_unit="ms",
            target_met=(n % 6 == 0) if n % 3 == 0 else None,
            order=n,
        )
        for n in range(count)
    )


@pytest.mark.django_db
def test_item_changelist_runs_a_constant_number_of_queries_when_items_grow(
    admin_client, django_assert_max_num_queries
):
    owners = UserFactory.create_batch(5)
    release = ReleaseFactory()
    top = SectionFactory(release=release)
    section = SectionFactory(release=release, parent=top)
    _add_items(section, 10, owners)
    url = f"{ITEMS}?release__id__exact={release.pk}"
    _queries(admin_client, url)  # warm caches (content types, session)

    small = _queries(admin_client, url)
    _add_items(section, 490, owners)
    with django_assert_max_num_queries(small):
        admin_client.get(url)
    assert _queries(admin_client, url) == small


@pytest.mark.django_db
def test_release_pages_run_a_constant_number_of_queries_when_rows_grow(admin_client):
    owner = UserFactory()
    Release.objects.bulk_create(
        Release(project="p", name=f"R{n}", version=f"v{n}", owner=owner) for n in range(10)
    )
    release = Release.objects.first()
    section = SectionFactory(release=release)
    SignoffRequirementFactory.create_batch(3, release=release)
    _add_items(section, 10, [owner])
    change = reverse("admin:checklist_release_change", args=[release.pk])
    _queries(admin_client, RELEASES)

    small = (_queries(admin_client, RELEASES), _queries(admin_client, change))
    Release.objects.bulk_create(
        Release(project="p", name=f"R{n}", version=f"v{n}", owner=owner) for n in range(10, 500)
    )
    _add_items(section, 490, [owner])

    assert (_queries(admin_client, RELEASES), _queries(admin_client, change)) == small


@pytest.mark.django_db
def test_section_changelist_runs_a_constant_number_of_queries_when_sections_grow(admin_client):
    release = ReleaseFactory()
    top = SectionFactory(release=release)

    def add(start: int, stop: int) -> None:
        Section.objects.bulk_create(
            Section(release=release, parent=top, number=f"1.{n}", title=f"S{n}", order=n)
            for n in range(start, stop)
        )

    add(0, 10)
    _queries(admin_client, SECTIONS)
    small = _queries(admin_client, SECTIONS)
    add(10, 500)

    assert _queries(admin_client, SECTIONS) == small
