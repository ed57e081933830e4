"""`manage.py export_record VERSION [-o FILE]`: write a release's sealed decision record (the
newest, exactly as stored) for operators; refuses clearly when none is sealed. The export is
an audit event like a download."""

from __future__ import annotations

import getpass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from checklist.downloads import download_filename
from signoffs.record_export import record_export_audit, record_for_export


def _operator() -> str:
    """Who ran the command, as the operating system knows them."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown operator"


class Command(BaseCommand):
    help = "Write the release's sealed decision record (PDF) to a file."

    def add_arguments(self, parser):
        parser.add_argument("version", help="the release's version, e.g. v1.2.0")
        parser.add_argument(
            "-o", "--output", help="the file to write (default: decision-record-VERSION-ID.pdf)"
        )

    def handle(self, *args, **options):
        try:
            record = record_for_export(version=options["version"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        data = bytes(record.pdf)
        default = download_filename(
            "decision-record", record.release.version, record.pk, extension="pdf"
        )
        path = Path(options.get("output") or default)
        if path.is_dir():
            path = path / default
        try:
            path.write_bytes(data)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from exc
        record_export_audit(record=record, data=data, by=f"{_operator()} (export_record)")
        self.stdout.write(
            f"Wrote {path} ({len(data)} bytes): the sealed decision record of "
            f"{record.release} ({record.signature.get_meaning_display()}), "
            f"fingerprint {record.snapshot_sha256}. Verify it with "
            f"`manage.py verify_record {path.name}`."
        )
