"""``handler500``: an outage raised outside any view still answers 503, not a 500.

``ZulipJsonErrorMiddleware.process_exception`` only sees exceptions from views.
A database that fails under a middleware (the session saved in
``SessionMiddleware``, the user loaded for a page) reaches Django's
``handler500`` instead, whose default is the HTML 500 page. Here an outage gets
the same answer a view's would: Zulip's 503 JSON under /api/ and /json/, the
"temporarily unavailable" page elsewhere, both with ``Retry-After``.
"""

from __future__ import annotations

import logging
import sys

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from keyhouse.api.errors import ServiceUnavailableError
from keyhouse.api.middleware import ZulipJsonErrorMiddleware, unavailable_page, wants_json_errors
from keyhouse.api.responses import json_error

logger = logging.getLogger("keyhouse.api")


def server_error(request: HttpRequest) -> HttpResponse:
    exc = sys.exc_info()[1]
    outage = ZulipJsonErrorMiddleware.outage(exc) if isinstance(exc, Exception) else None
    if outage is None:  # a bug: Django's page (made JSON under /api/ by the middleware)
        return defaults.server_error(request)
    if wants_json_errors(request):
        response = json_error(ServiceUnavailableError(outage.retry_after))
    else:
        response = unavailable_page(outage.retry_after)
    # Django logs every 5xx from here with a traceback; an outage is logged once,
    # by its breaker (keyhouse/outages.py), or by outage() in one line.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
