"""Move the portal's SQLite database into an empty PostgreSQL database (checklist.db_move).

python manage.py move_to_postgres --to postgres://USER@HOST:PORT/NAME

Run it with the portal stopped, the SQLite database configured as usual (``DATABASE_URL`` unset
or ``sqlite:///…``) and the same keys (``AUDIT_CHAIN_KEY``, the decision-record signing pair):
every row is copied with its primary key, the audit chain link for link; the copy is committed
only when the audit trail verifies on PostgreSQL as it does on SQLite. docs/operations.md,
"Moving from SQLite to PostgreSQL", has the whole procedure.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from checklist.db_move import MoveRefused, database_move, url_redacted


class Command(BaseCommand):
    help = (
        "Copy this portal's SQLite database, with its history, audit chain, records and "
        "permissions, into an empty PostgreSQL database (all or nothing)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--to",
            required=True,
            metavar="URL",
            help="the empty PostgreSQL database: postgres://USER[:PASSWORD]@HOST:PORT/NAME",
        )

    def handle(self, *args, to: str, **options):
        try:
            report = database_move(target_url=to, progress=self.stdout.write)
        except MoveRefused as exc:
            problems = "\n".join(f"- {problem}" for problem in exc.problems)
            raise CommandError(f"Not moved: nothing was copied.\n{problems}") from None
        self.stdout.write(
            f"Copied {report.rows} row(s) in {len(report.tables)} table(s), primary keys kept; "
            "sequences reset."
        )
        self.stdout.write(
            f"Audit chain: {report.links} link(s) copied as they were and verified on PostgreSQL; "
            f"append-only triggers on {report.triggers} table(s)."
        )
        for problem in report.source_problems:
            self.stderr.write(f"WARNING (already so on SQLite, copied as it was): {problem}")
        target = url_redacted(to)
        self.stdout.write(
            self.style.SUCCESS(f"Moved to {target}.")
            + " Next: point DATABASE_URL at it, keep the same keys, run `manage.py "
            "grant_runtime_role ROLE` and `manage.py verify_audit --records` there; keep the "
            "SQLite file as a backup."
        )
