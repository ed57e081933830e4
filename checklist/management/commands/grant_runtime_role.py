"""Grant a PostgreSQL runtime role exactly what the portal needs, and no more.

The tables are owned by the role that runs migrations; the portal's web and worker processes
connect as a separate *runtime* role. That role may read everything and add rows, but on the
audit records (history, signature events, audit events) it has no UPDATE, DELETE or TRUNCATE
privilege at all, on signatures it may update only ``state``, on decision records only the
columns that are filled in later — and, not owning any table, it can neither ``DISABLE
TRIGGER`` nor drop one. Run after every migrate (as the owner)::

    python manage.py grant_runtime_role dcmms_runtime
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from checklist.triggers import protections

SIGNATURE_UPDATABLE = ("state",)


def runtime_grants(role: str, connection) -> list[str]:
    """The GRANT / REVOKE statements for ``role`` (quoted), in order."""
    quote = connection.ops.quote_name
    who = quote(role)
    protected = {rule.table for rule in protections(connection.vendor)}
    existing = set(connection.introspection.table_names())
    signature = apps.get_model("signoffs.Signature")._meta.db_table
    record_model = apps.get_model("signoffs.DecisionRecord")
    record = record_model._meta.db_table
    database = quote(connection.settings_dict["NAME"])
    statements = [
        f"GRANT CONNECT ON DATABASE {database} TO {who}",
        f"GRANT USAGE ON SCHEMA public TO {who}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}",
    ]
    for table in sorted(existing):
        name = quote(table)
        if table in (signature, record):
            columns = SIGNATURE_UPDATABLE
            if table == record:  # the same list the append-only triggers leave writable
                columns = tuple(
                    record_model._meta.get_field(name).column for name in record_model.LATER_FILLED
                )
            listed = ", ".join(quote(c) for c in columns)
            statements.append(f"GRANT SELECT, INSERT ON {name} TO {who}")
            statements.append(f"GRANT UPDATE ({listed}) ON {name} TO {who}")
        elif table in protected:
            statements.append(f"GRANT SELECT, INSERT ON {name} TO {who}")
        else:
            statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {who}")
    return statements


class Command(BaseCommand):
    help = "Grant a non-owner PostgreSQL role the portal's runtime privileges (append-only audit)."

    def add_arguments(self, parser):
        parser.add_argument("role", help="an existing PostgreSQL role that owns no table")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, role: str, database: str, **options):
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError("Runtime roles exist on PostgreSQL only.")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = %s",
                [role],
            )
            if cursor.fetchone()[0]:
                raise CommandError(f"{role} owns tables; the runtime role must own none.")
        statements = runtime_grants(role, connection)
        with transaction.atomic(using=database), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"Granted runtime privileges to {role} ({len(statements)} statements).")
