"""Django's SQLite backend with the portal's before-commit step (dcmms_release.db)."""

import sqlite3

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper

from dcmms_release.db import BeforeCommitMixin

# The import and criterion links mark the history rows they bulk-insert by the keys SQLite
# returns (RETURNING, from 3.35); older versions would leave them out of the audit chain.
if sqlite3.sqlite_version_info < (3, 35):
    raise ImproperlyConfigured(
        f"SQLite {sqlite3.sqlite_version} is too old for the portal: 3.35 or later is needed."
    )


class DatabaseWrapper(BeforeCommitMixin, SQLiteWrapper):
    pass
