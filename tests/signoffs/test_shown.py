"""Signing what you saw (issue #14, point 4; §11.50, §11.70): the sign page carries the version
of the release it showed, and a signing refuses when the release changed since — nothing is
signed, and the page lists what changed."""

from __future__ import annotations

import datetime
import re

import pytest
from django.core import signing
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.utils import timezone

from checklist.choices import ItemStatus
from checklist.services import item_set_status
from signoffs.choices import SignatureMeaning, SignatureState
from signoffs.exports import release_content, snapshot_sha256
from signoffs.models import Signature
from signoffs.services import signature_give
from signoffs.shown import (
    NOT_ISSUED,
    NOT_SHOWN,
    RELEASE_CHANGED,
    SALT,
    ReleaseChanged,
    Shown,
    release_shown,
    shown_read,
    shown_token,
)
from tests.signoffs.sign_page import sign_url

pytestmark = pytest.mark.django_db


def _html(response) -> str:
    return response.content.decode()


def _errors(response) -> list[str]:
    return list(response.context["form"].non_field_errors())


def _open(client, requirement):
    """The signer opens their sign page; returns the page and the token its form carries."""
    client.force_login(requirement.assignee)
    page = client.get(sign_url(requirement))
    assert page.status_code == 200
    return page, page.context["shown_token"]


def _post(client, requirement, password, shown=None, **extra):
    data = {"meaning": "approved", "username": requirement.assignee.username, "password": password}
    if shown is not None:
        data["shown"] = shown
    return client.post(sign_url(requirement), {**data, **extra})


def _fingerprint(release) -> str:
    return snapshot_sha256(release_content(release))


# ---------------------------------------------------------------- the sign page
def test_sign_page_refuses_and_shows_what_changed_when_an_item_is_edited_while_reading(
    client, review, password, pm
):
    release, roles = review
    requirement = roles["QA Lead"]
    _, token = _open(client, requirement)
    read = _fingerprint(release)
    item = release.items.get(text="p95 latency")

    item_set_status(item=item, status=ItemStatus.BLOCKED, user=pm)  # the PM, while QA reads
    response = _post(client, requirement, password, shown=token)

    assert response.status_code == 200
    assert not Signature.objects.exists()
    assert _errors(response) == [RELEASE_CHANGED]
    html = _html(response)
    assert "The release changed while you were reading: see what changed" in html
    changed = html[html.index('class="sign-changed') : html.index('class="sign-summary')]
    assert "Priya Manager (pm)" in changed
    assert re.search(r"Item “p95 latency” changed", changed)
    assert "Status: Not started → Blocked" in changed
    # The page now carries the release as it is, so the signer can review and sign again.
    assert response.context["shown_sha256"] == _fingerprint(release) != read
    assert response.context["shown_token"] != token

    again = _post(client, requirement, password, shown=response.context["shown_token"])

    assert again.status_code == 302
    signature = Signature.objects.get()
    assert signature.state == SignatureState.VALID
    assert response.context["shown_sha256"] == _fingerprint(release)  # what it signed


def test_sign_page_signs_what_it_showed_when_nothing_changed(client, review, password):
    release, roles = review
    requirement = roles["QA Lead"]
    page, token = _open(client, requirement)

    assert page.context["shown_sha256"] == _fingerprint(release)
    assert f"content fingerprint <code>{_fingerprint(release)}</code>" in _html(page)
    assert f'<input type="hidden" name="shown" value="{token}">' in _html(page)
    response = _post(client, requirement, password, shown=token)

    assert response.status_code == 302
    assert Signature.objects.get().signer == requirement.assignee


def test_sign_page_refuses_and_signs_nothing_when_the_post_carries_no_version(
    client, review, password
):
    _, roles = review
    requirement = roles["QA Lead"]
    client.force_login(requirement.assignee)

    response = _post(client, requirement, password)

    assert response.status_code == 200
    assert _errors(response) == [NOT_SHOWN]
    assert NOT_SHOWN in _html(response)
    assert not Signature.objects.exists()
    # The page it answers with carries the release as it shows it now.
    assert response.context["shown_sha256"] == _fingerprint(requirement.release)


