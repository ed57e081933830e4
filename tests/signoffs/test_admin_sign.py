"""The sign page of a requirement, the revoke page of a signature, and the renderers the release
page embeds (state badge, sign-off matrix, gate)."""

import datetime
import re

import pytest
from django.contrib.messages import SUCCESS, get_messages
from django.urls import reverse
from django.utils import timezone

from checklist.choices import ItemStatus, ReleaseStatus
from checklist.services import item_set_status
from signoffs.admin_views import (
    gate_html,
    signature_state_badge,
    signoff_matrix_html,
    utc_display,
)
from signoffs.choices import MemberRole, SignatureMeaning, SignatureState
from signoffs.models import Signature, SignatureEvent
from signoffs.services import member_set, signature_give, signature_revoke
from tests.factories import (
    AttestationFactory,
    CriterionFactory,
    ItemFactory,
    SectionFactory,
    UserFactory,
)
from tests.signoffs.sign_page import sign_post

pytestmark = pytest.mark.django_db

ROLES = ("QA Lead", "Security Officer", "CEO")
XSS = "<script>alert(1)</script>"


def _sign_url(requirement) -> str:
    return reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk])


def _revoke_url(signature) -> str:
    return reverse("admin:signoffs_signature_revoke", args=[signature.pk])


def _html(response) -> str:
    return response.content.decode()


def _form_errors(response) -> list[str]:
    return list(response.context["form"].non_field_errors())


def _give(requirement, password, meaning=SignatureMeaning.APPROVED, comment=""):
    return signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password=password,
        meaning=meaning,
        comment=comment,
    )


def _approve_all_roles(roles, password) -> None:
    for role in ("QA Lead", "Security Officer"):
        _give(roles[role], password)


@pytest.fixture
def member(review, pm):
    """A stakeholder who may see the release but signs nothing."""
    release, _ = review
    user = UserFactory(username="follower", staff=True)
    member_set(release=release, user=user, role=MemberRole.STAKEHOLDER, by=pm)
    return user


# ---------------------------------------------------------------- access
@pytest.mark.parametrize("role", ROLES)
def test_sign_page_redirects_to_login_when_anonymous(client, review, role):
    _, roles = review

    response = client.get(_sign_url(roles[role]))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


@pytest.mark.parametrize("role", ROLES)
def test_sign_page_is_404_when_the_user_may_not_see_the_release(client, review, password, role):
    _, roles = review
    client.force_login(UserFactory(username="outsider", staff=True))

    assert client.get(_sign_url(roles[role])).status_code == 404
    response = client.post(_sign_url(roles[role]), {"meaning": "approved", "password": password})

    assert response.status_code == 404
    assert not Signature.objects.exists()


@pytest.mark.parametrize("role", ROLES)
def test_sign_page_shows_the_refusal_without_a_form_when_assigned_to_another_role(
    client, review, role
):
    _, roles = review
    other = roles["QA Lead" if role != "QA Lead" else "Security Officer"].assignee
    client.force_login(other)

    response = client.get(_sign_url(roles[role]))

    assert response.status_code == 200
    assert f"You are not assigned to sign as {role} on this release." in _html(response)
    assert response.context["form"] is None
    assert 'name="password"' not in _html(response)


@pytest.mark.parametrize("role", ROLES)
def test_sign_page_refuses_with_403_and_writes_nothing_when_another_role_posts(
    client, review, password, role
):
    release, roles = review
    other = roles["QA Lead" if role != "QA Lead" else "Security Officer"].assignee
    client.force_login(other)
    meaning = "defer" if role == "CEO" else "approved"

    response = client.post(
        _sign_url(roles[role]), {"meaning": meaning, "comment": "why", "password": password}
    )

    assert response.status_code == 403
    assert f"You are not assigned to sign as {role} on this release." in _html(response)
    assert not Signature.objects.exists()
    release.refresh_from_db()
    assert release.status == ReleaseStatus.IN_REVIEW


def test_sign_page_shows_the_refusal_when_a_member_who_signs_nothing_views(client, review, member):
    _, roles = review
    client.force_login(member)

    response = client.get(_sign_url(roles["QA Lead"]))

    assert response.status_code == 200
    assert "You are not assigned to sign as QA Lead on this release." in _html(response)
    assert client.post(_sign_url(roles["QA Lead"]), {}).status_code == 403


