"""Django's PostgreSQL backend with the portal's before-commit step (dcmms_release.db)."""

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper

from dcmms_release.db import BeforeCommitMixin


class DatabaseWrapper(BeforeCommitMixin, PostgresWrapper):
    pass
