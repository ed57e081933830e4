"""The portal keeps serving when its cache (Redis) is down or hung (issue #14, point 6):
sign-in and admin pages answer, the rate limit falls back to a per-process count and still
applies, the outage is logged once, and /health/ names the cache."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse

from dcmms_release import cache_guard
from signoffs.services import release_access_refresh
from tests.factories import ItemFactory, ReleaseFactory, SectionFactory, UserFactory
from tests.security.fault_servers import closed_port, silent_server

ROOT = Path(__file__).resolve().parents[2]
REDIS = "django.core.cache.backends.redis.RedisCache"
TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}


def _redis_cache(port: int) -> dict:
    return {
        "default": {
            "BACKEND": REDIS,
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": TIMEOUTS,
        }
    }


@pytest.fixture(autouse=True)
def _no_outage():
    """The outage and the per-process counters are process-wide: each test starts and ends
    without them."""
    cache_guard.reset()
    yield
    cache_guard.reset()


@pytest.fixture
def owner_release(db):
    owner = UserFactory(staff=True)
    release = ReleaseFactory(owner=owner)
    ItemFactory(section=SectionFactory(release=release, number="1"), text="p95 latency")
    release_access_refresh(release=release, user=owner)
    return owner, release


@pytest.mark.django_db
def test_login_and_admin_pages_answer_200_when_the_cache_is_down(client, owner_release):
    owner, release = owner_release
    with override_settings(CACHES=_redis_cache(closed_port())):
        assert client.get("/admin/login/").status_code == 200
        signed_in = client.post(
            "/admin/login/",
            {"username": owner.username, "password": "correct horse battery staple"},
        )
        assert signed_in.status_code == 302
        assert client.get("/admin/").status_code == 200
        dashboard = reverse("admin:checklist_release_dashboard", args=[release.pk])
        assert client.get(dashboard).status_code == 200  # the trend is computed, not cached
        page = client.get(reverse("admin:checklist_release_change", args=[release.pk]))
        assert page.status_code == 200


@pytest.mark.django_db
def test_rate_limit_still_applies_per_process_when_the_cache_is_down(
    client, owner_release, settings
):
    owner, _ = owner_release
    settings.RATE_LIMIT_PER_MINUTE = 3
    with override_settings(CACHES=_redis_cache(closed_port())):
        client.force_login(owner)
        statuses = [client.get("/admin/").status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429


@pytest.mark.django_db
def test_cache_outage_is_logged_once_not_per_request_when_every_call_fails(
    client, settings, caplog
):
    settings.CACHE_RETRY_SECONDS = 0  # every request asks the cache again, and fails
    with override_settings(CACHES=_redis_cache(closed_port())), caplog.at_level(logging.INFO):
        for _ in range(5):
            assert client.get("/admin/login/").status_code == 200
    down = [r for r in caplog.records if r.getMessage().startswith("Cache unreachable")]
    assert len(down) == 1
    assert down[0].levelno == logging.WARNING and down[0].name == "dcmms_release.cache"


@pytest.mark.django_db
def test_rate_limit_counts_in_the_shared_cache_again_when_the_cache_is_back(
    client, settings, caplog
):
    settings.CACHE_RETRY_SECONDS = 0
    with override_settings(CACHES=_redis_cache(closed_port())):
        assert client.get("/admin/login/").status_code == 200
    with caplog.at_level(logging.INFO):
        assert client.get("/admin/login/").status_code == 200  # LocMem again: it answers
    assert "Cache reachable again" in caplog.text
    from django.core.cache import cache

    shared = [key for key in cache._cache if "ratelimit:ip127.0.0.1" in key]
    assert len(shared) == 1  # the count lives in the shared cache again


@pytest.mark.django_db
def test_health_answers_503_naming_only_the_cache_when_the_cache_is_down(client):
    with override_settings(CACHES=_redis_cache(closed_port())):
        response = client.get("/health/")
    assert response.status_code == 503
    assert response.json() == {
        "status": "fail",
        "checks": {"database": "ok", "cache": "fail", "broker": "ok"},
    }
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_login_page_answers_within_the_cache_timeout_when_the_cache_hangs(
    client, owner_release, settings
):
    owner, _ = owner_release
    with silent_server() as port, override_settings(CACHES=_redis_cache(port)):
        started = time.monotonic()
        assert client.get("/admin/login/").status_code == 200
        client.force_login(owner)
        assert client.get("/admin/").status_code == 200  # the cache is not asked again yet
        elapsed = time.monotonic() - started
        health = client.get("/health/")
    assert elapsed < 3  # one socket timeout (0.5 s), not one per cache call
    assert health.status_code == 503 and health.json()["checks"]["cache"] == "fail"


def test_counter_incr_counts_per_key_in_the_process_when_the_cache_fails():
    with override_settings(CACHES=_redis_cache(closed_port())):
        counts = [cache_guard.counter_incr("k", timeout=60) for _ in range(3)]
        other = cache_guard.counter_incr("other", timeout=60)
    assert counts == [1, 2, 3] and other == 1


PROBE = """
import json, time, django
django.setup()
from django.conf import settings
from django.core.cache import cache
started = time.monotonic()
try:
    cache.get("probe")
    error = None
except Exception as exc:
    error = type(exc).__name__
print(json.dumps({"options": settings.CACHES["default"].get("OPTIONS", {}),
                  "error": error, "seconds": time.monotonic() - started}))
"""


def test_redis_cache_calls_time_out_when_the_configured_redis_never_answers(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CACHE_"))}
    with silent_server() as port:
        env.update(
            DJANGO_SETTINGS_MODULE="dcmms_release.settings",
            DCMMS_VAR_DIR=str(tmp_path / "var"),
            PYTHONPATH=str(ROOT),
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
        )
        result = subprocess.run(
            [sys.executable, "-c", PROBE],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["options"] == {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
    assert probe["error"] == "TimeoutError"
    assert probe["seconds"] < 3
