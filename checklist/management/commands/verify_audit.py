"""Walk the audit hash chain; exit non-zero naming the first bad link.

python manage.py verify_audit [--anchor var/audit_anchor.json] [--sweep]
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from checklist.chain import chain_pending, verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain (and, with --anchor, that its tail is intact)."

    def add_arguments(self, parser):
        parser.add_argument("--anchor", type=Path, help="an anchor written by export_audit_anchor")
        parser.add_argument(
            "--sweep", action="store_true", help="first link rows not linked yet (writes)"
        )

    def handle(self, *args, anchor: Path | None, sweep: bool, **options):
        anchor_data = None
        if anchor is not None:
            try:
                anchor_data = json.loads(anchor.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the anchor {anchor}: {exc}") from exc
        if sweep:
            chain_pending()
        checked, problem = verify(anchor_data)
        if problem is not None:
            raise CommandError(f"Audit chain broken at {problem} ({checked} links verified).")
        self.stdout.write(f"Audit chain intact: {checked} links verified.")
