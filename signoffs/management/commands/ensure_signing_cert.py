"""`manage.py ensure_signing_cert`: create the self-signed development key and certificate that
seal decision records, unless the configured files exist (``make run`` calls it). Never while
the database holds sealed records: a lost key is restored from the backup, not replaced."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from signoffs.seal_keys import signing_key_problem
from signoffs.signing_cert import ensure_signing_cert, signing_paths


class Command(BaseCommand):
    help = "Create a self-signed decision-record signing key and certificate when none exists."

    def handle(self, *args, **options):
        key, cert = signing_paths()
        if not (key.exists() and cert.exists()):
            try:
                problem = signing_key_problem()
            except DatabaseError:  # not migrated yet: no sealed records
                problem = None
            if problem:
                raise CommandError(f"No signing certificate created. {problem}")
        if ensure_signing_cert():
            self.stdout.write(
                self.style.WARNING(
                    f"Created a self-signed development signing certificate ({cert.name}) and "
                    f"key ({key.name}) under {cert.parent.name}/ — for development only: "
                    "configure DECISION_SIGNING_KEY / DECISION_SIGNING_CERT in production."
                )
            )
        else:
            self.stdout.write(f"Signing certificate present ({cert.name}); nothing to do.")
