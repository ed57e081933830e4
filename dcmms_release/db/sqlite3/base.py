"""Django's SQLite backend with the portal's before-commit step (dcmms_release.db)."""

from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper

from dcmms_release.db import BeforeCommitMixin


class DatabaseWrapper(BeforeCommitMixin, SQLiteWrapper):
    pass
