"""Failed sign-ins counted per account across addresses, with a progressive delay and an alarm
(issue #14, point 14; dcmms_release/account_throttle.py, docs/security.md §1d).

The throttle's time is a fake clock (``throttle.clock``): waiting is moving it on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from axes.models import AccessAttempt
from django.test import Client, override_settings
from django.urls import reverse
from kombu.exceptions import OperationalError

from checklist.models_audit import AuditEvent
from checklist.tasks import send_security_alert
from dcmms_release import cache_guard
from dcmms_release.account_throttle import throttle
from signoffs.models import Signature
from tests.factories import UserFactory
from tests.security.fault_servers import closed_port

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN = "/admin/login/"
SECURITY = "security@example.com"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(throttle, "clock", fake)
    return fake


@pytest.fixture
def alerts(settings, monkeypatch, mailoutbox):
    """Alarms mail SECURITY; the worker's task runs when queued."""
    settings.SECURITY_ALERT_EMAIL = [SECURITY]
    monkeypatch.setattr(
        send_security_alert, "delay", lambda event_id: send_security_alert(event_id)
    )
    return mailoutbox


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what the requests queued for after their commit (the alarm's mail)."""

    def run(work, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return work(*args, **kwargs)

    return run


@pytest.fixture(autouse=True)
def _no_outage():
    cache_guard.reset()
    yield
    cache_guard.reset()


@pytest.fixture
def ceo(db):
    return UserFactory(username="ceo", staff=True)


def _login(client, username, password, ip):
    return client.post(
        LOGIN + "?next=/admin/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def _guess(client, username="ceo", *, addresses=20, each=4, net="203.0.113"):
    """``addresses`` × ``each`` wrong passwords, each address below axes' limit of 5."""
    return [
        _login(client, username, f"guess {n}-{k}", ip=f"{net}.{n + 1}").status_code
        for n in range(addresses)
        for k in range(each)
    ]


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def _checked_failures(username="ceo") -> int:
    """Failed sign-ins whose password was checked (not refused by the delay)."""
    failed = AuditEvent.objects.filter(kind="login_failed", username=username)
    return sum(1 for event in failed if "throttled_seconds" not in event.detail)


# ---------------------------------------------------------------- the distributed guess
def test_account_throttle_refuses_the_right_password_from_a_new_address_when_20_addresses_guessed(
    client, ceo, clock, alerts, committed
):
    statuses = committed(_guess, client)
    assert statuses[:10] == [200] * 10  # ten passwords checked, each wrong
    assert set(statuses[10:]) == {429}  # the other 70 refused unchecked
    assert _checked_failures() == 10
    assert not AccessAttempt.objects.filter(failures_since_start__gte=5).exists()  # axes: none

    owner = Client()
    refused = _login(owner, "ceo", PASSWORD, ip="198.51.100.7")
    assert refused.status_code == 429 and not _signed_in(owner)
    wait = int(refused["Retry-After"])
    assert wait >= 1 and "Try again in" in refused.content.decode()

    event = AuditEvent.objects.get(kind="account_attack")
    assert event.username == "ceo" and event.detail["failures"] == 10
    assert event.detail["addresses"] == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    assert len(alerts) == 1
    mail = alerts[0]
    assert mail.to == [SECURITY] and "ceo" in mail.subject
    assert "203.0.113.2" in mail.body and "Failed sign-ins: 10" in mail.body

    clock.advance(wait)
    assert _login(owner, "ceo", PASSWORD, ip="198.51.100.7").status_code == 302
    assert _signed_in(owner)


def test_account_throttle_delay_doubles_and_is_capped_at_15_minutes_when_guessing_goes_on(
    client, ceo, clock
):
    _guess(client, addresses=3, each=4)  # 10 checked, 2 refused
    waits = []
    for n in range(12):
        refused = _login(client, "ceo", "early", ip=f"192.0.2.{n + 1}")
        assert refused.status_code == 429
        waits.append(int(refused["Retry-After"]))
        clock.advance(waits[-1])
        assert _login(client, "ceo", f"guess {n}", ip=f"192.0.2.{n + 1}").status_code == 200
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    assert _checked_failures() == 22


def test_account_throttle_forgets_the_count_when_the_right_password_signs_in(client, ceo, clock):
    _guess(client, addresses=3, each=4)
    clock.advance(1)
    owner = Client()
    assert _login(owner, "ceo", PASSWORD, ip="198.51.100.7").status_code == 302
    assert throttle.state("ceo") == {}
    statuses = _guess(client, addresses=3, each=3, net="192.0.2")  # nine: under the limit again
    assert statuses == [200] * 9
    assert _login(Client(), "ceo", PASSWORD, ip="198.51.100.8").status_code == 302


def test_account_throttle_alarms_once_per_attack_when_guessing_goes_on(
    client, ceo, clock, alerts, committed
):
    committed(_guess, client, addresses=3, each=4)
    for _ in range(5):  # the attack goes on at the pace the delay allows
        clock.advance(900)
        committed(_login, client, "ceo", "another guess", ip="203.0.113.99")
    assert _checked_failures() == 15
    assert AuditEvent.objects.filter(kind="account_attack").count() == 1
    assert len(alerts) == 1

    clock.advance(60 * 60 + 1)  # a whole window without a failure: the next attack is new
    assert committed(_guess, client, addresses=3, each=4, net="192.0.2")[:10] == [200] * 10
    assert AuditEvent.objects.filter(kind="account_attack").count() == 2
    assert len(alerts) == 2


def test_account_throttle_holds_a_name_that_is_no_account_alike_without_alarm(
    client, clock, alerts, committed
):
    statuses = committed(_guess, client, username="nobody-here", addresses=3, each=4)
    assert statuses[:10] == [200] * 10 and statuses[10:] == [429, 429]  # same answers
    assert not AuditEvent.objects.filter(kind="account_attack").exists()
    assert alerts == []


def test_account_throttle_attempts_refused_during_the_delay_are_no_axes_failures(
    client, ceo, clock
):
    _guess(client, addresses=3, each=4)
    owner = Client()
    for _ in range(6):  # the owner keeps trying from one address during the delay
        assert _login(owner, "ceo", PASSWORD, ip="198.51.100.7").status_code == 429
    assert not AccessAttempt.objects.filter(ip_address="198.51.100.7").exists()
    clock.advance(1)
    assert _login(owner, "ceo", PASSWORD, ip="198.51.100.7").status_code == 302


def test_account_throttle_lets_a_known_browser_sign_in_when_others_guessed_the_password(
    client, ceo, clock
):
    owner = Client()
    assert _login(owner, "ceo", PASSWORD, ip="198.51.100.7").status_code == 302
    cookie = owner.cookies["dcmms_browser"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    owner.post(reverse("admin:logout"))

    _guess(client)  # 10 checked, then every attempt held
    assert _login(Client(), "ceo", PASSWORD, ip="198.51.100.8").status_code == 429
    assert _login(owner, "ceo", PASSWORD, ip="198.51.100.9").status_code == 302  # not held


def test_account_throttle_holds_a_known_browser_too_when_it_fails_itself_ten_times(
    client, ceo, clock
):
    owner = Client()
    assert _login(owner, "ceo", PASSWORD, ip="198.51.100.7").status_code == 302
    owner.post(reverse("admin:logout"))
    statuses = [
        _login(owner, "ceo", f"guess {n}", ip=f"198.51.100.{n // 4 + 10}").status_code
        for n in range(10)
    ]
    assert statuses == [200] * 10
    assert _login(owner, "ceo", PASSWORD, ip="198.51.100.20").status_code == 429


# ---------------------------------------------------------------- the signing password
def test_signing_password_counts_toward_the_account_throttle_when_wrong_from_many_addresses(
    client, review, password, clock
):
    _, roles = review
    requirement = roles["QA Lead"]
    url = reverse("admin:signoffs_signoffrequirement_sign", args=[requirement.pk])
    client.force_login(requirement.assignee)
    shown = client.get(url).context["shown_token"]

    def sign(secret, ip):
        data = {"shown": shown, "meaning": "approved", "username": "qa.lead", "password": secret}
        return client.post(url, data, REMOTE_ADDR=ip)

    statuses = [sign("not my password", f"203.0.113.{n // 4 + 1}").status_code for n in range(10)]
    assert statuses == [200] * 10  # refused on the form, each counted
    refused = sign(password, "198.51.100.7")
    assert refused.status_code == 429 and int(refused["Retry-After"]) == 1
    assert not Signature.objects.filter(requirement=requirement).exists()
    clock.advance(1)
    assert sign(password, "198.51.100.7").status_code == 302
    assert Signature.objects.filter(requirement=requirement).count() == 1
    assert throttle.state("qa.lead") == {}  # the right signing password ended the delay


def test_signature_give_refuses_naming_the_wait_when_the_signers_account_is_held(
    review, password, clock, rf
):
    from django.core.exceptions import ValidationError

    from signoffs.services import signature_give

    _, roles = review
    requirement = roles["Security Officer"]
    signer = requirement.assignee

    def give(secret, ip):
        request = rf.post("/sign/", REMOTE_ADDR=ip)  # a client's request, no session
        return signature_give(
            requirement=requirement,
            user=signer,
            password=secret,
            meaning="approved",
            username=signer.username,
            request=request,
        )

    for n in range(10):
        with pytest.raises(ValidationError, match="password is not correct"):
            give("not my password", f"203.0.113.{n // 4 + 1}")
    with pytest.raises(ValidationError, match="try again in 1 second. Nothing was signed"):
        give(password, "198.51.100.7")
    assert not Signature.objects.filter(requirement=requirement).exists()


def test_known_browser_cookie_carries_the_host_prefix_and_secure_when_production(
    client, ceo, settings
):
    settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME = "__Host-sessionid", "__Host-csrf"
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    response = client.post(
        LOGIN, {"username": "ceo", "password": PASSWORD}, REMOTE_ADDR="198.51.100.7", secure=True
    )
    assert response.status_code == 302
    cookie = response.cookies["__Host-dcmms_browser"]
    assert cookie["secure"] and cookie["httponly"] and cookie["path"] == "/"
    assert not cookie["domain"] and "dcmms_browser" not in response.cookies


# ---------------------------------------------------------------- faults and settings
def test_account_throttle_still_holds_per_process_when_the_cache_is_down(client, ceo, clock):
    dead = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    with override_settings(CACHES=dead):
        statuses = _guess(client, addresses=3, each=4)
        refused = _login(Client(), "ceo", PASSWORD, ip="198.51.100.7")
    assert statuses[:10] == [200] * 10 and statuses[10:] == [429, 429]
    assert refused.status_code == 429


def test_attack_alarm_stays_an_audit_event_and_is_logged_when_the_broker_is_down(
    client,
    ceo,
    clock,
    settings,
    monkeypatch,
    mailoutbox,
    committed,
    caplog,
):
    settings.SECURITY_ALERT_EMAIL = [SECURITY]

    def down(event_id):
        raise OperationalError("broker unreachable")

    monkeypatch.setattr(send_security_alert, "delay", down)
    committed(_guess, client, addresses=3, each=4)
    event = AuditEvent.objects.get(kind="account_attack")
    assert mailoutbox == []
    assert f"audit event {event.pk}) not mailed: broker unavailable" in caplog.text


def test_settings_refuse_an_account_throttle_window_not_longer_than_the_longest_delay():
    started = subprocess.run(
        [sys.executable, "-c", "import dcmms_release.settings"],
        env={**os.environ, "ACCOUNT_THROTTLE_WINDOW": "900", "ACCOUNT_THROTTLE_MAX_DELAY": "900"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "ACCOUNT_THROTTLE_WINDOW=900 must be longer than" in started.stderr
