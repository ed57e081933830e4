import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dcmms_release.settings")
application = get_wsgi_application()

from dcmms_release.keys import KeysRefused, keys_gate  # noqa: E402  (needs the apps loaded)

# No worker serves with keys that did not write the data: the import fails, gunicorn stops.
try:
    keys_gate("web")
except KeysRefused as exc:
    logging.getLogger("dcmms_release.keys").critical("%s", exc)
    raise