# ---------------------------------------------------------------- what the page shows
def test_sign_page_offers_approve_or_reject_and_the_statements_when_the_assignee_views(
    client, review
):
    _, roles = review
    requirement = roles["QA Lead"]
    AttestationFactory(requirement=requirement, text="All tests passing", order=1)
    AttestationFactory(requirement=requirement, text="No P0 bugs open", order=2)
    client.force_login(requirement.assignee)

    response = client.get(_sign_url(requirement))

    html = _html(response)
    assert response.status_code == 200
    assert [value for value, _ in response.context["form"].fields["meaning"].choices] == [
        "approved",
        "rejected",
    ]
    assert 'type="password"' in html
    assert "By signing I affirm:" in html
    assert re.search(r"<ol[^>]*>\s*<li>All tests passing</li><li>No P0 bugs open</li>", html)
    assert "In review" in html and requirement.release.version in html
    assert "No measured target is failing." in html  # the fixture's metric passes


def test_sign_page_offers_go_or_defer_and_lists_what_blocks_go_when_the_final_role_views(
    client, review
):
    _, roles = review
    client.force_login(roles["CEO"].assignee)

    response = client.get(_sign_url(roles["CEO"]))

    html = _html(response)
    assert [v for v, _ in response.context["form"].fields["meaning"].choices] == ["go", "defer"]
    assert "Missing valid sign-off: QA Lead" in html
    assert "Missing valid sign-off: Security Officer" in html


def test_sign_page_shows_failing_targets_and_open_criteria_when_a_role_views(client, review):
    release, roles = review
    section = SectionFactory(release=release, number="2", title="Performance")
    ItemFactory(section=section, text="Error rate", failing=True)
    CriterionFactory(release=release, text="All P0 tasks complete")
    client.force_login(roles["QA Lead"].assignee)

    html = _html(client.get(_sign_url(roles["QA Lead"])))

    assert "Error rate" in html and "&lt; 200 ms" in html and "✘ 350 ms" in html
    assert "All P0 tasks complete" in html and "no verdict yet (nothing linked)" in html


def test_sign_page_shows_the_refusal_without_a_form_when_the_role_already_holds_a_signature(
    client, review, password
):
    _, roles = review
    _give(roles["QA Lead"], password)
    client.force_login(roles["QA Lead"].assignee)

    response = client.get(_sign_url(roles["QA Lead"]))

    assert "QA Lead already holds a valid signature; revoke it to sign again." in _html(response)
    assert response.context["form"] is None


def test_sign_page_shows_the_refusal_without_a_form_when_the_release_is_not_in_review(
    client, review
):
    release, roles = review
    release.status = ReleaseStatus.DRAFT
    release.save()
    client.force_login(roles["QA Lead"].assignee)

    response = client.get(_sign_url(roles["QA Lead"]))

    assert "The release is not in review (status: Draft)" in _html(response)
    assert response.context["form"] is None


# ---------------------------------------------------------------- signing
@pytest.mark.parametrize("role", ("QA Lead", "Security Officer"))
def test_sign_page_records_the_server_values_when_the_assignee_approves(
    client, review, password, role
):
    release, roles = review
    requirement = roles[role]
    client.force_login(requirement.assignee)
    before = timezone.now()

    response = sign_post(
        client,
        requirement,
        {"meaning": "approved", "username": requirement.assignee.username, "password": password},
    )

    assert response.status_code == 302
    assert response.url == reverse("admin:checklist_release_change", args=[release.pk])
    signature = Signature.objects.get()
    assert signature.requirement == requirement and signature.release == release
    assert signature.signer == requirement.assignee
    assert signature.printed_name == f"Demo {role}"
    assert signature.printed_role == role
    assert signature.meaning == SignatureMeaning.APPROVED
    assert signature.state == SignatureState.VALID
    assert before <= signature.signed_at <= timezone.now()
    assert re.fullmatch(r"[0-9a-f]{64}", signature.snapshot_sha256)
    [(level, text)] = [(m.level, str(m)) for m in get_messages(response.wsgi_request)]
    assert level == SUCCESS
    assert role in text and "Approved" in text and utc_display(signature.signed_at) in text


def test_sign_page_decides_the_release_when_the_final_role_defers_with_a_reason(
    client, review, password
):
    release, roles = review
    client.force_login(roles["CEO"].assignee)

    response = sign_post(
        client,
        roles["CEO"],
        {
            "meaning": "defer",
            "comment": "Security review pending",
            "username": "ceo",
            "password": password,
        },
    )

    assert response.status_code == 302
    signature = Signature.objects.get()
    assert (signature.meaning, signature.comment) == ("defer", "Security review pending")
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED


