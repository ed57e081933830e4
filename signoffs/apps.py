from django.apps import AppConfig


class SignoffsConfig(AppConfig):
    name = "signoffs"
    verbose_name = "Sign-offs and decision"

    def ready(self) -> None:
        from simple_history.signals import post_create_historical_record

        from .invalidation import on_history_record

        # The one place where a material change makes signatures stale (see invalidation.py).
        # Criterion links (m2m) are diffed there too: simple-history records each link change.
        post_create_historical_record.connect(on_history_record, dispatch_uid="signoffs-stale")
