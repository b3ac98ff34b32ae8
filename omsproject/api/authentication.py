"""Who is calling: a strategy (by its API key) or a staff member (session or token).

A request with a strategy key acts as exactly that strategy: ``request.user`` is a
``StrategyPrincipal`` and ``request.auth`` the key row. Every queryset of the API is scoped with
``strategy_of(request)``; only staff monitoring (read-only, see permissions) sees ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from omsproject.api.throttling import StrategyKeyRateThrottle
from orders.api_keys import api_key_authenticate

if TYPE_CHECKING:
    from orders.models import Strategy, StrategyApiKey


class StrategyPrincipal:
    """The caller of a request made with a strategy's key: the strategy, never a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, key: StrategyApiKey):
        self.key = key
        self.strategy = key.strategy

    @property
    def pk(self) -> None:
        return None

    def get_username(self) -> str:
        return self.actor

    @property
    def actor(self) -> str:
        """How the strategy's actions are signed in order events."""
        return f"api-key:{self.key.prefix}"

    def has_perm(self, perm: str, obj=None) -> bool:
        return False

    def __str__(self) -> str:
        return f"strategy {self.strategy.name} (key {self.key.prefix})"


class StrategyKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer oms_<prefix>_<secret>``."""

    keyword = "Bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header: must be 'Bearer <key>', with the key and nothing else"
            )
        try:
            plaintext = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("API key: unknown or revoked") from None
        key = api_key_authenticate(plaintext, count_in=StrategyKeyRateThrottle.window())
        if key is None:
            raise exceptions.AuthenticationFailed("API key: unknown or revoked")
        return StrategyPrincipal(key), key

    def authenticate_header(self, request) -> str:
        # Makes an unauthenticated request a 401 (with this challenge), not a 403.
        return f'{self.keyword} realm="oms"'


def strategy_of(request) -> Strategy | None:
    """The strategy a request acts as, or None for staff (read-only monitoring)."""
    user = getattr(request, "user", None)
    return user.strategy if isinstance(user, StrategyPrincipal) else None


def actor_of(request) -> str:
    user = request.user
    return user.actor if isinstance(user, StrategyPrincipal) else f"staff:{user.get_username()}"
