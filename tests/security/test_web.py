"""Web hardening: deploy checks, headers, CSP compatibility, error page, health endpoint."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from checklist.audit import audit_record
from dcmms_release import health as health_module
from signoffs.services import release_access_refresh
from tests.factories import ItemFactory, ReleaseFactory, SectionFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def _check_deploy(**extra) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_URL"))
    }
    env.update(extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# ---------------------------------------------------------------- check --deploy
def test_check_deploy_is_clean_when_production_environment():
    result = _check_deploy(
        DJANGO_SECURE="true",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_secure_is_off_for_local_http():
    result = _check_deploy(DJANGO_DEBUG="false", DJANGO_SECRET_KEY=secrets.token_urlsafe(60))
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


# ---------------------------------------------------------------- headers
@pytest.mark.django_db
def test_security_headers_are_sent_when_login_page_served(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "'unsafe-inline'" in policy["style-src"]


@pytest.mark.django_db
def test_cache_control_is_no_store_when_signed_in(client):
    user = UserFactory(staff=True)
    release = ReleaseFactory(owner=user)
    release_access_refresh(release=release, user=user)
    client.force_login(user)
    for url in (
        "/admin/",
        reverse("admin:checklist_release_change", args=[release.pk]),
        reverse("admin:checklist_release_export", args=[release.pk, "json"]),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"], url


@pytest.mark.django_db
def test_admin_pages_carry_no_inline_script_when_rendered_under_csp(client, review, password):
    release, roles = review
    ItemFactory(section=SectionFactory(release=release, number="2"), text="<b>bold</b>")
    qa = roles["QA Lead"]
    release_access_refresh(release=release, user=release.owner)
    client.force_login(release.owner)
    urls = [
        "/admin/",
        reverse("admin:checklist_release_changelist"),
        reverse("admin:checklist_release_change", args=[release.pk]),
        reverse("admin:checklist_release_roles", args=[release.pk]),
        reverse("admin:checklist_item_changelist"),
    ]
    pages = [client.get(url) for url in urls]
    signer = Client()
    signer.force_login(qa.assignee)
    sign_url = reverse("admin:signoffs_signoffrequirement_sign", args=[qa.pk])
    pages.append(signer.get(sign_url))
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert not INLINE_SCRIPT.findall(html), page.request["PATH_INFO"]
        assert not INLINE_HANDLER.findall(html), page.request["PATH_INFO"]
        assert "Content-Security-Policy" in page
    signed = signer.post(
        sign_url,
        {
            "shown": pages[-1].context["shown_token"],  # the version of the release it showed
            "meaning": "approved",
            "username": qa.assignee.username,
            "password": password,
        },
    )
    assert signed.status_code == 302
    assert qa.signatures.count() == 1


# ---------------------------------------------------------------- error page
@pytest.mark.django_db
def test_server_error_page_shows_incident_id_and_no_detail_when_a_view_fails(settings, caplog):
    settings.ROOT_URLCONF = "tests.security.urls_boom"
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    incident = response["X-Incident-Id"]
    html = response.content.decode()
    assert re.fullmatch(r"[0-9a-f]{12}", incident) and incident in html
    assert "hunter2" not in html and "Traceback" not in html and "RuntimeError" not in html
    assert f"Incident {incident}" in caplog.text


# ---------------------------------------------------------------- health
@pytest.mark.django_db
def test_health_answers_ok_for_database_cache_and_broker_when_all_reachable(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_health_answers_503_naming_only_the_check_when_broker_unreachable(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"
    settings.HEALTH_BROKER_TIMEOUT = 0.5
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json() == {
        "status": "fail",
        "checks": {"database": "ok", "cache": "ok", "broker": "fail"},
    }
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_health_hides_the_error_text_when_database_check_fails(client, monkeypatch):
    def broken():
        raise RuntimeError("password authentication failed for user dcmms")

    monkeypatch.setitem(health_module.CHECKS, "database", broken)
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "fail"
    assert "password" not in response.content.decode()


@pytest.mark.django_db
def test_health_refuses_anything_but_get(client):
    assert client.post("/health/").status_code == 405


@pytest.mark.django_db
def test_health_is_not_rate_limited_when_probed_often(client, settings):
    settings.RATE_LIMIT_PER_MINUTE = 2
    statuses = {client.get("/health/").status_code for _ in range(5)}
    assert statuses == {200}
    audit_record("login", username="probe")  # the trail is writable while probed


@pytest.mark.parametrize(
    ("extra", "backend"),
    [
        ({}, "django.core.cache.backends.locmem.LocMemCache"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/3"}, "django.core.cache.backends.redis.RedisCache"),
    ],
)
def test_rate_limit_cache_is_shared_redis_when_redis_url_is_set(extra, backend):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CACHE_URL")}
    code = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    result = subprocess.run(
        [sys.executable, "-c", f"import django, os; django.setup(); {code}"],
        cwd=ROOT,
        env={**env, **extra, "DJANGO_SETTINGS_MODULE": "dcmms_release.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip().splitlines()[-1] == backend, result.stderr
