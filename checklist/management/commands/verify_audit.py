"""Verify the audit trail; exit non-zero naming the first problem of each kind.

python manage.py verify_audit [--anchor FILE] [--records]

- the chain: every link follows the previous one with a valid MAC and its row is unchanged (or
  accounted for by a genuine purge marker);
- the anchors: every chain head in ``--anchor FILE`` (one head, or a series of JSON lines) or, by
  default, in the anchor log ``AUDIT_ANCHOR_LOG`` (when it exists) is still in the chain, so a
  truncated or rewritten tail is detected;
- unlinked rows (not written by the portal), live rows that differ from their latest history
  entry, signatures whose state is not the replay of their events (``checklist.chain_checks``);
- with ``--records``, every decision record's embedded chain head is held by the chain.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from checklist.anchors import anchors_problem, anchors_read
from checklist.chain import head_problem, verify
from checklist.chain_checks import checks_run


class Command(BaseCommand):
    help = (
        "Verify the audit trail: the hash chain, the exported chain heads (anchor log or "
        "--anchor), rows not written by the portal, live rows against their history, signature "
        "states against their events; with --records, every decision record's chain head."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--anchor",
            type=Path,
            help="an anchor file or anchor log (default: AUDIT_ANCHOR_LOG, when it exists)",
        )
        parser.add_argument(
            "--records",
            action="store_true",
            help="also check every decision record's embedded chain head against the chain",
        )

    def handle(self, *args, anchor: Path | None, records: bool = False, **options):
        problems: list[tuple[str, str]] = []
        checked, problem = verify()
        if problem is None:
            self.stdout.write(f"Audit chain intact: {checked} links verified.")
        else:
            problems.append(("chain", f"broken at {problem} ({checked} links verified)"))
        problems += self._anchors(anchor)
        problems += checks_run()
        mismatches = self._records() if records else []
        for mismatch in mismatches:
            self.stderr.write(f"MISMATCH: {mismatch}")
        if mismatches:
            problems.append(
                (
                    "decision records",
                    f"the audit chain does not hold the head of {len(mismatches)} decision "
                    f"record(s): {mismatches[0]}",
                )
            )
        for kind, message in problems:
            self.stderr.write(f"PROBLEM ({kind}): {message}")
        if problems:
            named = "; ".join(f"{kind}: {message}" for kind, message in problems)
            raise CommandError(f"Audit trail not intact. {named}")
        self.stdout.write("Audit trail intact.")

    def _anchors(self, anchor: Path | None) -> list[tuple[str, str]]:
        path = anchor or settings.AUDIT_ANCHOR_LOG
        if anchor is None and not path.exists():
            if settings.DJANGO_SECURE:  # production: beat writes it; its absence is a finding
                return [("anchors", f"no anchor log at {path}: the tail cannot be checked")]
            self.stdout.write(
                f"Anchors: no anchor log at {path} yet (the worker's beat writes it)."
            )
            return []
        try:
            heads = anchors_read(path)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read the anchor {path}: {exc}") from exc
        problem = anchors_problem(heads)
        if problem is not None:
            return [("anchors", f"differs from the anchor {path}: {problem}")]
        self.stdout.write(f"Anchors: the chain holds all {len(heads)} head(s) in {path}.")
        return []

    def _records(self) -> list[str]:
        """Each decision record's head checked; returns what does not match."""
        from signoffs.models import DecisionRecord
        from signoffs.records import record_chain_head

        mismatches: list[str] = []
        held = heads = without = 0
        for record in (
            DecisionRecord.objects.select_related("release").defer("pdf").order_by("pk").iterator()
        ):
            label = f"decision record #{record.pk} of {record.release.version}"
            try:
                head = record_chain_head(record)
            except ValueError as exc:  # the stored document no longer hashes to its fingerprint
                mismatches.append(f"{label}: {exc}")
                continue
            if head is None:
                without += 1
                continue
            heads += 1
            problem = head_problem(head)
            if problem is None:
                held += 1
            else:
                mismatches.append(f"{label}: {problem}")
        note = f"; {without} older record(s) embed no head (document format 1)" if without else ""
        self.stdout.write(f"Decision records: {held} of {heads} chain head(s) held{note}.")
        return mismatches
