import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# The seed checklist (dCMMS Release 2), shipped with the demo data; mojibake and all.
SEED_PATH = ROOT / "fixtures" / "seed_checklist.md"


@pytest.fixture
def seed_path() -> Path:
    return SEED_PATH


@pytest.fixture
def seed_text() -> str:
    return SEED_PATH.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests hash many passwords; the production hasher is deliberately slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The append-only triggers (checklist.triggers) are installed by migrate. The test
    database's teardown deletes rows (a flush after transactional tests), so the purge switch is
    open for the session; tests of the triggers close it for their own transaction
    (`append_only` fixture in tests/security/conftest.py)."""
    from django.db import connection

    from checklist.triggers import PG_SETTING, purge_allowed_set

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                name = connection.ops.quote_name(connection.settings_dict["NAME"])
                cursor.execute(f"ALTER DATABASE {name} SET {PG_SETTING} = 'on'")
        purge_allowed_set(True, local=False)


@pytest.fixture(scope="session", autouse=True)
def _test_transaction_ends_without_after_transaction_work():
    """Work queued to run once a transaction has ended, committed or rolled back
    (dcmms_release.db.after_transaction: a refusal's audit event), belongs to the transactions
    of the code under test. A test's own wrapping transaction (the ``db`` fixture) is rolled
    back to undo the test: what is still queued then is dropped with it, not written into the
    next test's database."""
    from django.db import connections
    from django.test import testcases

    original = testcases.TestCase._rollback_atomics.__func__

    def rollback_atomics(cls, atomics):
        for connection in connections.all(initialized_only=True):
            getattr(connection, "after_end", []).clear()
        original(cls, atomics)

    testcases.TestCase._rollback_atomics = classmethod(rollback_atomics)
    yield
    testcases.TestCase._rollback_atomics = classmethod(original)


@pytest.fixture(autouse=True)
def _own_anchor_log(settings, tmp_path):
    """The chain heads exported by a test go to its own anchor log, not the checkout's var/."""
    settings.AUDIT_ANCHOR_LOG = tmp_path / "audit_anchors.jsonl"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The rate limit counts requests per user id in the cache; ids repeat across tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


# ---------------------------------------------------------------- service markers
@pytest.fixture(autouse=True)
def _service_guard(request):
    """Tests marked `postgres` or `broker` only mean something on that service: `make test`
    deselects them by marker, the second run of .ci/run selects them, and here they fail loudly
    when the service is not there — never a silent skip."""
    if request.node.get_closest_marker("postgres"):
        from django.db import connection

        if connection.vendor != "postgresql":
            pytest.fail(
                f"{request.node.nodeid} needs PostgreSQL (DATABASE_URL=postgres://…); "
                f"the database here is {connection.vendor}"
            )
    if request.node.get_closest_marker("broker"):
        from django.conf import settings

        if not settings.CELERY_BROKER_URL.startswith("redis://"):
            pytest.fail(f"{request.node.nodeid} needs a Redis broker (CELERY_BROKER_URL=redis://…)")


# ---------------------------------------------------------------- no skips in CI
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped and os.environ.get("CI"):
        terminalreporter.write_line(
            f"CI: {len(skipped)} test(s) skipped; in CI a skip is a failure.", red=True
        )


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter and reporter.stats.get("skipped") and os.environ.get("CI") and exitstatus == 0:
        session.exitstatus = 1
