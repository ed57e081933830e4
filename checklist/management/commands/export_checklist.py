"""``manage.py export_checklist VERSION --format json|md [--output FILE]``: a release as its JSON
snapshot (``signoffs.exports.release_snapshot``, pretty-printed with sorted keys) or as a
Markdown checklist in the seed's grammar (``signoffs.markdown_export``)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from checklist.models import Release


class Command(BaseCommand):
    help = "Export a release as JSON (its snapshot) or as a Markdown checklist."

    def add_arguments(self, parser) -> None:
        parser.add_argument("version", help="the release version, e.g. v0.3.0")
        parser.add_argument("--format", choices=["json", "md"], default="json")
        parser.add_argument("--output", help="write to this file instead of standard output")

    def handle(self, *args, version: str, format: str, output: str | None, **options) -> None:
        from signoffs.exports import release_snapshot
        from signoffs.markdown_export import release_export_markdown

        release = Release.objects.filter(version=version).first()
        if release is None:
            raise CommandError(f"no release with version '{version}'")
        if format == "json":
            text = (
                json.dumps(release_snapshot(release), indent=2, sort_keys=True, ensure_ascii=False)
                + "\n"
            )
        else:
            text = release_export_markdown(release)
        if output:
            try:
                Path(output).write_text(text, encoding="utf-8", newline="\n")
            except OSError as error:
                raise CommandError(f"{output}: cannot write the file: {error.strerror}") from None
            self.stderr.write(f"Wrote {release} as {format} to {output}")
        else:
            self.stdout.write(text, ending="")
