"""Journey 2, a stakeholder: sees only their release, reads what they affirm and what changed,
signs with their password (a wrong one writes nothing), sees their signature go stale when the
PM edits an item, is refused when the PM edits another while they read (the page lists what
changed), and signs again. Also: an expired session sends them to the login page and
back, and the sign page works on a phone."""

from __future__ import annotations

import datetime
import re

import pytest
from django.contrib.sessions.models import Session as DjangoSession
from django.urls import reverse
from django.utils import timezone

from checklist.choices import ItemStatus
from checklist.services import item_set_status
from signoffs.choices import SignatureState
from signoffs.models import Signature
from tests.browser.conftest import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WRONG_PASSWORD = "Tr0ub4dor&3 is not it"
STALE = "⚠ STALE — the release changed after signing"


def _sign(
    page, password: str, meaning: str = "Approved", comment: str = "", user_id: str = ""
) -> None:
    """``user_id``: typed at the first signing of a session (§11.200(a)(1))."""
    page.get_by_label(meaning, exact=True).check()
    if comment:
        page.get_by_label("Comment").fill(comment)
    if user_id:
        page.get_by_label("User ID").fill(user_id)
    page.get_by_label("Your password").fill(password)
    page.get_by_role("button", name="Sign", exact=True).click()
    page.wait_for_load_state()


def _qa_row(page):
    return page.locator("table.signoff-matrix tbody tr", has_text="QA Lead")


