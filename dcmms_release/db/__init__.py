"""Database engines of the portal: Django's PostgreSQL and SQLite backends with one addition,
work that must happen inside a transaction just before it commits.

Django runs callbacks after a commit (``transaction.on_commit``), none before. The audit chain
(``checklist.chain``) must link the rows a transaction wrote inside that same transaction, so
that a row written by anyone else — straight into a table, past the portal — never gets a link
(docs/security.md §3b). ``settings.DATABASES`` names these engines (``ENGINES``); everything else
is Django's backend unchanged.

- ``before_commit(func)`` registers ``func(connection)``, called by ``commit()`` while the
  transaction is still open; if it raises, the transaction is rolled back and nothing commits.
- ``connection.tx_state`` is a dict for the open transaction, emptied at commit and rollback.
- ``after_transaction(func, connection)`` runs ``func()`` once the outermost transaction has
  ended, committed *or rolled back*, back in autocommit (at once outside a transaction): for a
  record that must outlive the transaction it describes, e.g. a refused write's audit event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

ENGINES = {
    "django.db.backends.postgresql": "dcmms_release.db.postgresql",
    "django.db.backends.sqlite3": "dcmms_release.db.sqlite3",
}

_BEFORE_COMMIT: list[Callable] = []


def before_commit(func: Callable) -> Callable:
    """Register ``func(connection)`` to run in every transaction just before its COMMIT."""
    if func not in _BEFORE_COMMIT:
        _BEFORE_COMMIT.append(func)
    return func


def after_transaction(func: Callable[[], object], connection) -> None:
    """Run ``func()`` when the connection's outermost transaction has ended, whatever its end."""
    if connection.in_atomic_block:
        connection.after_end.append(func)
    else:
        func()


class BeforeCommitMixin:
    """Runs the registered functions before COMMIT; keeps per-transaction state and the
    functions to run once the transaction has ended."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tx_state: dict = {}
        self.after_end: list[Callable[[], object]] = []

    def commit(self):
        try:
            for func in _BEFORE_COMMIT:
                func(self)
        except BaseException:
            self.rollback()
            raise
        self.tx_state = {}
        super().commit()

    def rollback(self):
        self.tx_state = {}
        super().rollback()

    def set_autocommit(self, autocommit, *args, **kwargs):
        # Django turns autocommit back on when an outermost atomic block ends, after its commit
        # or its rollback: the transaction is over, and what runs now commits on its own.
        super().set_autocommit(autocommit, *args, **kwargs)
        if autocommit and not self.in_atomic_block:
            while self.after_end:
                func = self.after_end.pop(0)
                try:
                    func()
                except Exception:
                    logger.exception("A function run after a transaction failed")

    def connect(self):
        self.tx_state = {}
        super().connect()
