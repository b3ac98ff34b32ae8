"""Demo data: paper strategies, prices and a trading session's orders, placed through the services.

Idempotent: strategies and prices are upserted, and every demo order has a fixed
client_order_id, so a second run replays instead of placing again.

``--orders N`` loads instead a bulk history of N finished orders (about three fills each, their
events and the round trips they closed) over the last ``--days`` weekdays, with PostgreSQL COPY
(omsproject.demo_history).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from procrastinate.contrib.django import app

from omsproject.demo_history import BULK_CHUNK, bulk_history_load
from orders.domain import OrderRequest
from orders.enums import EventSource, StrategyMode, StrategyStatus
from orders.models import BrokerAccount, Strategy
from orders.services import order_place
from positions.services import market_prices_update
from risk.instruments import instruments_load

SAMPLE_INSTRUMENTS = (
    Path(__file__).resolve().parents[3] / "risk" / "fixtures" / "instruments_sample.csv"
)

STRATEGIES = [
    ("Momentum NIFTY50", "Buys strength in large caps, intraday.", StrategyMode.PAPER, {}),
    (
        "Mean Reversion Banks",
        "Fades moves in bank stocks; fills in parts.",
        StrategyMode.PAPER,
        {"paper": {"fill_parts": 3}},
    ),
    ("Kite Live (disabled)", "A live strategy, switched off.", StrategyMode.LIVE, {}),
    (
        "Live Sandbox Desk",
        "LIVE through the demo Kite account (the Kite sandbox, not Zerodha): log in first.",
        StrategyMode.LIVE,
        {},
    ),
]
ACTIVE_LIVE = {"Live Sandbox Desk"}

# The demo's Kite account: the Kite sandbox's default user (manage.py kite_sandbox), which
# `make run` serves on :8001. Its session comes from the admin's "Connect Kite".
DEMO_ACCOUNT = {
    "user_id": "DEMO01",
    "name": "Demo desk (Kite sandbox)",
    "api_key": "sandbox_key",
    "api_secret": "sandbox_secret",
}

PRICES = [
    ("RELIANCE", "NSE", "2450.00"),
    ("TCS", "NSE", "3890.50"),
    ("INFY", "NSE", "1512.30"),
    ("HDFCBANK", "NSE", "1725.40"),
    ("ICICIBANK", "NSE", "1248.90"),
    ("SBIN", "NSE", "812.35"),
]

# (strategy, client_order_id, symbol, side, quantity, order_type, product, price, sl, tp)
FIRST_SESSION = [
    (
        "Momentum NIFTY50",
        "demo-001",
        "RELIANCE",
        "BUY",
        10,
        "MARKET",
        "MIS",
        None,
        "2430.00",
        "2490.00",
    ),
    ("Momentum NIFTY50", "demo-002", "TCS", "BUY", 5, "MARKET", "CNC", None, None, None),
    ("Momentum NIFTY50", "demo-003", "INFY", "BUY", 20, "LIMIT", "MIS", "1500.00", None, None),
    ("Mean Reversion Banks", "demo-101", "HDFCBANK", "SELL", 30, "MARKET", "MIS", None, None, None),
    ("Mean Reversion Banks", "demo-102", "ICICIBANK", "BUY", 40, "MARKET", "MIS", None, None, None),
    ("Mean Reversion Banks", "demo-103", "SBIN", "BUY", 100, "LIMIT", "MIS", "800.00", None, None),
]
LATER_PRICES = [("RELIANCE", "NSE", "2468.00"), ("HDFCBANK", "NSE", "1711.20")]
SECOND_SESSION = [
    ("Momentum NIFTY50", "demo-004", "RELIANCE", "SELL", 10, "MARKET", "MIS", None, None, None),
    ("Mean Reversion Banks", "demo-104", "HDFCBANK", "BUY", 30, "MARKET", "MIS", None, None, None),
]


class Command(BaseCommand):
    help = (
        "Load demo strategies, prices and orders (paper broker). Safe to run twice. "
        "With --orders N: a bulk history of N finished orders instead (COPY; adds only the "
        "bulk orders missing up to N)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-jobs",
            action="store_true",
            help="Only queue the broker jobs; leave them to a running worker.",
        )
        parser.add_argument(
            "--orders",
            type=int,
            help="bulk mode: make the demo history hold N bulk orders (~3 fills each)",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=20,
            help="bulk mode: spread the history over this many weekdays before today",
        )
        parser.add_argument(
            "--chunk", type=int, default=BULK_CHUNK, help="bulk mode: orders per transaction"
        )

    def handle(self, *args, no_jobs=False, orders=None, days=20, chunk=BULK_CHUNK, **options):
        self.verbosity = options.get("verbosity", 1)
        with SAMPLE_INSTRUMENTS.open(newline="") as lines:
            loaded = instruments_load(lines)
        self._say(f"instruments: {loaded.total} in the sample master")
        strategies = self._strategies()
        if orders is not None:
            if orders < 0:
                raise CommandError(f"--orders {orders}: must be 0 or more")
            if days < 1:
                raise CommandError(f"--days {days}: must be at least 1")
            if chunk < 2:
                raise CommandError(f"--chunk {chunk}: must be at least 2")
            paper = [s for s in strategies.values() if s.mode == StrategyMode.PAPER]
            result = bulk_history_load(
                target=orders,
                strategies=paper,
                prices=PRICES,
                days=days,
                chunk=chunk,
                progress=self._say,
            )
            self._say(self.style.SUCCESS(result.summary()))
            return
        market_prices_update([(s, e, Decimal(p)) for s, e, p in PRICES])
        placed = self._place(strategies, FIRST_SESSION)
        if not no_jobs:
            self._run_jobs()
            market_prices_update([(s, e, Decimal(p)) for s, e, p in LATER_PRICES])
        placed += self._place(strategies, SECOND_SESSION)
        if not no_jobs:
            self._run_jobs()
        self._say(self.style.SUCCESS(f"demo data ready: {placed} new orders"))

    def _say(self, line: str) -> None:
        if self.verbosity:
            self.stdout.write(line)

    def _strategies(self) -> dict[str, Strategy]:
        account, created = BrokerAccount.objects.get_or_create(
            user_id=DEMO_ACCOUNT["user_id"],
            defaults={k: v for k, v in DEMO_ACCOUNT.items() if k != "user_id"},
        )
        self._say(f"broker account {account}: {'created' if created else 'exists'}")
        strategies = {}
        for name, description, mode, config in STRATEGIES:
            live = mode == StrategyMode.LIVE
            status = (
                StrategyStatus.ACTIVE
                if not live or name in ACTIVE_LIVE
                else StrategyStatus.INACTIVE
            )
            strategies[name], created = Strategy.objects.get_or_create(
                name=name,
                defaults={
                    "description": description,
                    "mode": mode,
                    "status": status,
                    "config": config,
                    "broker_account": account if live else None,
                },
            )
            self._say(f"strategy {name}: {'created' if created else 'exists'}")
        return strategies

    def _place(self, strategies, rows) -> int:
        placed = 0
        for strategy, client_id, symbol, side, quantity, order_type, product, price, sl, tp in rows:
            result = order_place(
                OrderRequest(
                    strategy_id=strategies[strategy].pk,
                    client_order_id=client_id,
                    symbol=symbol,
                    side=side,
                    quantity=quantity,
                    order_type=order_type,
                    product=product,
                    price=price,
                    stop_loss=sl,
                    take_profit=tp,
                    tag="demo",
                ),
                actor="seed_demo",
                source=EventSource.SYSTEM,
            )
            placed += 0 if result.replayed else 1
        return placed

    def _run_jobs(self) -> None:
        worker_app = app.with_connector(app.connector.get_worker_connector())
        worker_app.run_worker(
            queues=["orders", "prices"],
            wait=False,
            install_signal_handlers=False,
            listen_notify=False,
        )
