"""`manage.py verify_record FILE.pdf`: an auditor's offline check of a decision record.

It checks, in order: the PDF's seal (PAdES) against the configured signing certificate as the
only trust root; that a stored record has exactly this file's SHA-256; that the record's stored
snapshot still hashes to its fingerprint; that the fingerprint inside the PDF is that one; and
that the audit hash chain still holds the head the record embeds (the link with that sequence
number and that MAC: a chain rewritten or truncated before the decision fails here; records
written before heads were embedded, document format 1, say so and are not failed for it).
It prints the release, the decision and the signers and OK — or names each mismatch and exits
with status 1.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from checklist.chain import head_problem
from signoffs.models import DecisionRecord
from signoffs.pdf import chain_head_text
from signoffs.records import stored_fingerprint
from signoffs.signing_cert import SealError, seal_check


def _pdf_fingerprint(data: bytes) -> str | None:
    """The fingerprint the PDF carries in its metadata (keywords)."""
    try:
        metadata = PdfReader(io.BytesIO(data)).metadata or {}
        keywords = metadata.get("/Keywords") or ""
    except (PdfReadError, ValueError, KeyError):  # reported by the seal check too
        return None
    return str(keywords).strip() or None


class Command(BaseCommand):
    help = "Verify a decision record PDF: seal, stored record, fingerprint, audit chain head."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the decision record PDF")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path.name}: no such file")
        data = path.read_bytes()
        problems: list[str] = []

        try:
            seal = seal_check(data)
        except SealError as exc:
            raise CommandError(f"cannot check the seal: {exc}") from exc
        if seal.ok:
            self.stdout.write(
                f"Seal: valid, by {seal.signer}, at {seal.signed_at:%Y-%m-%d %H:%M:%S %Z}"
            )
        else:
            problems += [f"seal: {problem}" for problem in seal.problems]

        digest = hashlib.sha256(data).hexdigest()
        record = (
            DecisionRecord.objects.filter(pdf_sha256=digest)
            .select_related("release", "signature")
            .first()
        )
        if record is None:
            problems.append(f"no stored decision record has this file's SHA-256 ({digest})")
        else:
            document = json.loads(record.snapshot_json)
            if stored_fingerprint(record) != record.snapshot_sha256:
                problems.append(
                    "the stored snapshot does not hash to the record's fingerprint "
                    f"({record.snapshot_sha256})"
                )
            inside = _pdf_fingerprint(data)
            if inside != record.snapshot_sha256:
                problems.append(
                    f"the fingerprint in the PDF ({inside}) is not the record's "
                    f"({record.snapshot_sha256})"
                )
            self._describe(record, document)
            problems += self._chain(document)

        if problems:
            for problem in problems:
                self.stderr.write(f"MISMATCH: {problem}")
            raise CommandError(f"{path.name}: NOT verified ({len(problems)} problem(s))")
        self.stdout.write(self.style.SUCCESS(f"{path.name}: OK"))

    def _chain(self, document: dict) -> list[str]:
        """The audit chain head embedded at the decision, checked against the chain."""
        head = document.get("audit_chain_head")
        if not head:
            self.stdout.write(
                f"Audit chain head: not recorded (document format {document.get('format', 1)}, "
                "written before records embedded it); not checked"
            )
            return []
        text = chain_head_text(head)
        problem = head_problem(head)
        if problem is not None:
            return [f"audit chain head at decision ({text}): {problem}"]
        self.stdout.write(f"Audit chain head at decision: {text}: held by the audit chain")
        return []

    def _describe(self, record: DecisionRecord, document: dict) -> None:
        release = document["snapshot"]["release"]
        decision = document.get("decision") or {}
        self.stdout.write(
            f"Release: {release.get('project')} {release.get('name')} ({release.get('version')})"
        )
        self.stdout.write(
            f"Decision: {decision.get('meaning_label', '—')} by {decision.get('name', '—')} "
            f"({decision.get('role', '—')}) at {decision.get('at_display', '—')}"
        )
        if decision.get("comment"):
            self.stdout.write(f"Reason: {decision['comment']}")
        self.stdout.write(f"Fingerprint: {record.snapshot_sha256}")
        self.stdout.write("Signers:")
        for requirement in document.get("signoffs", []):
            for signature in requirement.get("signatures", []):
                self.stdout.write(
                    f"  {requirement['role']}: {signature['name']} — {signature['meaning_label']}"
                    f" at {signature['at_display']} ({signature['state']})"
                )
