"""``manage.py import_checklist PATH [--replace] [--user USERNAME]``: one release from a Markdown
checklist, all or nothing (see ``signoffs.documents.release_import``)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from checklist.importers import ChecklistImportError
from signoffs.documents import release_import


class Command(BaseCommand):
    help = (
        "Import a release checklist written in the seed's Markdown grammar. Errors are printed "
        "as PATH:LINE: problem and nothing is written."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="the Markdown checklist (UTF-8)")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="replace the checklist of a release whose version already exists",
        )
        parser.add_argument("--user", help="username recorded as the author in the history")

    def handle(self, *args, path: str, replace: bool, user: str | None, **options) -> None:
        source = Path(path)
        try:
            size = source.stat().st_size
            if size > settings.CHECKLIST_IMPORT_MAX_BYTES:  # refuse before reading it
                raise ChecklistImportError(
                    f"the file is {size:,} bytes; the limit is "
                    f"{settings.CHECKLIST_IMPORT_MAX_BYTES:,} bytes (CHECKLIST_IMPORT_MAX_BYTES)",
                    source_name=path,
                )
            data = source.read_bytes()
        except OSError as error:
            raise CommandError(f"{path}: cannot read the file: {error.strerror}") from None
        except ChecklistImportError as error:
            raise CommandError(str(error)) from None
        history_user = None
        if user:
            history_user = (
                get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: user}).first()
            )
            if history_user is None:
                raise CommandError(f"no user named '{user}'")
        try:
            release = release_import(
                text=data, source_name=path, replace=replace, user=history_user
            )
        except (ChecklistImportError, PermissionDenied) as error:
            raise CommandError(str(error)) from None
        counts = {
            "sections": release.sections.count(),
            "items": release.items.count(),
            "risks": release.risks.count(),
            "action items": release.action_items.count(),
            "sign-off requirements": release.signoff_requirements.count(),
            "criteria": release.criteria.count(),
        }
        what = ", ".join(f"{n} {name}" for name, n in counts.items())
        verb = "Replaced" if replace else "Imported"
        self.stdout.write(self.style.SUCCESS(f"{verb} {release} from {path}: {what}"))
