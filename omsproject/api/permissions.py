"""Who may do what: a strategy everything on its own rows; staff read every strategy's rows."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from omsproject.api.authentication import StrategyPrincipal

MONITORING_PERMISSION = "orders.view_order"


def is_monitoring_staff(user) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and getattr(user, "is_staff", False)
        and user.has_perm(MONITORING_PERMISSION)
    )


class StrategyOrMonitoringStaff(BasePermission):
    """A strategy key may call everything (its queries are scoped to it).

    Staff with ``orders.view_order`` may read across strategies; they never write through the
    API (they act through the admin, where every action is logged with their name).
    """

    def has_permission(self, request, view) -> bool:
        if isinstance(request.user, StrategyPrincipal):
            return True
        if not is_monitoring_staff(request.user):
            return False
        if request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied(
                "staff: the API is read-only for staff; act on orders through the admin"
            )
        return True


class StrategyOnly(BasePermission):
    """Endpoints that act as the calling strategy and have no meaning for staff."""

    message = "this endpoint acts as a strategy: call it with the strategy's API key"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, StrategyPrincipal)
