"""Placing a basket: several orders asked for in one request (``basket_place``).

1. Margin (LIVE strategies, no lock held): Kite's basket margin of all the legs together (hedges
   offset) against the account's available funds; short, and nothing is written.
2. Under the placement locks (risk.validator.checks_lock: the kill switch's shared lock, then
   the strategy's row), in one transaction: a basket this client_basket_id wrote already is a
   replay (answered with it); otherwise the basket row, then each leg in turn, checked by the
   same pre-trade checks as a single order (each leg sees the legs before it as working
   orders) and written with its rate token and its submission job. The first leg refused
   rolls the whole transaction back: nothing is written, and BasketRefused names the leg, the
   field and the rule. Over the order rate, likewise (OrderThrottled).
3. After the commit each leg lives its own life (its own job, broker order, fills, cancel);
   ``Order.basket`` links it to the basket.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from orders.brokers import broker_for
from orders.domain import OrderRequest, Violation
from orders.enums import EventSource
from orders.models import Basket, Order, Strategy
from orders.services.errors import IdempotencyConflict, OrderError, StrategyNotFound
from orders.services.margins import (
    BASKET_CHECKED,
    basket_margin_reserve,
    basket_margin_verdict,
)
from orders.services.placement import _new_order, _write_accepted
from risk.validator import checks_lock, order_verdict

BASKET_CONSTRAINT = "basket_client_id_unique"
MAX_LEGS = 20  # legs in one basket: one request, one transaction (ours; Kite allows more)


class BasketRefused(OrderError):
    """A basket refused before anything was written: ``leg`` is the index of the leg at fault
    (None for the basket as a whole, e.g. its margin) and ``violations`` its reasons."""

    code = "basket_refused"

    def __init__(self, leg: int | None, violations: list[Violation]):
        self.leg = leg
        self.violations = tuple(violations)
        where = "basket" if leg is None else f"legs.{leg}"
        super().__init__(
            f"{where}: " + "; ".join(v.message for v in self.violations),
            fields={f"{where}.{v.field}": v.message for v in self.violations},
        )


@dataclass(frozen=True)
class BasketResult:
    basket: Basket
    orders: list[Order]
    replayed: bool = False


def basket_fingerprint(legs: list[OrderRequest]) -> str:
    """The basket's content: its legs in order, each with its client_order_id."""
    content = [[leg.client_order_id, leg.fingerprint()] for leg in legs]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def basket_place(
    *,
    strategy_id: int,
    client_basket_id: str,
    legs: list[OrderRequest],
    actor: str,
    source: EventSource = EventSource.API,
) -> BasketResult:
    """Write every leg of a basket with its submission job, or nothing.

    Guarantees: all legs pass the pre-trade checks (and, for a LIVE strategy, the basket's
    margin) or none is written (BasketRefused names the first leg refused); the same
    (strategy, client_basket_id) never writes a second basket, even sent twice at once (a
    replay answers with the first, ``replayed=True``; other content: IdempotencyConflict).
    """
    fingerprint = basket_fingerprint(legs)
    strategy = Strategy.objects.select_related("broker_account").filter(pk=strategy_id).first()
    if strategy is None:
        raise StrategyNotFound(f"strategy {strategy_id}: not found")
    existing = _existing(strategy_id, client_basket_id)
    if existing is not None:
        return _replay(existing, fingerprint)
    margin = _margin(strategy, legs)
    try:
        with transaction.atomic():
            result = _write(strategy_id, client_basket_id, legs, fingerprint, actor, source, margin)
    except IntegrityError as error:
        diag = getattr(error.__cause__, "diag", None)
        if getattr(diag, "constraint_name", None) != BASKET_CONSTRAINT:
            raise
        return _replay(_existing(strategy_id, client_basket_id), fingerprint)
    if margin is not None and not result.replayed:
        basket_margin_reserve(margin)
    return result


def _write(strategy_id, client_basket_id, legs, fingerprint, actor, source, margin):
    strategy = checks_lock(strategy_id)
    # Under the strategy's lock: a basket sent twice at once waits here for the first.
    existing = _existing(strategy_id, client_basket_id)
    if existing is not None:
        return _replay(existing, fingerprint)
    basket = Basket.objects.create(
        strategy=strategy,
        client_basket_id=client_basket_id,
        request_fingerprint=fingerprint,
        actor=actor,
        margin_required=margin.details.get("required") if margin else None,
    )
    metadata = {BASKET_CHECKED: True} if margin else None
    orders = legs_write(
        legs, strategy=strategy, actor=actor, source=source, metadata=metadata, basket=basket
    )
    return BasketResult(basket, orders)


def legs_write(legs, *, strategy, actor, source, metadata=None, basket=None, parent=None):
    """Check and write each of ``legs`` in turn, under the caller's checks_lock and inside its
    transaction; the first refused raises BasketRefused (the caller's transaction then rolls
    every leg back). Each leg sees those before it as working orders."""
    orders = []
    for index, leg in enumerate(legs):
        verdict = order_verdict(leg, strategy=strategy)
        if verdict.placed_order_id is not None:
            raise BasketRefused(
                index,
                [
                    Violation(
                        "client_order_id_used",
                        "client_order_id",
                        f"client_order_id {leg.client_order_id!r}: already used by order "
                        f"{verdict.placed_order_id}",
                    )
                ],
            )
        if verdict.violations:
            raise BasketRefused(index, verdict.violations)
        order, received = _new_order(
            leg,
            strategy=strategy,
            fingerprint=leg.fingerprint(),
            actor=actor,
            source=source,
            metadata=metadata,
            basket=basket,
            parent=parent,
        )
        _write_accepted(order, received, strategy=strategy, limits=verdict.limits)
        orders.append(order)
    return orders


def _margin(strategy: Strategy, legs: list[OrderRequest]):
    """The basket's margin verdict for a LIVE strategy (None when not checked)."""
    if not strategy.is_live or strategy.broker_account is None:
        return None
    unsaved = [
        Order(
            strategy=strategy,
            symbol=leg.symbol,
            exchange=leg.exchange,
            side=leg.side,
            quantity=leg.quantity,
            order_type=leg.order_type,
            price=leg.price,
            trigger_price=leg.trigger_price,
            product=leg.product,
            variety=leg.variety,
        )
        for leg in legs
    ]
    verdict = basket_margin_verdict(broker_for(strategy), unsaved)
    if not verdict.send:
        code = verdict.details.get("code", "margin_insufficient")
        raise BasketRefused(None, [Violation(code, "margin", verdict.reason)])
    return verdict if "account" in verdict.details else None


def _existing(strategy_id: int, client_basket_id: str) -> Basket | None:
    return Basket.objects.filter(strategy_id=strategy_id, client_basket_id=client_basket_id).first()


def _replay(basket: Basket, fingerprint: str) -> BasketResult:
    if basket.request_fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"client_basket_id {basket.client_basket_id!r}: already used for basket {basket.pk} "
            "with different content; use a new client_basket_id",
            fields={"client_basket_id": "already used with different content"},
        )
    return BasketResult(basket, list(basket.orders.order_by("id")), replayed=True)
