"""``manage.py send_review_reminders [--date YYYY-MM-DD] [--dry-run]``: the daily reminder run
by hand, in this process (no broker, no worker needed). It computes the same digests as the beat
task and sends each through the same claim-then-send service, so a digest already sent that day
is not sent again; ``--dry-run`` prints who would get what and writes and sends nothing."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from signoffs.reminder_services import SEND_ERRORS, Outcome, digest_send
from signoffs.reminders import digests_due


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--date must be YYYY-MM-DD, not {value!r}") from error


class Command(BaseCommand):
    help = "Send (or with --dry-run, list) the review digests due on a day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="The day, YYYY-MM-DD (default: today in TIME_ZONE).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print who would get what; send nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        date = _date(options["date"]) if options["date"] else timezone.localdate()
        dry_run = options["dry_run"]
        digests = digests_due(date)
        verb = "would get" if dry_run else "gets"
        self.stdout.write(f"Review digests for {date.isoformat()}: {len(digests)} due.")
        counts: dict[str, int] = {}
        for digest in digests:
            line = (
                f"{digest.recipient_name} <{digest.recipient_email}> {verb} "
                f"{digest.release_label}: {digest.summary}"
            )
            if dry_run:
                self.stdout.write(line)
                continue
            try:
                outcome = digest_send(digest=digest).outcome
            except SEND_ERRORS as error:
                outcome = Outcome.FAILED
                line += f" — {error}"
            counts[outcome] = counts.get(outcome, 0) + 1
            self.stdout.write(f"[{outcome}] {line}")
        if dry_run:
            self.stdout.write("Dry run: nothing sent, nothing recorded.")
        else:
            done = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            self.stdout.write(f"Done: {done or 'nothing to send'}.")
