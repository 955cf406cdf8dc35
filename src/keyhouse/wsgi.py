"""WSGI entry point for gunicorn.

Django's own ``get_wsgi_application()`` with one change: the request class is
``KeyhouseWSGIRequest``, whose construction no Content-Type header can make fail
(see keyhouse/api/input_validation.py). A bad config file stops the process with
its one line, no traceback (config_keys.py).
"""

import os
import sys

import django

from keyhouse.config_keys import ConfigError
from keyhouse.data_dir import private_umask

# Under any WSGI server, not only `keyhouse serve`: what the app writes is private.
private_umask()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyhouse.settings")
try:
    django.setup(set_prefix=False)
except ConfigError as exc:
    if "gunicorn" in sys.modules:
        # In a gunicorn worker a plain exit would only be respawned, forever;
        # AppImportError is gunicorn's way to print one line and stop the master.
        from gunicorn.errors import AppImportError

        raise AppImportError(str(exc)) from None
    print(f"keyhouse: error: {exc}", file=sys.stderr)
    raise SystemExit(1) from None

# Imported once the apps are loaded: the API modules import models.
from keyhouse.api.input_validation import KeyhouseWSGIHandler  # noqa: E402

application = KeyhouseWSGIHandler()
