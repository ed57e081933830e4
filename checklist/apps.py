from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ChecklistConfig(AppConfig):
    name = "checklist"
    verbose_name = "Checklist"

    def ready(self) -> None:
        from . import audit, chain, triggers

        audit.connect()
        chain.connect()
        post_migrate.connect(triggers.install_on_migrate, sender=self, dispatch_uid="dcmms_ao")
