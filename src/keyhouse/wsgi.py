"""WSGI entry point for gunicorn.

Django's own ``get_wsgi_application()`` with one change: the request class is
``KeyhouseWSGIRequest``, whose construction no Content-Type header can make fail
(see keyhouse/api/input_validation.py).
"""

import os

import django

from keyhouse.data_dir import private_umask

# Under any WSGI server, not only `keyhouse serve`: what the app writes is private.
private_umask()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyhouse.settings")
django.setup(set_prefix=False)

# Imported once the apps are loaded: the API modules import models.
from keyhouse.api.input_validation import KeyhouseWSGIHandler  # noqa: E402

application = KeyhouseWSGIHandler()