def _forged(kind: str, release, roles) -> str:
    qa, officer = roles["QA Lead"], roles["Security Officer"]
    now = Shown(_fingerprint(release), timezone.now())
    payload = {"sha256": now.sha256, "at": now.at.isoformat(), "requirement": qa.pk}
    payload["user"] = qa.assignee.pk
    if kind == "the bare current hash":
        return now.sha256
    if kind == "signed with another key":
        return signing.dumps(payload, key="not-the-portal-secret-key-" * 2, salt=SALT)
    if kind == "another salt":
        return signing.dumps(payload, salt="another.form")
    if kind == "an altered hash":
        token = shown_token(Shown("0" * 64, now.at), requirement_id=qa.pk, user_id=qa.assignee.pk)
        value, rest = token.split(":", 1)
        tampered = signing.b64_encode(
            signing.b64_decode(value.encode()).replace(b"0" * 64, now.sha256.encode())
        ).decode()
        return f"{tampered}:{rest}"
    if kind == "another signer's page":
        return shown_token(now, requirement_id=officer.pk, user_id=officer.assignee.pk)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "the bare current hash",
        "signed with another key",
        "another salt",
        "an altered hash",
        "another signer's page",
    ],
)
def test_sign_page_refuses_and_signs_nothing_when_the_version_is_forged(
    client, review, password, kind
):
    release, roles = review
    requirement = roles["QA Lead"]
    client.force_login(requirement.assignee)

    response = _post(client, requirement, password, shown=_forged(kind, release, roles))

    assert response.status_code == 200
    assert _errors(response) == [NOT_ISSUED]
    assert NOT_ISSUED in _html(response)
    assert not Signature.objects.exists()


def test_sign_page_keeps_the_version_read_when_a_wrong_password_is_typed_after_a_change(
    client, review, password, pm
):
    release, roles = review
    requirement = roles["QA Lead"]
    _, token = _open(client, requirement)
    read = _fingerprint(release)
    item_set_status(item=release.items.get(), status=ItemStatus.BLOCKED, user=pm)

    wrong = _post(client, requirement, "not my password", shown=token)

    assert _errors(wrong) == ["The password is not correct; nothing was signed."]
    assert wrong.context["shown_sha256"] == read  # not silently the changed release
    refused = _post(client, requirement, password, shown=wrong.context["shown_token"])
    assert _errors(refused) == [RELEASE_CHANGED]
    assert "Status: Not started → Blocked" in _html(refused)
    assert not Signature.objects.exists()


def test_sign_page_signs_when_another_stakeholder_signed_while_reading(client, review, password):
    """Another signature is the record about the release, not its content: it refuses nothing
    (ten signers signing at once all sign)."""
    _, roles = review
    requirement, officer = roles["QA Lead"], roles["Security Officer"]
    _, token = _open(client, requirement)
    signature_give(
        requirement=officer,
        user=officer.assignee,
        username=officer.assignee.username,
        password=password,
        meaning=SignatureMeaning.APPROVED,
    )

    response = _post(client, requirement, password, shown=token)

    assert response.status_code == 302
    assert Signature.objects.filter(requirement=requirement, state="valid").exists()


def test_sign_page_says_no_edit_explains_it_when_the_difference_is_the_date(
    client, review, password, monkeypatch
):
    from tests.factories import ActionItemFactory

    release, roles = review
    requirement = roles["QA Lead"]
    today = timezone.localdate()
    ActionItemFactory(release=release, due_date=today)
    _, token = _open(client, requirement)  # read today; the action falls due overnight
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: today + datetime.timedelta(1))

    response = _post(client, requirement, password, shown=token)

    assert _errors(response) == [RELEASE_CHANGED]
    assert "No recorded edit explains the difference" in _html(response)
    assert not Signature.objects.exists()


def test_sign_page_escapes_what_changed_when_it_holds_markup(client, review, password, pm):
    release, roles = review
    requirement = roles["QA Lead"]
    _, token = _open(client, requirement)
    item_set_status(
        item=release.items.get(),
        status=ItemStatus.BLOCKED,
        user=pm,
        reason="<script>alert(1)</script>",
    )

    html = _html(_post(client, requirement, password, shown=token))

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ---------------------------------------------------------------- the service
def test_signature_give_refuses_and_writes_nothing_when_the_content_differs_from_shown(
    review, password, pm
):
    release, roles = review
    requirement = roles["QA Lead"]
    shown = release_shown(release)
    item_set_status(item=release.items.get(), status=ItemStatus.BLOCKED, user=pm)

    with pytest.raises(ReleaseChanged) as refused:
        signature_give(
            requirement=requirement,
            user=requirement.assignee,
            username=requirement.assignee.username,
            password=password,
            meaning=SignatureMeaning.APPROVED,
            shown_sha256=shown.sha256,
        )

    assert refused.value.messages == [RELEASE_CHANGED]
    assert refused.value.current.sha256 == _fingerprint(release) != shown.sha256
    assert refused.value.current.at >= shown.at
    assert not Signature.objects.exists()


def test_signature_give_signs_when_the_shown_version_is_current(review, password):
    release, roles = review
    requirement = roles["QA Lead"]

    signature = signature_give(
        requirement=requirement,
        user=requirement.assignee,
        username=requirement.assignee.username,
        password=password,
        meaning=SignatureMeaning.APPROVED,
        shown_sha256=release_shown(release).sha256,
    )

    assert signature.state == SignatureState.VALID


