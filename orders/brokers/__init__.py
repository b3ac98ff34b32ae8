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
    """The paper simulator for PAPER strategies; for LIVE ones, Kite Connect through the
    strategy's account. BrokerUnavailable (nothing sent) when that account cannot trade."""
    if strategy.is_live:
        account = strategy.broker_account
        if account is None:
            raise BrokerUnavailable(
                f"strategy {strategy.name} is LIVE without a broker account: choose one in the "
                "admin (Strategies)",
                retry_in=60.0,
            )
        return KiteBroker.for_account(account)
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