def test_sign_page_records_go_when_every_role_approved(client, review, password):
    release, roles = review
    _approve_all_roles(roles, password)
    client.force_login(roles["CEO"].assignee)

    response = sign_post(
        client, roles["CEO"], {"meaning": "go", "username": "ceo", "password": password}
    )

    assert response.status_code == 302
    assert Signature.objects.get(requirement=roles["CEO"]).meaning == SignatureMeaning.GO
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DECIDED


def test_sign_page_refuses_go_with_each_missing_sign_off_when_roles_have_not_approved(
    client, review, password
):
    release, roles = review
    _give(roles["QA Lead"], password)
    client.force_login(roles["CEO"].assignee)

    response = sign_post(
        client, roles["CEO"], {"meaning": "go", "username": "ceo", "password": password}
    )

    assert response.status_code == 200
    assert "Missing valid sign-off: Security Officer" in _form_errors(response)
    assert "Missing valid sign-off: Security Officer" in _html(response)
    assert not Signature.objects.filter(requirement=roles["CEO"]).exists()
    release.refresh_from_db()
    assert release.status == ReleaseStatus.IN_REVIEW


def test_sign_page_writes_nothing_and_says_so_when_the_password_is_wrong(client, review):
    _, roles = review
    client.force_login(roles["QA Lead"].assignee)

    response = sign_post(
        client,
        roles["QA Lead"],
        {"meaning": "approved", "username": "qa.lead", "password": "not my password"},
    )

    assert response.status_code == 200
    assert _form_errors(response) == ["The password is not correct; nothing was signed."]
    assert "The password is not correct; nothing was signed." in _html(response)
    assert 'value="not my password"' not in _html(response)
    assert not Signature.objects.exists()


def test_sign_page_refuses_a_rejection_when_no_reason_is_given(client, review, password):
    _, roles = review
    client.force_login(roles["QA Lead"].assignee)

    response = sign_post(
        client,
        roles["QA Lead"],
        {"meaning": "rejected", "comment": "  ", "username": "qa.lead", "password": password},
    )

    assert response.status_code == 200
    assert "A reason is required to record Rejected." in _form_errors(response)
    assert not Signature.objects.exists()


def test_sign_page_refuses_a_meaning_of_another_kind_of_role_when_posted(client, review, password):
    _, roles = review
    client.force_login(roles["QA Lead"].assignee)

    response = client.post(_sign_url(roles["QA Lead"]), {"meaning": "go", "password": password})

    assert response.status_code == 200
    assert response.context["form"].errors["meaning"]
    assert not Signature.objects.exists()


def test_sign_page_ignores_every_other_posted_field_when_the_assignee_signs(
    client, review, password
):
    release, roles = review
    requirement = roles["QA Lead"]
    intruder = roles["Security Officer"].assignee
    client.force_login(requirement.assignee)

    response = sign_post(
        client,
        requirement,
        {
            "meaning": "approved",
            "username": "qa.lead",
            "password": password,
            "signer": intruder.pk,
            "signer_id": intruder.pk,
            "signed_at": "2000-01-01 00:00:00",
            "printed_name": "Mallory",
            "printed_role": "CEO",
            "state": "stale",
            "snapshot_sha256": "0" * 64,
            "requirement": roles["CEO"].pk,
            "requirement_id": roles["CEO"].pk,
            "release": release.pk,
            "role": "CEO",
        },
    )

    assert response.status_code == 302
    signature = Signature.objects.get()
    assert signature.requirement == requirement
    assert signature.signer == requirement.assignee
    assert signature.printed_name == "Demo QA Lead"
    assert signature.printed_role == "QA Lead"
    assert signature.state == SignatureState.VALID
    assert signature.snapshot_sha256 != "0" * 64
    assert signature.signed_at > timezone.now() - datetime.timedelta(minutes=1)
    roles["CEO"].refresh_from_db()
    assert roles["CEO"].role == "CEO" and not roles["CEO"].signatures.exists()


# ---------------------------------------------------------------- states and changes
def test_sign_page_shows_the_stale_badge_and_what_changed_when_an_item_changed_after_signing(
    client, review, password, pm
):
    release, roles = review
    signed = _give(roles["QA Lead"], password)
    item = release.items.get(text="p95 latency")

    item_set_status(item=item, status=ItemStatus.BLOCKED, user=pm)

    client.force_login(roles["QA Lead"].assignee)
    html = _html(client.get(_sign_url(roles["QA Lead"])))
    assert "⚠ STALE — the release changed after signing" in html
    assert f"since QA Lead last signed ({utc_display(signed.signed_at)})" in html
    assert "Priya Manager (pm)" in html
    assert "Status: Not started → Blocked" in html
    assert re.search(r"Item “p95 latency” changed", html)
    # The form is back: a stale signature is signed again, not edited.
    assert 'name="password"' in html


