"""Stop-loss and take-profit set by a person: positions.services.position_protection_set."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from positions.services import PositionError, position_protection_errors, position_protection_set
from positions.tests.factories import PositionFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.mark.parametrize(
    ("quantity", "stop_loss", "take_profit"),
    [(10, "95.00", "120.00"), (-10, "120.00", "95.00"), (10, None, None), (10, "99.95", None)],
)
def test_levels_on_the_right_side_are_set(quantity, stop_loss, take_profit):
    position = PositionFactory(quantity=quantity, average_price=D("100"), last_price=D("100.00"))

    position_protection_set(
        position,
        stop_loss=stop_loss and D(stop_loss),
        take_profit=take_profit and D(take_profit),
        actor="rita",
    )

    position.refresh_from_db()
    assert position.stop_loss == (stop_loss and D(stop_loss))
    assert position.take_profit == (take_profit and D(take_profit))


@pytest.mark.parametrize(
    ("quantity", "levels", "field", "message"),
    [
        (10, {"stop_loss": D("105.00")}, "stop_loss", "a long's stop-loss must be below 102.00"),
        (10, {"take_profit": D("101.00")}, "take_profit", "a long's take-profit must be above"),
        (-10, {"stop_loss": D("101.00")}, "stop_loss", "a short's stop-loss must be above"),
        (-10, {"take_profit": D("103.00")}, "take_profit", "a short's take-profit must be below"),
        (10, {"stop_loss": D("95.005")}, "stop_loss", "whole paise"),
        (10, {"stop_loss": D("-1")}, "stop_loss", "positive"),
    ],
)
def test_levels_already_crossed_are_refused(quantity, levels, field, message):
    position = PositionFactory(quantity=quantity, average_price=D("100"), last_price=D("102.00"))
    levels = {"stop_loss": None, "take_profit": None, **levels}

    assert message in position_protection_errors(position, **levels)[field]
    with pytest.raises(PositionError, match=message):
        position_protection_set(position, actor="rita", **levels)
    position.refresh_from_db()
    assert position.stop_loss is None and position.take_profit is None


def test_the_average_price_is_the_reference_before_any_last_price():
    position = PositionFactory(quantity=10, average_price=D("100"), last_price=None)

    errors = position_protection_errors(position, stop_loss=D("100.50"), take_profit=None)

    assert "below 100.00" in errors["stop_loss"]


def test_a_closed_position_has_nothing_to_protect():
    now = timezone.now()
    position = PositionFactory(quantity=0, opened_at=now, closed_at=now)

    with pytest.raises(PositionError, match="closed"):
        position_protection_set(position, stop_loss=D("90.00"), take_profit=None, actor="rita")
