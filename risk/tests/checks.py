"""The pre-trade checks as order_place runs them, for tests that look at the violations alone."""

from django.db import transaction

from risk.validator import checks_lock, order_verdict


def validate_order(request, *, strategy, order=None) -> list:
    """Every violation of ``request``, checked under the placement's locks (nothing written)."""
    with transaction.atomic():
        locked = checks_lock(strategy.pk)
        return order_verdict(request, strategy=locked, order=order).violations
