"""The Celery application: configured from Django settings (``CELERY_*``), tasks autodiscovered."""

import logging
import os
import sys

from celery import Celery
from celery.signals import beat_init, celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dcmms_release.settings")

app = Celery("dcmms_release")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _keys_gate(process: str) -> None:
    """The worker and beat do not start with keys that did not write the data
    (dcmms_release/keys.py). Celery logs and swallows exceptions raised by signal handlers, so
    the process is ended with SystemExit; the message goes to the real stderr (beat has already
    redirected sys.stderr to its log by then) and, when redirected, to the log too."""
    import django

    django.setup()
    from .keys import KeysRefused, keys_gate

    try:
        keys_gate(process)
    except KeysRefused as exc:
        sys.__stderr__.write(f"{exc}\n")
        if sys.stderr is not sys.__stderr__:
            logging.getLogger("dcmms_release.keys").critical("%s", exc)
        raise SystemExit(1) from None


celeryd_init.connect(lambda **kwargs: _keys_gate("worker"), weak=False, dispatch_uid="dcmms_keys")
beat_init.connect(lambda **kwargs: _keys_gate("beat"), weak=False, dispatch_uid="dcmms_keys_b")
