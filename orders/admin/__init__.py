"""The orders back office: orders with their history and fills, trades, strategies, API keys,
webhooks, and the audit lists of order events and strategy events.

Nothing here writes an order, a strategy's status or mode, or a key itself: cancels go
through ``order_cancel``, status and mode through ``strategy_status_set`` and
``strategy_mode_set``, keys through ``orders.api_keys``; each leaves an admin log entry beside
the service's own record (order events, logs). The order and trade lists are built for
millions of rows (omsproject.admin_tools.LargeTableAdmin). Nobody deletes an order, an event
or a trade here, and every amount the broker or the fills decided is read-only.
"""

from orders.admin.api_keys import StrategyApiKeyAdmin
from orders.admin.baskets import BasketAdmin, OrderParentAdmin
from orders.admin.broker_accounts import BrokerAccountAdmin
from orders.admin.events import OrderEventAdmin, StrategyEventAdmin
from orders.admin.orders import OrderAdmin
from orders.admin.strategies import StrategyAdmin
from orders.admin.trades import TradeAdmin
from orders.admin.webhooks import WebhookDeliveryAdmin, WebhookEndpointAdmin

__all__ = [
    "BasketAdmin",
    "BrokerAccountAdmin",
    "OrderAdmin",
    "OrderEventAdmin",
    "OrderParentAdmin",
    "StrategyAdmin",
    "StrategyApiKeyAdmin",
    "StrategyEventAdmin",
    "TradeAdmin",
    "WebhookDeliveryAdmin",
    "WebhookEndpointAdmin",
]
