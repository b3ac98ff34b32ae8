"""manage.py market_feed: live prices from Kite for LIVE positions' marks and exits."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from orders.brokers.base import BrokerUnavailable
from orders.brokers.kite import KiteBroker
from risk.market_feed import feed_run


class Command(BaseCommand):
    help = (
        "Follow the prices that matter (LIVE positions, working orders, OMS_MARKET_FEED_WATCH) "
        "through Kite's ticker, polling ltp() while the socket is down; marks, exits and the "
        "kill switch rules follow each batch. Runs until stopped (SIGTERM, Ctrl-C)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seconds", type=float, default=None, help="Stop after this many seconds."
        )

    def handle(self, *args, seconds=None, **options):
        try:
            broker = KiteBroker.from_settings()
        except BrokerUnavailable as error:
            raise CommandError(str(error)) from None
        stop = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            # A stop ends the pass under way, then closes the socket.
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, lambda *_: stop.set())
        try:
            report = feed_run(broker, seconds=seconds, stop=stop)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write(
            f"market feed: {report.batches} batches, {report.prices} prices "
            f"({report.ticked} ticked, {report.polled} polled in {report.polls} polls), "
            f"{report.order_updates} order updates, {report.connections} connections"
        )
