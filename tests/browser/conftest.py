"""Browser tests: Playwright for Python driving Debian's Chromium against pytest-django's live
server. Every test here is marked ``browser``; `make test` runs them when Chromium is installed
and says how to get it when it is not. In CI (CI=true) a missing Chromium or Playwright FAILS the
run: it is never a silent skip.

Never ``playwright install``: the browser is the distribution's ``/usr/bin/chromium``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls made from the
# test (fixtures, assertions) would otherwise be refused as "async unsafe".
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
PASSWORD = "correct horse battery staple"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ROOT = Path(__file__).resolve().parent.parent.parent
CSP_WORDS = re.compile(r"Content[- ]Security[- ]Policy|Refused to (execute|load|apply)", re.I)


def _missing(reason: str) -> None:
    message = (
        f"Browser tests not run: {reason}. Install Debian's chromium (apt-get install chromium) "
        "and the dev extras (pip install -e '.[dev]'; never `playwright install`)."
    )
    if os.environ.get("CI"):
        pytest.fail("CI: " + message, pytrace=False)
    pytest.skip(message)


def screenshot_dir() -> Path:
    directory = Path(os.environ.get("BROWSER_SCREENSHOTS") or ROOT / "var" / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="session")
def chromium():
    """One Chromium for the whole run (each test gets its own fresh contexts)."""
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _missing(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Python package playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which(CHROMIUM) or CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Session:
    """One person's browser window: their page, what the console said, and screenshots."""

    page: object
    base_url: str
    console_errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path

    def goto(self, path: str) -> None:
        self.page.goto(self.url(path))

    def login(self, username: str, password: str = PASSWORD) -> None:
        """Through the real login form, as a person does."""
        page = self.page
        if "/login/" not in page.url:
            self.goto("/admin/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login/" not in url)

    def hide_nav(self) -> None:
        """Collapse the admin's navigation sidebar (the « button), for wide tables."""
        self.page.wait_for_load_state("load")  # the toggle's script is attached by then
        toggle, sidebar = (
            self.page.locator("#toggle-nav-sidebar"),
            self.page.locator("#nav-sidebar"),
        )
        if toggle.is_visible() and sidebar.is_visible():
            toggle.click()
            sidebar.wait_for(state="hidden")

    def shot(self, name: str, *, full_page: bool = False) -> Path:
        """The window as the person sees it (the whole page when ``full_page``)."""
        path = screenshot_dir() / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def shot_of(self, selector: str, name: str) -> Path:
        """One part of the page (a table, a form), scrolled into view."""
        path = screenshot_dir() / f"{name}.png"
        locator = self.page.locator(selector).first
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(path))
        return path

    def csp_violations(self) -> list[str]:
        return [message for message in self.console_errors if CSP_WORDS.search(message)]


@pytest.fixture
def browser_settings(settings):
    """The live server shares the test's settings. The per-user rate limit is not what these
    tests exercise and a journey makes many requests within a minute; the cache that counts
    them is cleared so that one test's count never leaks into the next."""
    from django.core.cache import cache

    settings.RATE_LIMIT_PER_MINUTE = 100_000
    cache.clear()
    return settings


@pytest.fixture
def open_session(chromium, live_server, transactional_db, browser_settings) -> Iterator:
    """A factory of browser sessions (one per person), each in its own context (own cookies),
    at 1280×800, accepting downloads; console errors and page errors are collected."""
    contexts = []

    def make(viewport: dict | None = None) -> Session:
        context = chromium.new_context(
            viewport=viewport or DESKTOP, accept_downloads=True, locale="en-US"
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        session = Session(page=page, base_url=live_server.url)
        page.on(
            "console",
            lambda message: (
                session.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: session.console_errors.append(str(error)))
        return session

    yield make
    for context in contexts:
        context.close()


# ---------------------------------------------------------------- people and a release in review
@dataclass
class Cast:
    release: object
    other_release: object
    pm: object
    qa: object
    security: object
    ceo: object
    auditor: object
    roles: dict
    items: dict


@pytest.fixture
def cast(transactional_db) -> Cast:
    """Release 2 in review, as the demo sets it up: a PM (owner), QA Lead and Security Officer
    (stakeholders who sign), the CEO (final decision) and an auditor; two items, one metric,
    one GO criterion nothing decides yet. Another release exists that none of them is on."""
    from checklist.choices import ItemStatus, ReleaseStatus
    from checklist.models import Item
    from checklist.services import items_set_status
    from fixtures.demo import AUDITOR_GROUP, PM_GROUP, STAKEHOLDER_GROUP, ensure_groups
    from signoffs.choices import MemberRole, Tier
    from signoffs.services import (
        member_set,
        release_access_refresh,
        release_open_review,
        requirement_assign,
    )
    from tests.factories import (
        AttestationFactory,
        CriterionFactory,
        ItemFactory,
        ReleaseFactory,
        SectionFactory,
        SignoffRequirementFactory,
        UserFactory,
    )

    groups = ensure_groups()

    def person(username: str, first: str, last: str, group: str):
        user = UserFactory(username=username, staff=True, first_name=first, last_name=last)
        user.groups.add(groups[group])
        return user

    pm = person("pm", "Priya", "Manager", PM_GROUP)
    qa = person("qa.lead", "Quinn", "Assurance", STAKEHOLDER_GROUP)
    security = person("security.officer", "Sam", "Secure", STAKEHOLDER_GROUP)
    ceo = person("ceo", "Cora", "Executive", STAKEHOLDER_GROUP)
    auditor = person("auditor", "Avery", "Auditor", AUDITOR_GROUP)

    release = ReleaseFactory(
        owner=pm, project="dCMMS", name="Release 2", version="v0.3.0", sprint="Sprint 18"
    )
    release_access_refresh(release=release, user=pm)
    other = ReleaseFactory(name="Billing launch", version="v9.9.9", status=ReleaseStatus.DRAFT)
    section = SectionFactory(release=release, number="2", title="Performance Validation")
    items = {
        "latency": ItemFactory(
            section=section, text="p95 latency", metric=True, actual_value=150, actual_unit="ms"
        ),
        "rollback": ItemFactory(section=section, text="Rollback plan tested", complete=True),
    }
    roles = {}
    for order, (role, tier, final, user) in enumerate(
        [
            ("QA Lead", Tier.TECHNICAL, False, qa),
            ("Security Officer", Tier.TECHNICAL, False, security),
            ("CEO", Tier.EXECUTIVE, True, ceo),
        ]
    ):
        requirement = SignoffRequirementFactory(
            release=release, role=role, tier=tier, final_decision=final, order=order
        )
        AttestationFactory(
            requirement=requirement, order=0, text=f"As {role}, I reviewed the evidence."
        )
        AttestationFactory(requirement=requirement, order=1, text="No open blocker is known to me.")
        roles[role] = requirement_assign(requirement=requirement, assignee=user, by=pm)
    CriterionFactory(
        release=release, group="Functional Completeness", text="All P0 features demo-ready"
    )
    member_set(release=release, user=auditor, role=MemberRole.AUDITOR, by=pm)
    release_open_review(release=release, by=pm)
    # Work goes on during the review: the signers' "what changed" lists it.
    items_set_status(
        items=Item.objects.filter(pk=items["latency"].pk), status=ItemStatus.IN_PROGRESS, user=pm
    )
    release.refresh_from_db()
    return Cast(release, other, pm, qa, security, ceo, auditor, roles, items)
