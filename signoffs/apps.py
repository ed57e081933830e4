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

        from . import freeze

        # A decided release is frozen: every write to a row of it refuses (see freeze.py).
        freeze.connect()

        from checklist.chain_checks import check_register

        from .signature_replay import signature_states_problem

        # verify_audit: a signature's state is the replay of its chained events.
        check_register("signature states", signature_states_problem)

        from django.contrib.auth.signals import user_logged_in

        from .signing_session import on_logged_in

        # §11.200(a)(1): after a sign-in, the first signing asks for the user ID again.
        user_logged_in.connect(on_logged_in, dispatch_uid="signoffs-signing-session")
