"""Production settings (issue #14, points 16 and 17): the session and CSRF cookies carry the
``__Host-`` prefix, and docs/operations.md's list of variables to set is complete — with exactly
that list, ``manage.py check --deploy`` is clean."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
PRODUCTION = {
    "DJANGO_SECURE": "true",
    "DJANGO_DEBUG": "false",
    "ALLOWED_HOSTS": "release.example.com",
}
COOKIES = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in (
    "SESSION_COOKIE_NAME", "SESSION_COOKIE_PATH", "SESSION_COOKIE_DOMAIN", "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_NAME", "CSRF_COOKIE_PATH", "CSRF_COOKIE_DOMAIN", "CSRF_COOKIE_SECURE",
)}))
"""


def _cookie_settings(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALLOWED_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="dcmms_release.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        DCMMS_VAR_DIR=str(tmp_path / "var"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    result = subprocess.run(
        [sys.executable, "-c", COOKIES],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- 16. __Host- cookies
def test_cookie_settings_carry_the_host_prefix_when_production_environment(tmp_path):
    cookies = _cookie_settings(tmp_path, **PRODUCTION)
    assert cookies == {
        "SESSION_COOKIE_NAME": "__Host-sessionid",
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_NAME": "__Host-csrftoken",
        "CSRF_COOKIE_PATH": "/",
        "CSRF_COOKIE_DOMAIN": None,
        "CSRF_COOKIE_SECURE": True,
    }


def test_cookie_names_stay_plain_when_served_over_local_http(tmp_path):
    # a browser refuses a __Host- cookie that is not Secure: `make run` over http needs these
    cookies = _cookie_settings(tmp_path)
    assert cookies["SESSION_COOKIE_NAME"] == "sessionid"
    assert cookies["CSRF_COOKIE_NAME"] == "csrftoken"
    assert cookies["SESSION_COOKIE_SECURE"] is False


def _set_cookie(response, name: str) -> str:
    assert name in response.cookies, sorted(response.cookies)
    return response.cookies[name].output(header="").strip()


@pytest.mark.django_db
def test_sign_in_sets_host_prefixed_cookies_for_path_root_without_domain_when_production(
    client, settings, tmp_path
):
    for name, value in _cookie_settings(tmp_path, **PRODUCTION).items():
        setattr(settings, name, value)
    user = UserFactory(username="pm", staff=True)
    login = reverse("admin:login")
    page = client.get(login, secure=True)
    assert page.status_code == 200
    csrf = _set_cookie(page, "__Host-csrftoken")
    response = client.post(
        login,
        {"username": user.username, "password": "correct horse battery staple"},
        secure=True,
    )
    assert response.status_code == 302
    session = _set_cookie(response, "__Host-sessionid")
    for header in (csrf, session):
        attributes = [part.strip().lower() for part in header.split(";")]
        assert "path=/" in attributes and "secure" in attributes, header
        assert not any(part.startswith("domain") for part in attributes), header
    assert "httponly" in session.lower()
    assert "sessionid" not in {name for name in response.cookies if not name.startswith("__")}
    assert client.get(reverse("admin:index"), secure=True).status_code == 200


# ---------------------------------------------------------------- 17. the production list
def production_list(text: str) -> dict[str, str]:
    """The variables of the block after "For production set at least": NAME=value lines (and
    comments); anything else in the block is an error, so the list stays machine-readable."""
    start = text.index("For production set at least")
    opening = text.index("```bash\n", start) + len("```bash\n")
    block = text[opening : text.index("```", opening)]
    variables: dict[str, str] = {}
    for line in block.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(\S.*)", line)
        assert match, f"not NAME=value in the production list: {line!r}"
        variables[match[1]] = match[2]
    return variables


def _example(value: str) -> str:
    """An example value: each <placeholder> becomes 64 random hex characters."""
    return re.sub(r"<[^>]*>", lambda _: secrets.token_hex(32), value)


def test_operations_production_list_makes_check_deploy_clean_when_set_alone():
    listed = production_list(OPERATIONS.read_text(encoding="utf-8"))
    assert "DJANGO_SECURE" in listed and "DJANGO_SECRET_KEY" in listed
    source = (ROOT / "dcmms_release" / "settings.py").read_text(encoding="utf-8")
    unread = [name for name in listed if f'"{name}"' not in source]
    assert not unread, f"listed but never read by the settings: {unread}"
    env = {"PATH": os.environ.get("PATH", ""), **{k: _example(v) for k, v in listed.items()}}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
