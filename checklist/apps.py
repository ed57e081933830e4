from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ChecklistConfig(AppConfig):
    name = "checklist"
    verbose_name = "Checklist"

    def ready(self) -> None:
        from . import audit, audit_access, chain, change_reasons, triggers

        audit.connect()
        from dcmms_release import account_throttle

        account_throttle.connect()  # failed sign-ins per account (issue #14, point 14)
        audit_access.connect()  # changes of accounts and access as audit events
        chain.connect()
        change_reasons.connect()  # the backstop: no history record without a reason
        post_migrate.connect(triggers.install_on_migrate, sender=self, dispatch_uid="dcmms_ao")
