"""Write the chain head (last link's sequence number and MAC) to a file kept outside the
database, after linking any pending rows. Run periodically (and keep the files elsewhere):
``verify_audit --anchor FILE`` then detects a truncated or rewritten tail."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from checklist.chain import chain_head, chain_pending


class Command(BaseCommand):
    help = "Export the audit chain head to an anchor file."

    def add_arguments(self, parser):
        parser.add_argument("--output", type=Path, default=None)

    def handle(self, *args, output: Path | None, **options):
        chain_pending()
        head = {**chain_head(), "exported_at": timezone.now().isoformat()}
        path = output or settings.AUDIT_ANCHOR_PATH
        path.write_text(json.dumps(head, indent=2) + "\n", encoding="utf-8")
        self.stdout.write(f"Anchor written: link {head['seq']} to {path}")
