"""Journey 1, the product manager: imports the team's checklist through the admin's upload page,
opens the release and its dashboard, filters the metrics, enters an actual that misses its
target and sees it fail, gives a stakeholder a signing role and opens the review."""

from __future__ import annotations

import re

import pytest
from django.urls import NoReverseMatch, reverse

from checklist.choices import ReleaseStatus
from checklist.models import Item, Release
from tests.browser.conftest import PASSWORD, PHONE
from tests.conftest import SEED_PATH
from tests.factories import ReleaseFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SEED_VERSION = "v0.3.0"
METRIC = "Single prediction p95"


@pytest.fixture
def people(transactional_db):
    """A product manager (the demo's PM group: may add releases) who owns last release, and a
    stakeholder who will sign as QA Lead."""
    from fixtures.demo import PM_GROUP, ensure_groups
    from signoffs.services import release_access_refresh

    groups = ensure_groups()
    pm = UserFactory(username="pm", staff=True, first_name="Priya", last_name="Manager")
    pm.groups.add(groups[PM_GROUP])
    previous = ReleaseFactory(
        owner=pm, version="v0.2.0", name="Release 1", status=ReleaseStatus.DECIDED
    )
    release_access_refresh(release=previous, user=pm)
    qa = UserFactory(username="qa.lead", staff=True, first_name="Quinn", last_name="Assurance")
    return pm, qa


def _dashboard_exists() -> bool:
    try:
        reverse("admin:checklist_release_dashboard", args=[1])
    except NoReverseMatch:
        return False
    return True


def test_pm_journey_imports_measures_assigns_and_opens_review(open_session, people):
    pm, qa = people
    me = open_session()
    page = me.page

    # Log in and find the upload page from the releases list.
    me.goto("/admin/")
    me.login("pm")
    page.get_by_role("link", name="Releases").first.click()
    me.hide_nav()  # the checklist's tables are wide
    page.get_by_role("link", name="Import a checklist…").click()
    page.wait_for_url(re.compile(r"/admin/checklist/release/import/$"))
    page.get_by_role("heading", name="Import a checklist").wait_for()

    # A file that is not a checklist is refused with its name and line; nothing is written.
    page.get_by_label("Markdown checklist").set_input_files(
        files=[{"name": "notes.md", "mimeType": "text/markdown", "buffer": b"hello\x00world\n"}]
    )
    page.get_by_role("button", name="Import").click()
    assert page.locator(".import-errors").inner_text().startswith("notes.md:1: contains NUL")
    assert not Release.objects.filter(version=SEED_VERSION).exists()

    # The seed is imported; the release page shows it with a success message.
    page.get_by_label("Markdown checklist").set_input_files(str(SEED_PATH))
    me.shot("journey-pm-import")
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"/admin/checklist/release/\d+/change/$"))
    release = Release.objects.get(version=SEED_VERSION)
    assert release.owner == pm
    assert (
        f"Imported {release} from seed_checklist.md"
        in page.locator(".messagelist:not(.frozen-banner)").inner_text()
    )
    page.locator("table.release-summary").wait_for()
    page.locator("table.signoff-matrix").wait_for()
    me.shot("journey-pm-release")

    # The dashboard, when this build has it.
    if _dashboard_exists():
        page.get_by_role("link", name="Dashboard", exact=True).first.click()
        page.wait_for_url(re.compile(r"/dashboard/$"))
        assert SEED_VERSION in page.locator("#content").inner_text()
        me.shot("journey-pm-dashboard")
        page.go_back()

    # Items of the release → the target filter: nothing measured fails yet.
    page.get_by_role("link", name="Failing targets", exact=True).first.click()
    page.wait_for_url(re.compile(r"target=failing"))
    assert METRIC not in page.locator("#changelist").inner_text()

    # Find the metric, enter an actual that misses "< 500 ms" on its page.
    page.get_by_role("link", name="— metric not measured").click()
    page.locator("#searchbar").fill(METRIC)
    page.locator("#searchbar").press("Enter")
    page.wait_for_url(re.compile(r"[?&]q=Single"))
    row = page.locator("#result_list tbody tr", has_text=METRIC)
    row.locator(".target-unmeasured").wait_for()
    assert page.locator("#result_list tbody tr").count() == 1
    row.get_by_role("link", name=re.compile(METRIC)).click()
    page.locator("#id_actual_value").fill("750")
    page.locator("#id_actual_unit").fill("ms")
    page.get_by_role("button", name="Save and continue editing").click()
    assert page.locator(".field-pass_fail_column .target-fail").inner_text() == "✘ fail"
    me.shot_of("fieldset:has(.field-pass_fail_column)", "journey-pm-actual-fails")
    item = Item.objects.get(release=release, text__startswith=METRIC)
    assert item.target_met is False
    assert item.history.first().history_user == pm

    # The failing filter now lists it, with the red badge.
    me.goto(reverse("admin:checklist_item_changelist") + f"?release__id__exact={release.pk}")
    page.get_by_role("link", name="✘ failing").click()
    page.wait_for_url(re.compile(r"target=failing"))
    row = page.locator("#result_list tbody tr", has_text=METRIC)
    assert row.locator(".target-fail").inner_text() == "✘ fail"
    # The list fits 1280 px: pass/fail is in view with no horizontal scrolling.
    results = page.locator("#changelist .results")
    assert results.evaluate("table => table.scrollWidth <= table.clientWidth")
    assert row.locator(".target-fail").is_visible()
    box, view = row.locator(".target-fail").bounding_box(), page.viewport_size
    assert box is not None and box["x"] + box["width"] <= view["width"]
    me.shot("journey-pm-failing")

    # Roles and access: QA Lead is signed by the stakeholder.
    me.goto(reverse("admin:checklist_release_change", args=[release.pk]))
    page.get_by_role("link", name="Roles and access").click()
    page.get_by_label(re.compile(r"^QA Lead")).select_option(label="qa.lead")
    me.shot("journey-pm-roles")
    page.get_by_role("button", name="Save roles").click()
    assert "QA Lead: qa.lead" in page.locator(".messagelist:not(.frozen-banner)").inner_text()
    assert release.signoff_requirements.get(role="QA Lead").assignee == qa

    # Open the review from the releases list (an admin action).
    me.goto(reverse("admin:checklist_release_changelist"))
    page.locator("#result_list tbody tr", has_text=SEED_VERSION).locator(
        "input.action-select"
    ).check()
    page.locator("select[name=action]").select_option(value="open_review")
    page.get_by_role("button", name="Go", exact=True).click()
    assert (
        "Review opened for 1 release(s)."
        in page.locator(".messagelist:not(.frozen-banner)").inner_text()
    )
    release.refresh_from_db()
    assert release.status == ReleaseStatus.IN_REVIEW
    me.shot("journey-pm-review-opened")

    # The release page is usable on a phone: the summary and the matrix are reachable.
    phone = open_session(PHONE)
    phone.goto(reverse("admin:checklist_release_change", args=[release.pk]))
    phone.login("pm", PASSWORD)
    phone.page.locator("table.signoff-matrix").scroll_into_view_if_needed()
    phone.page.locator("table.signoff-matrix").wait_for()
    phone.shot("journey-pm-release-phone")

    assert me.csp_violations() == [] and phone.csp_violations() == []
