"""manage.py market_feed: live prices from Kite for LIVE positions' marks and exits."""

from __future__ import annotations

import logging
import signal
import threading
import time

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.brokers.kite import KiteBroker
from orders.models import BrokerAccount
from risk.market_feed import feed_broker, feed_run

logger = logging.getLogger("oms.market_feed")

CREDENTIALS_CHECK_SECONDS = 60


class Command(BaseCommand):
    help = (
        "Follow the prices that matter (LIVE positions, working orders, OMS_MARKET_FEED_WATCH) "
        "through Kite's ticker, polling ltp() while the socket is down; marks, exits and the "
        "kill switch rules follow each batch. Without a Kite account logged in today it waits, "
        "checking again every minute. Runs until stopped (SIGTERM, Ctrl-C) or --seconds have "
        "passed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seconds", type=float, default=None, help="Stop after this many seconds."
        )

    def handle(self, *args, seconds=None, **options):
        stop = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            # A stop ends the pass under way, then closes the socket.
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, lambda *_: stop.set())
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            report = None
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                broker = self._broker(stop, deadline)
                if broker is None:
                    break
                # Until the account's session ends (06:00 IST), then with the next account.
                left = self._session_left(broker)
                if deadline is not None:
                    left = min(left, max(0.0, deadline - time.monotonic()))
                report = feed_run(broker, seconds=left, stop=stop)
            if report is None:
                self.stdout.write("market feed: no Kite account has a session; stopped waiting")
                return
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write(
            f"market feed: {report.batches} batches, {report.prices} prices "
            f"({report.ticked} ticked, {report.polled} polled in {report.polls} polls), "
            f"{report.order_updates} order updates, {report.connections} connections"
        )

    @staticmethod
    def _session_left(broker: KiteBroker) -> float:
        account = BrokerAccount.objects.get(user_id=broker.user_id)
        return max(0.0, (account.token_expires_at - timezone.now()).total_seconds())

    def _broker(self, stop: threading.Event, deadline: float | None) -> KiteBroker | None:
        """A Kite client with today's session; without one, wait for the morning login (None:
        stopped first)."""
        while True:
            broker = feed_broker()
            if broker is not None:
                return broker
            logger.warning("market feed idle: no Kite account has a session (Connect Kite)")
            pause = CREDENTIALS_CHECK_SECONDS
            if deadline is not None:
                pause = min(pause, deadline - time.monotonic())
            if pause <= 0 or stop.wait(pause):
                return None
