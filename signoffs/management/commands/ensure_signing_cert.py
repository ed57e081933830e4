"""`manage.py ensure_signing_cert`: create the self-signed development key and certificate that
seal decision records, unless the configured files exist (``make run`` calls it)."""

from django.core.management.base import BaseCommand

from signoffs.signing_cert import ensure_signing_cert, signing_paths


class Command(BaseCommand):
    help = "Create a self-signed decision-record signing key and certificate when none exists."

    def handle(self, *args, **options):
        key, cert = signing_paths()
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