def test_signature_give_refuses_when_a_web_session_names_no_shown_version(client, review, password):
    _, roles = review
    requirement = roles["QA Lead"]
    request = RequestFactory().post("/")
    request.session = client.session

    with pytest.raises(ValidationError) as refused:
        signature_give(
            requirement=requirement,
            user=requirement.assignee,
            username=requirement.assignee.username,
            password=password,
            meaning=SignatureMeaning.APPROVED,
            request=request,
        )

    assert refused.value.messages == [NOT_SHOWN]
    assert not Signature.objects.exists()


# ---------------------------------------------------------------- the cached fingerprint
def test_release_shown_reads_only_the_stamp_when_the_release_is_unchanged(
    review, django_assert_num_queries
):
    from signoffs.changes import CONTENT_MODELS

    release, _ = review
    first = release_shown(release)

    with django_assert_num_queries(len(CONTENT_MODELS)):
        second = release_shown(release)

    assert second.sha256 == first.sha256 == _fingerprint(release)
    assert second.at >= first.at


def test_release_shown_fingerprints_again_when_an_item_changes(review, pm):
    release, _ = review
    before = release_shown(release)

    item_set_status(item=release.items.get(), status=ItemStatus.BLOCKED, user=pm)

    assert release_shown(release).sha256 == _fingerprint(release) != before.sha256


def test_release_shown_fingerprints_again_when_the_date_changes(review, monkeypatch):
    from tests.factories import ActionItemFactory

    release, _ = review
    today = timezone.localdate()
    ActionItemFactory(release=release, due_date=today)
    before = release_shown(release)

    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: today + datetime.timedelta(1))

    assert release_shown(release).sha256 == _fingerprint(release) != before.sha256


def test_sign_page_forgets_a_wrong_cached_fingerprint_when_a_signing_is_refused(
    client, review, password
):
    from checklist.models import Item

    release, roles = review
    requirement = roles["QA Lead"]
    _open(client, requirement)
    Item.objects.filter(release=release).update(text="edited by SQL")  # no history: no stamp

    _, stale = _open(client, requirement)
    refused = _post(client, requirement, password, shown=stale)
    _, fresh = _open(client, requirement)
    signed = _post(client, requirement, password, shown=fresh)

    assert _errors(refused) == [RELEASE_CHANGED]
    assert signed.status_code == 302
    assert Signature.objects.get().state == SignatureState.VALID


# ---------------------------------------------------------------- the token
def test_shown_read_returns_the_version_when_the_token_is_this_pages(review):
    _, roles = review
    requirement = roles["QA Lead"]
    shown = Shown("a" * 64, timezone.now())
    token = shown_token(shown, requirement_id=requirement.pk, user_id=requirement.assignee_id)

    assert shown_read(token, requirement_id=requirement.pk, user_id=requirement.assignee_id) == (
        shown
    )
    assert shown_read(token, requirement_id=requirement.pk, user_id=0) is None
    assert shown_read(token, requirement_id=0, user_id=requirement.assignee_id) is None
    assert shown_read("", requirement_id=requirement.pk, user_id=requirement.assignee_id) is None


# ---------------------------------------------------------------- under the lock (PostgreSQL)
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_signature_give_refuses_when_an_edit_commits_while_it_waits_for_the_release_lock(
    review, password, pm
):
    """The comparison is made under the release's row lock: an edit in flight when the signer
    posts is waited for, then refused against — never signed over, never missed in the list."""
    import threading
    import time

    from django.db import connection, transaction

    from checklist.models import Release
    from signoffs.changes import release_changes_since

    release, roles = review
    requirement = roles["QA Lead"]
    shown = release_shown(release)
    locked, outcome = threading.Event(), {}

    def edit() -> None:
        try:
            with transaction.atomic():
                Release.objects.select_for_update().get(pk=release.pk)
                item_set_status(item=release.items.get(), status=ItemStatus.BLOCKED, user=pm)
                locked.set()
                time.sleep(1)  # the signer posts now, and waits
            outcome["edit"] = "committed"
        finally:
            connection.close()

    thread = threading.Thread(target=edit)
    thread.start()
    assert locked.wait(10)
    started = time.monotonic()
    with pytest.raises(ReleaseChanged) as refused:
        signature_give(
            requirement=requirement,
            user=requirement.assignee,
            username=requirement.assignee.username,
            password=password,
            meaning=SignatureMeaning.APPROVED,
            shown_sha256=shown.sha256,
        )
    waited = time.monotonic() - started
    thread.join(30)

    assert outcome == {"edit": "committed"} and waited > 0.5
    assert not Signature.objects.exists()
    assert refused.value.current.sha256 == _fingerprint(release) != shown.sha256
    changes = release_changes_since(release, shown.at)
    assert [(c.label, c.kind) for c in changes] == [("p95 latency", "changed")]
