"""A lost database is a 503 everywhere, never a 500.

The API answers it in its own error shape (omsproject.api.exceptions) and the Kite postback in
its own; this covers the rest (the admin back office): a short page saying what happened, with
Retry-After, so a risk officer knows to reload rather than report a bug, and a load balancer
sees the service as unavailable.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger("oms.web")

RETRY_AFTER_SECONDS = 2

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OMS: database unavailable</title></head>
<body style="font-family: sans-serif; margin: 3em">
<h1>The database is not answering</h1>
<p>Nothing was changed by this request. Reload the page in a few seconds; if this stays,
check the PostgreSQL server (<code>/api/v1/health/</code> says when it is back).</p>
</body></html>
"""


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning(
            "database unavailable on %s: %s",
            request.path,
            (str(exception).strip().splitlines() or [""])[0],
        )
        response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