def test_sign_page_lists_changes_since_the_review_opened_when_the_role_never_signed(
    client, review, pm
):
    release, roles = review
    item = release.items.get(text="p95 latency")
    item_set_status(item=item, status=ItemStatus.COMPLETE, user=pm)
    client.force_login(roles["Security Officer"].assignee)

    response = client.get(_sign_url(roles["Security Officer"]))

    html = _html(response)
    assert "since the review opened (" in html
    assert "Status: Not started → Complete" in html
    assert "Role Security Officer assigned to security.officer" in html


def test_sign_page_lists_every_signature_with_its_state_events_when_revoked_and_signed_again(
    client, review, password
):
    _, roles = review
    requirement = roles["QA Lead"]
    first = _give(requirement, password)
    signature_revoke(signature=first, by=requirement.assignee, reason="Signed too early")
    _give(requirement, password)
    client.force_login(requirement.assignee)

    response = client.get(_sign_url(requirement))

    html = _html(response)
    assert "✘ REVOKED" in html and "<s>Approved</s>" in html
    assert "✔ Valid" in html
    assert "Valid → Revoked · Demo QA Lead (qa.lead): Signed too early" in html
    assert html.count("UTC+00:00") >= 4


def test_sign_page_escapes_item_text_and_comments_when_they_hold_markup(client, review, password):
    release, roles = review
    section = SectionFactory(release=release, number="9", title=XSS)
    item = ItemFactory(section=section, text=XSS, failing=True)
    _give(roles["QA Lead"], password, meaning=SignatureMeaning.REJECTED, comment=XSS)
    item.text = XSS + " again"
    item.save()
    client.force_login(roles["QA Lead"].assignee)

    html = _html(client.get(_sign_url(roles["QA Lead"])))

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_sign_page_query_count_does_not_grow_with_items_when_many_changed(
    client, review, password, pm, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    release, roles = review
    section = SectionFactory(release=release, number="2", title="Performance")
    CriterionFactory(release=release)
    _give(roles["QA Lead"], password)
    requirement = roles["Security Officer"]
    client.force_login(requirement.assignee)
    url = _sign_url(requirement)

    ItemFactory(section=section, failing=True)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200

    for item in ItemFactory.create_batch(25, section=section, failing=True):
        item_set_status(item=item, status=ItemStatus.AT_RISK, user=pm)
    with django_assert_max_num_queries(80):
        with CaptureQueriesContext(connection) as many:
            assert client.get(url).status_code == 200

    assert len(many.captured_queries) == len(few.captured_queries)


# ---------------------------------------------------------------- revoke
def test_revoke_page_redirects_to_login_when_anonymous(client, review, password):
    _, roles = review
    signature = _give(roles["QA Lead"], password)

    response = client.get(_revoke_url(signature))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_revoke_page_is_404_when_the_user_may_not_see_the_release(client, review, password):
    _, roles = review
    signature = _give(roles["QA Lead"], password)
    client.force_login(UserFactory(staff=True))

    assert client.get(_revoke_url(signature)).status_code == 404
    assert client.post(_revoke_url(signature), {"reason": "x"}).status_code == 404
    signature.refresh_from_db()
    assert signature.state == SignatureState.VALID


def test_revoke_page_refuses_with_403_and_writes_nothing_when_not_the_signer(
    client, review, password
):
    _, roles = review
    signature = _give(roles["QA Lead"], password)
    client.force_login(roles["Security Officer"].assignee)

    page = client.get(_revoke_url(signature))
    response = client.post(_revoke_url(signature), {"reason": "I do not like it"})

    assert page.status_code == 403
    assert response.status_code == 403
    assert "Only the signer can revoke their signature." in _html(response)
    signature.refresh_from_db()
    assert signature.state == SignatureState.VALID
    assert SignatureEvent.objects.filter(signature=signature).count() == 1


def test_revoke_page_revokes_with_the_reason_when_the_signer_posts(client, review, password):
    _, roles = review
    signer = roles["QA Lead"].assignee
    signature = _give(roles["QA Lead"], password)
    client.force_login(signer)
    assert 'name="reason"' in _html(client.get(_revoke_url(signature)))

    response = client.post(_revoke_url(signature), {"reason": "Signed the wrong build"})

    assert response.status_code == 302
    signature.refresh_from_db()
    assert signature.state == SignatureState.REVOKED
    event = signature.events.last()
    assert (event.from_state, event.to_state, event.actor, event.reason) == (
        "valid",
        "revoked",
        signer,
        "Signed the wrong build",
    )
    listing = _html(client.get(reverse("admin:signoffs_signature_changelist")))
    assert "✘ REVOKED" in listing


def test_revoke_page_shows_the_refusal_when_no_reason_is_given(client, review, password):
    _, roles = review
    signature = _give(roles["QA Lead"], password)
    client.force_login(roles["QA Lead"].assignee)

    response = client.post(_revoke_url(signature), {"reason": " "})

    assert response.status_code == 200
    assert "A reason is required to revoke a signature." in _form_errors(response)
    signature.refresh_from_db()
    assert signature.state == SignatureState.VALID


def test_revoke_page_refuses_the_final_decision_when_the_release_is_decided(
    client, review, password
):
    _, roles = review
    decision = _give(roles["CEO"], password, meaning=SignatureMeaning.DEFER, comment="Not yet")
    client.force_login(roles["CEO"].assignee)

    response = client.post(_revoke_url(decision), {"reason": "Changed my mind"})

    assert "The final decision is not revoked: reopen the release instead." in _form_errors(
        response
    )
    decision.refresh_from_db()
    assert decision.state == SignatureState.VALID


# ---------------------------------------------------------------- renderers and links
def test_signature_state_badge_is_unmistakable_when_valid_stale_or_revoked(review, password):
    _, roles = review
    signature = _give(roles["QA Lead"], password)

    assert "✔ Valid" in signature_state_badge(signature)
    signature.state = SignatureState.STALE
    stale = signature_state_badge(signature)
    assert "⚠ STALE — the release changed after signing" in stale and "font-weight:bold" in stale
    signature.state = SignatureState.REVOKED
    assert "<s>Approved</s> ✘ REVOKED" in signature_state_badge(signature)


def test_signoff_matrix_html_lists_each_role_in_order_when_some_have_signed(review, password):
    release, roles = review
    signature = _give(roles["QA Lead"], password)

    html = str(signoff_matrix_html(release))

    assert html.index("QA Lead") < html.index("Security Officer") < html.index("CEO")
    assert "CEO <strong>★ Final decision</strong>" in html
    assert "<strong>Approved</strong>" in html and "✔ Valid" in html
    assert "Demo QA Lead" in html and utc_display(signature.signed_at) in html
    assert html.count("Not signed") == 2
    assert html.count('href="/admin/signoffs/signoffrequirement/') == 3


def test_signoff_matrix_html_escapes_the_comment_when_it_holds_markup(review, password):
    release, roles = review
    _give(roles["QA Lead"], password, meaning=SignatureMeaning.REJECTED, comment=XSS)

    html = str(signoff_matrix_html(release))

    assert XSS not in html and "&lt;script&gt;" in html


def test_gate_html_names_each_missing_sign_off_when_go_is_not_possible(review, password):
    release, roles = review
    CriterionFactory(release=release, text="Load test passed", manual_verdict=True)
    _give(roles["QA Lead"], password)

    html = str(gate_html(release))

    assert "GO not possible yet" in html
    assert "<li>Missing valid sign-off: Security Officer</li>" in html
    assert "Missing valid sign-off: QA Lead" not in html
    assert "Load test passed" in html and "✔ met" in html and "manual verdict: met" in html


def test_gate_html_says_go_is_possible_when_every_role_approved(review, password):
    release, roles = review
    _approve_all_roles(roles, password)

    assert "✔ GO possible" in str(gate_html(release))


def test_requirement_admin_links_to_the_sign_page_when_listed_or_opened(admin_client, review):
    _, roles = review
    url = _sign_url(roles["QA Lead"])

    listing = _html(admin_client.get(reverse("admin:signoffs_signoffrequirement_changelist")))
    change = reverse("admin:signoffs_signoffrequirement_change", args=[roles["QA Lead"].pk])

    assert f'href="{url}"' in listing
    assert f'href="{url}"' in _html(admin_client.get(change))


def test_signature_admin_shows_the_state_badge_and_revoke_link_when_viewed(
    admin_client, review, password
):
    _, roles = review
    signature = _give(roles["QA Lead"], password)

    listing = _html(admin_client.get(reverse("admin:signoffs_signature_changelist")))
    page = _html(admin_client.get(reverse("admin:signoffs_signature_change", args=[signature.pk])))

    assert "✔ Valid" in listing and "UTC+00:00" in listing
    assert f'href="{_revoke_url(signature)}"' in page
