"""Per-key request limits, counted in PostgreSQL so every web process shares them.

A fixed window per key (e.g. 6000 requests a minute, ``OMS_API_THROTTLE_RATE``), counted by
``oms_count_request`` (risk.ratelimit): one INSERT ... ON CONFLICT DO UPDATE on an UNLOGGED
table, atomic (two processes cannot both take the last request of a window), one statement per
request, and timed by the database's clock so web machines need not agree on the time. Over
the limit: 429 with Retry-After, the seconds left in the window.
"""

from __future__ import annotations

from django.db import connection
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from orders.models import StrategyApiKey


class StrategyKeyRateThrottle(SimpleRateThrottle):
    """Limits each API key (and each staff user) to the ``strategy_key`` rate."""

    scope = "strategy_key"

    def get_rate(self) -> str | None:
        # Read at request time (not import time), so a settings change takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    @classmethod
    def window(cls) -> tuple[str, int] | None:
        """(bucket name prefix of a key, window seconds) for a key's requests; None when the
        API is not throttled. Authentication counts a key's request with them."""
        throttle = cls()
        return None if throttle.rate is None else (f"{cls.scope}:key:", throttle.duration)

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, StrategyApiKey):  # a strategy key authenticated it
            return f"{self.scope}:key:{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"{self.scope}:user:{request.user.pk}"
        return None  # unauthenticated requests are refused before they cost anything

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        bucket = self.get_cache_key(request, view)
        if bucket is None:
            return True
        # A key's request was counted by the statement that authenticated it.
        counted = getattr(request.auth, "window_count", None)
        if counted is None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT * FROM oms_count_request(%s::varchar, %s::integer)",
                    [bucket, self.duration],
                )
                counted = cursor.fetchone()
        hits, seconds_left = counted
        self.seconds_left = max(float(seconds_left), 0.0)
        return hits <= self.num_requests

    def wait(self) -> float:
        return self.seconds_left
