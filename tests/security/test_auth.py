"""Authentication, lockout, sessions and their audit events (docs/security.md §1)."""

import json
import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from checklist.models_audit import AuditEvent
from dcmms_release import settings as project_settings
from dcmms_release.security import AUTH_AT_KEY
from signoffs.models import Signature
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN = "/admin/login/"


@pytest.fixture
def dana(db):
    user = UserFactory(username="dana", staff=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def _login(client, username, password, ip="127.0.0.1"):
    return client.post(
        LOGIN + "?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
    )


def _kinds():
    """The sign-in trail, without the account events of the fixtures' set-up."""
    events = AuditEvent.objects.exclude(kind__startswith="account_").order_by("id")
    return list(events.values_list("kind", flat=True))


# ---------------------------------------------------------------- passwords
@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "a" * 7 + "bcdefgh",
        "x" * 64,
        "y" * 128,
        "öäü€ 日本語の長い合言葉",
    ],
)
def test_password_policy_accepts_length_without_composition_when_12_to_128(password):
    validate_password(password)  # no exception: lower-case only, no digits, spaces are all fine


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short-pass1", "password_too_short"),
        ("q1w2e3r4t5y6", "password_too_common"),
        ("z" * 129, "password_too_long"),
    ],
)
def test_password_policy_refuses_when_short_common_or_over_128(password, code):
    with pytest.raises(ValidationError) as refused:
        validate_password(password)
    assert code in [error.code for error in refused.value.error_list]


def test_password_hashing_uses_argon2id_when_production_hashers(settings):
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    assert make_password(PASSWORD).startswith("argon2$argon2id$")


# ---------------------------------------------------------------- sign-in events
def test_login_records_event_and_rotates_session_key_when_password_correct(client, dana):
    before = SessionStore()
    before["visited"] = True
    before.create()
    client.cookies[settings.SESSION_COOKIE_NAME] = before.session_key
    response = _login(client, "dana", PASSWORD)
    assert response.status_code == 302 and response.url == "/admin/"
    assert client.cookies[settings.SESSION_COOKIE_NAME].value != before.session_key
    assert not Session.objects.filter(session_key=before.session_key).exists()
    event = AuditEvent.objects.get(kind="login")
    assert (event.actor, event.username, event.ip) == (dana, "dana", "127.0.0.1")


def test_login_failed_records_username_as_typed_and_never_the_password_when_wrong(
    client, dana, admin_client
):
    typed = "<img src=x onerror=alert(1)>"
    response = _login(client, typed, "my-secret-guess-123")
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(kind="login_failed")
    assert event.username == typed and event.actor is None
    stored = json.dumps([event.username, event.object_repr, event.detail])
    assert "my-secret-guess-123" not in stored
    page = admin_client.get(reverse("admin:checklist_auditevent_changelist")).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and typed not in page


def test_logout_records_event_when_signed_in_user_logs_out(client, dana):
    client.force_login(dana)
    response = client.post(reverse("admin:logout"))
    assert response.status_code == 200
    assert _kinds() == ["login", "logout"]