def test_stakeholder_journey_signs_sees_stale_and_signs_again(open_session, cast):
    release, requirement = cast.release, cast.roles["QA Lead"]
    me = open_session()
    page = me.page

    # Logged in, the stakeholder sees only the release they are on.
    me.goto("/admin/")
    me.login("qa.lead")
    page.get_by_role("link", name="Releases").first.click()
    listing = page.locator("#result_list").inner_text()
    assert "Release 2" in listing and cast.other_release.name not in listing
    assert page.locator("#result_list tbody tr").count() == 1
    assert page.locator(".import-checklist").count() == 0  # no upload for a stakeholder
    me.shot("journey-stakeholder-releases")
    # Another release is not found, not forbidden.
    response = page.goto(
        me.url(reverse("admin:checklist_release_change", args=[cast.other_release.pk]))
    )
    assert response.status == 404

    # From the release's sign-off matrix to their sign page.
    me.goto(reverse("admin:checklist_release_change", args=[release.pk]))
    me.hide_nav()
    _qa_row(page).get_by_role("link", name="Sign-off page").click()
    page.wait_for_url(
        re.compile(
            re.escape(reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk]))
            + "$"
        )
    )
    affirm = page.locator("ol.attestations")
    affirm.wait_for()
    assert "As QA Lead, I reviewed the evidence." in affirm.inner_text()
    changes = page.locator("section.sign-changes")
    assert "What changed since the review opened" in changes.inner_text()
    assert "Status: Not started → In progress" in changes.inner_text()
    assert page.get_by_label("Your password").is_visible()
    assert page.get_by_label("User ID").is_visible()  # the session's first signing
    me.shot("journey-stakeholder-sign", full_page=True)

    # A wrong password: refused, in words, and nothing is written.
    _sign(page, WRONG_PASSWORD, user_id="qa.lead")
    assert (
        "The password is not correct; nothing was signed."
        in page.locator(".sign-errors").inner_text()
    )
    assert Signature.objects.count() == 0

    # The right password: signed, back on the release with the matrix showing it valid.
    _sign(
        page, "correct horse battery staple", comment="Regression suite green.", user_id="qa.lead"
    )
    page.wait_for_url(re.compile(rf"/admin/checklist/release/{release.pk}/change/$"))
    assert (
        "Signed as QA Lead: Approved by Quinn Assurance"
        in page.locator(".messagelist:not(.frozen-banner)").inner_text()
    )
    assert "✔ Valid" in _qa_row(page).inner_text()
    signature = Signature.objects.get()
    assert signature.signer == cast.qa and signature.state == SignatureState.VALID

    # The PM, in their own browser, edits an item of the release.
    pm = open_session()
    pm.goto(reverse("admin:checklist_item_change", args=[cast.items["latency"].pk]))
    pm.login("pm")
    pm.page.locator("#id_actual_value").fill("180")
    pm.page.locator("#id_change_reason").fill("Load test re-run on the release build")
    pm.page.get_by_role("button", name="Save", exact=True).click()
    assert (
        "was changed successfully"
        in pm.page.locator(".messagelist:not(.frozen-banner)").inner_text()
    )

    # The stakeholder reloads: their signature is stale, at once.
    page.reload()
    assert STALE in _qa_row(page).inner_text()
    me.shot_of("table.signoff-matrix", "journey-stakeholder-stale")
    signature.refresh_from_db()
    assert signature.state == SignatureState.STALE

    # On a phone, while it is stale: the sign page's fields and its button are reachable.
    sign_url = reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk])
    phone = open_session(PHONE)
    phone.goto(sign_url)
    phone.login("qa.lead")
    assert phone.page.url.endswith(sign_url)
    for label in ("Comment", "User ID", "Your password"):
        field = phone.page.get_by_label(label)
        field.scroll_into_view_if_needed()
        assert field.is_visible() and field.bounding_box()["width"] > 150
    button = phone.page.get_by_role("button", name="Sign", exact=True)
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert button.is_visible() and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]
    phone.shot("journey-stakeholder-sign-phone")

    # The session expires on the server: the next page asks for a login and comes back.
    DjangoSession.objects.update(expire_date=timezone.now() - datetime.timedelta(minutes=1))
    me.goto(sign_url)
    assert "/admin/login/" in page.url and "next=" in page.url
    me.login("qa.lead")
    assert page.url.endswith(sign_url)

    # What changed since they signed is listed; they sign again (a new session after the
    # sign-in: user ID and password again).
    assert "p95 latency" in page.locator("section.sign-changes").inner_text()
    # But while they read, the PM marks another item blocked: signing refuses, signs nothing,
    # and the page lists what changed since the version they read.
    item_set_status(
        item=cast.items["rollback"],
        status=ItemStatus.BLOCKED,
        user=cast.pm,
        reason="Rollback drill failed on staging",
    )
    _sign(
        page,
        "correct horse battery staple",
        comment="Re-checked after the latency fix.",
        user_id="qa.lead",
    )
    assert (
        "The release changed while you were reading: see what changed"
        in page.locator(".sign-errors").inner_text()
    )
    changed = page.locator("section.sign-changed").inner_text()
    assert "Rollback plan tested" in changed and "Status: Complete → Blocked" in changed
    assert "Rollback drill failed on staging" in changed
    assert Signature.objects.count() == 1  # the stale one only
    me.shot_of("section.sign-changed", "journey-stakeholder-changed-while-reading")
    # Reviewed: the page now carries the release as it is, and signing it works.
    _sign(
        page,
        "correct horse battery staple",
        comment="Re-checked after the latency fix.",
        user_id="qa.lead",
    )
    assert (
        "Signed as QA Lead: Approved"
        in page.locator(".messagelist:not(.frozen-banner)").inner_text()
    )
    assert "✔ Valid" in _qa_row(page).inner_text()
    assert list(Signature.objects.order_by("signed_at").values_list("state", flat=True)) == [
        SignatureState.STALE,
        SignatureState.VALID,
    ]
    me.shot_of("table.signoff-matrix", "journey-stakeholder-resigned")

    # The CSRF-protected forms worked under the page's Content Security Policy.
    assert me.csp_violations() == [] and pm.csp_violations() == []
    assert phone.csp_violations() == []


def test_sign_page_is_served_under_a_csp_that_refuses_inline_script(open_session, cast):
    """The CSP checks of the journeys can fail: the policy is sent, an injected inline script
    is refused, and the refusal reaches the console messages the journeys assert on."""
    me = open_session()
    sign_url = reverse("admin:signoffs_signoffrequirement_sign", args=[cast.roles["QA Lead"].pk])
    me.goto(sign_url)
    me.login("qa.lead")
    response = me.page.reload()
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert me.csp_violations() == []
    me.page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.injected = true;";
                   document.body.appendChild(s); }"""
    )
    me.page.wait_for_timeout(200)
    assert me.page.evaluate("() => window.injected === undefined")
    assert me.csp_violations(), me.console_errors
