"""Export the audit chain head (last link's sequence number and MAC) outside the database.

Without ``--output`` it is appended to the anchor log (``AUDIT_ANCHOR_LOG``), as the worker's beat
does every ``AUDIT_ANCHOR_MINUTES``; with ``--output FILE`` it is written to that file alone.
``verify_audit --anchor FILE`` then detects a truncated or rewritten tail."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from checklist.anchors import anchor_append
from checklist.chain import chain_head


class Command(BaseCommand):
    help = "Export the audit chain head to the anchor log, or to an anchor file (--output)."

    def add_arguments(self, parser):
        parser.add_argument("--output", type=Path, default=None)

    def handle(self, *args, output: Path | None, **options):
        if output is None:
            head = anchor_append(settings.AUDIT_ANCHOR_LOG)
            if head is None:
                self.stdout.write(
                    f"Anchor log {settings.AUDIT_ANCHOR_LOG} already holds link "
                    f"{chain_head()['seq']}: nothing appended"
                )
            else:
                self.stdout.write(
                    f"Anchor appended: link {head['seq']} to {settings.AUDIT_ANCHOR_LOG}"
                )
            return
        head = {**chain_head(), "exported_at": timezone.now().isoformat()}
        output.write_text(json.dumps(head, indent=2) + "\n", encoding="utf-8")
        self.stdout.write(f"Anchor written: link {head['seq']} to {output}")