# ---------------------------------------------------------------- lockout
def test_lockout_refuses_correct_password_from_same_ip_after_five_failures(client, dana):
    for _ in range(5):
        _login(client, "dana", "wrong password guess")
    response = _login(client, "dana", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert _kinds().count("login_failed") >= 5 and "lockout" in _kinds()
    lockouts = AuditEvent.objects.filter(kind="lockout")
    assert {(event.username, event.ip) for event in lockouts} == {("dana", "127.0.0.1")}


def test_lockout_keyed_on_username_and_ip_when_other_ip_or_user_signs_in(client, dana):
    other = UserFactory(username="erin", staff=True)
    other.set_password(PASSWORD)
    other.save()
    for _ in range(5):
        _login(client, "dana", "wrong password guess")
    assert _login(client, "dana", PASSWORD, ip="198.51.100.7").status_code == 302
    client.logout()
    assert _login(client, "erin", PASSWORD).status_code == 302


def test_lockout_lifts_after_cooloff_and_unlock_is_audited_when_15_minutes_pass(client, dana):
    for _ in range(5):
        _login(client, "dana", "wrong password guess")
    assert _login(client, "dana", PASSWORD).status_code == 429
    for attempt in AccessAttempt.objects.all():  # not an audited model: move the clock back
        attempt.attempt_time = timezone.now() - timedelta(minutes=16)
        attempt.save()
    assert _login(client, "dana", PASSWORD).status_code == 302
    assert "unlock" in _kinds()
    assert not AccessAttempt.objects.exists()


def test_signing_password_counts_as_failed_login_and_locks_out_when_wrong_five_times(
    client, review, password
):
    _, roles = review
    requirement = roles["QA Lead"]
    url = reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk])
    client.force_login(requirement.assignee)
    shown = client.get(url).context["shown_token"]  # the version of the release it showed
    for attempt in range(1, 6):
        response = client.post(
            url,
            {
                "shown": shown,
                "meaning": "approved",
                "username": "qa.lead",
                "password": "not my password",
            },
        )
        assert response.status_code == (200 if attempt < 5 else 429)  # the 5th locks out
    assert AuditEvent.objects.filter(kind="login_failed", username="qa.lead").count() == 5
    assert AuditEvent.objects.filter(kind="lockout", username="qa.lead").exists()
    response = client.post(
        url, {"shown": shown, "meaning": "approved", "username": "qa.lead", "password": password}
    )
    assert response.status_code == 429
    assert not Signature.objects.filter(requirement=requirement).exists()


# ---------------------------------------------------------------- sessions
def test_session_idle_limit_is_30_minutes_renewed_by_each_request(client, dana):
    client.force_login(dana)
    assert client.get("/admin/").status_code == 200
    session = Session.objects.get(session_key=client.session.session_key)
    remaining = (session.expire_date - timezone.now()).total_seconds()
    assert 29 * 60 < remaining <= 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


def test_session_ends_and_is_audited_when_older_than_12_hours(client, dana):
    client.force_login(dana)
    session = client.session
    session[AUTH_AT_KEY] = int(time.time()) - 12 * 3600 - 5
    session.save()
    response = client.get("/admin/")
    assert response.status_code == 302 and "/login/" in response.url
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(kind="session_expired", actor=dana).exists()


def test_session_continues_when_younger_than_12_hours(client, dana):
    client.force_login(dana)
    session = client.session
    session[AUTH_AT_KEY] = int(time.time()) - 12 * 3600 + 120
    session.save()
    assert client.get("/admin/").status_code == 200


def test_password_change_ends_other_sessions_but_keeps_the_changers(client, dana):
    from django.test import Client

    other = Client()
    other.force_login(dana)
    client.force_login(dana)
    response = client.post(
        reverse("admin:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a brand new passphrase here",
            "new_password2": "a brand new passphrase here",
        },
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    elsewhere = other.get("/admin/")
    assert elsewhere.status_code == 302 and "/login/" in elsewhere.url
    event = AuditEvent.objects.get(kind="sessions_ended")
    assert event.detail == {"sessions": 1, "reason": "password changed"}


def test_deactivation_ends_every_session_of_the_user_when_saved_inactive(client, dana):
    client.force_login(dana)
    key = client.session.session_key
    dana.is_active = False
    dana.save()
    assert not Session.objects.filter(session_key=key).exists()
    response = client.get("/admin/")
    assert response.status_code == 302 and "/login/" in response.url


def test_unrelated_user_save_keeps_sessions_when_password_and_activity_unchanged(client, dana):
    client.force_login(dana)
    dana.first_name = "Dana"
    dana.save()
    assert client.get("/admin/").status_code == 200
    assert not AuditEvent.objects.filter(kind="sessions_ended").exists()
