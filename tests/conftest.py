from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _find_seed() -> Path:
    """The seed checklist: shipped in fixtures/, the same file as shared/seeds/000_*.txt."""
    return ROOT / "fixtures" / "seed_checklist.md"


SEED_PATH = _find_seed()


@pytest.fixture
def seed_path() -> Path:
    return SEED_PATH


@pytest.fixture
def seed_text() -> str:
    return SEED_PATH.read_text(encoding="utf-8")
