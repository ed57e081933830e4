import pytest

from tests.security.access_fixtures import cross  # noqa: F401  (issue #14 access tests)
from tests.signoffs.conftest import password, pm, review  # noqa: F401  (shared fixtures)


@pytest.fixture
def append_only(db):
    """Close the purge switch for this test's transaction: the triggers apply as in production."""
    from checklist.triggers import purge_allowed_set

    purge_allowed_set(False, local=True)
