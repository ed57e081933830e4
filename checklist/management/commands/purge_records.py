"""Purge the records whose retention period is over (checklist.retention), audited.

python manage.py purge_records --dry-run            # what would go, per table; writes nothing
python manage.py purge_records [--before DATE] [--by USERNAME]

Run it as the tables' owner (the role that runs migrate): the runtime role cannot delete audit
records at all, by design. ``--before`` can only make the purge smaller (an older cutoff).
"""

from __future__ import annotations

import getpass
import os
from datetime import date

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from checklist.retention import PurgeReport, records_purge, retention_cutoff, retention_years


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"--before {text!r}: expected a date such as 2018-01-31.") from exc


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (e.g. a container's arbitrary uid)
        return f"uid {os.getuid()}"


class Command(BaseCommand):
    help = (
        "Delete releases (with their history and audit events) whose retention period is over, "
        "and audit events tied to no release older than it; the purge itself is audited."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would go, per table; write nothing"
        )
        parser.add_argument(
            "--before",
            type=str,
            metavar="DATE",
            help="purge only what is older than DATE (never younger than the retention period)",
        )
        parser.add_argument(
            "--by", metavar="USERNAME", help="the person running the purge (recorded as actor)"
        )

    def handle(self, *args, dry_run: bool, before: str | None, by: str | None, **options):
        try:
            years = retention_years()
            cutoff = retention_cutoff(before=_date(before) if before else None)
        except (ImproperlyConfigured, ValidationError) as exc:
            raise CommandError(_message(exc)) from exc
        actor = None
        os_user = _os_user()
        if by:
            actor = get_user_model().objects.filter(username=by).first()
            if actor is None:
                raise CommandError(f"--by {by!r}: no such user.")
        username = actor.get_username() if actor else os_user
        try:
            report = records_purge(cutoff=cutoff, username=username, actor=actor, dry_run=dry_run)
        except ValidationError as exc:
            raise CommandError(_message(exc)) from exc
        except DatabaseError as exc:
            cause = getattr(exc.__cause__, "sqlstate", None)
            if "append-only" in str(exc) or cause == "42501":  # insufficient privilege
                raise CommandError(
                    "The database refused the purge (append-only audit records): run it as the "
                    "tables' owner, the role that runs migrate. Nothing was deleted."
                ) from exc
            raise
        self._print(report, years=years, dry_run=dry_run, who=username)

    def _print(self, report: PurgeReport, *, years: int, dry_run: bool, who: str) -> None:
        out = self.stdout.write
        out(
            f"Retention {years} years: cutoff {report.cutoff.isoformat()} "
            "(records whose retention clock started before it)."
        )
        out(f"Releases to purge: {len(report.releases)}")
        for release in report.releases:
            started = (
                f"decided {release.decided_at:%Y-%m-%d}"
                if release.decided_at
                else f"never decided, last changed {release.last_change:%Y-%m-%d}"
            )
            out(f"  #{release.id} {release.name} ({release.version}): {started}")
        out("Rows per table:" if report.counts else "Rows per table: none")
        width = max((len(table) for table in report.counts), default=0)
        for table, count in report.counts.items():
            out(f"  {table:<{width}}  {count}")
        total = sum(report.counts.values())
        if dry_run:
            out(f"Dry run: {total} rows would be deleted; nothing was written.")
            return
        out(
            f"Purged {total} rows as {who}: audit event #{report.event.pk}, purge marker "
            f"#{report.marker.pk} (chain entry {report.link_seq})."
        )


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)
