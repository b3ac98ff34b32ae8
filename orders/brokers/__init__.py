"""Broker adapters behind one small interface; nothing outside this package knows which is used."""

from orders.brokers.base import (
    Broker,
    BrokerError,
    BrokerFill,
    BrokerOrderUpdate,
    BrokerPosition,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerTimeout,
    BrokerUnavailable,
    PlaceAck,
)
from orders.brokers.kite import KiteBroker
from orders.brokers.paper import PaperBroker


def broker_for(strategy) -> Broker:
    """The paper simulator for PAPER strategies, Kite Connect for LIVE ones."""
    if strategy.is_live:
        return KiteBroker.from_settings()

    return PaperBroker(strategy)


__all__ = [
    "Broker",
    "BrokerError",
    "BrokerFill",
    "BrokerOrderUpdate",
    "BrokerPosition",
    "BrokerRateLimited",
    "BrokerRejected",
    "BrokerSessionExpired",
    "BrokerTimeout",
    "BrokerUnavailable",
    "PlaceAck",
    "broker_for",
]
