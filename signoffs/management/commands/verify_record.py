"""`manage.py verify_record FILE.pdf [--cert CERT.pem | --cert-sha256 HEX] [--release VERSION]`:
an auditor's check of a decision record.

Every check that needs only the file and a certificate is ``signoffs.verify`` (also runnable
without the portal: ``python -m signoffs.verify``): the seal against the expected certificate
(by default the configured one), the embedded snapshot against the fingerprint, and the printed
decision, release and signatures against the snapshot. With the portal's database this command
adds: that a stored record has exactly this file's SHA-256, that its stored snapshot still
hashes to its fingerprint and is the one embedded, and that the audit hash chain still holds
the head the record embeds (records written before heads were embedded, document format 1, say
so and are not failed for it). It prints the release, the decision, the signers, the sealing
certificate and OK — or one ``MISMATCH:`` line per problem and exits with status 1.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from checklist.chain import head_problem
from signoffs.cert_info import cert_info
from signoffs.models import DecisionRecord
from signoffs.pdf import chain_head_text
from signoffs.records import stored_fingerprint
from signoffs.verify import quiet_libraries, verify_record_pdf


class Command(BaseCommand):
    help = (
        "Verify a decision record PDF: seal, embedded snapshot, printed text, stored record, "
        "audit chain head."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the decision record PDF")
        parser.add_argument(
            "--cert", help="the expected signing certificate (default: the configured one)"
        )
        parser.add_argument("--cert-sha256", help="or only its SHA-256 fingerprint (hex)")
        parser.add_argument("--release", help="fail unless the file is this release's record")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path.name}: no such file")
        data = path.read_bytes()
        cert = self._certificate(options)
        quiet_libraries()
        problems: list[str] = []

        digest = hashlib.sha256(data).hexdigest()
        try:
            record = DecisionRecord.objects.filter(pdf_sha256=digest).first()
        except DatabaseError as exc:
            raise CommandError(
                f"the portal's database cannot be read ({exc}); without it, run "
                "`python -m signoffs.verify FILE --cert CERT.pem`"
            ) from exc
        report = verify_record_pdf(
            data,
            cert=cert,
            cert_sha256=options.get("cert_sha256"),
            release=options.get("release"),
            fallback_snapshot=record.snapshot_json.encode("utf-8") if record else None,
        )
        for line in report.lines:
            self.stdout.write(line)
        problems += report.problems

        if record is None:
            problems.append(f"no stored decision record has this file's SHA-256 ({digest})")
        else:
            if stored_fingerprint(record) != record.snapshot_sha256:
                problems.append(
                    "the stored snapshot does not hash to the record's fingerprint "
                    f"({record.snapshot_sha256})"
                )
            if report.fingerprint and report.fingerprint != record.snapshot_sha256:
                problems.append(
                    f"the embedded snapshot ({report.fingerprint}) is not the stored record's "
                    f"({record.snapshot_sha256})"
                )
            self.stdout.write(f"Stored record: #{record.pk}, the file handed out by the portal")
        if report.document is not None:
            problems += self._chain(report.document)

        if problems:
            for problem in problems:
                self.stderr.write(f"MISMATCH: {' '.join(problem.split())}")
            raise CommandError(f"{path.name}: NOT verified ({len(problems)} problem(s))")
        self.stdout.write(self.style.SUCCESS(f"{path.name}: OK"))

    def _certificate(self, options):
        """The certificate named on the command line, else the configured one (None when only
        its SHA-256 was given)."""
        if options.get("cert_sha256") and not options.get("cert"):
            return None
        cert_path = Path(options.get("cert") or settings.DECISION_SIGNING_CERT)
        try:
            return cert_info(cert_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the certificate {cert_path.name}: {exc}") from exc

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
        try:
            problem = head_problem(head)
        except DatabaseError as exc:
            return [f"audit chain head at decision ({text}): the chain cannot be read ({exc})"]
        if problem is not None:
            return [f"audit chain head at decision ({text}): {problem}"]
        self.stdout.write(f"Audit chain head at decision: {text}: held by the audit chain")
        return []
