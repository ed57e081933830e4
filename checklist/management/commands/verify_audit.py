"""Walk the audit hash chain; exit non-zero naming the first bad link.

python manage.py verify_audit [--anchor var/audit_anchor.json] [--sweep] [--records]

With ``--records`` every decision record's embedded chain head (document format 2 on) is an
anchor too: the chain must still hold the link with that sequence number and MAC, so a chain
rewritten or truncated before a decision is detected without an anchor file.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from checklist.chain import chain_pending, head_problem, verify


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chain (with --anchor, that its tail is intact; with "
        "--records, that it holds every decision record's embedded chain head)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--anchor", type=Path, help="an anchor written by export_audit_anchor")
        parser.add_argument(
            "--sweep", action="store_true", help="first link rows not linked yet (writes)"
        )
        parser.add_argument(
            "--records",
            action="store_true",
            help="also check every decision record's embedded chain head against the chain",
        )

    def handle(self, *args, anchor: Path | None, sweep: bool, records: bool = False, **options):
        anchor_data = None
        if anchor is not None:
            try:
                anchor_data = json.loads(anchor.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the anchor {anchor}: {exc}") from exc
        if sweep:
            chain_pending()
        checked, problem = verify(anchor_data)
        if problem is None:
            self.stdout.write(f"Audit chain intact: {checked} links verified.")
        mismatches = self._records() if records else []
        for mismatch in mismatches:
            self.stderr.write(f"MISMATCH: {mismatch}")
        if problem is not None:
            raise CommandError(f"Audit chain broken at {problem} ({checked} links verified).")
        if mismatches:
            raise CommandError(
                f"The audit chain does not hold the head of {len(mismatches)} decision "
                f"record(s): {mismatches[0]}"
            )

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
