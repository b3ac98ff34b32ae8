"""Event delivery: a fill committed → the strategy hears it, by webhook and by the long-poll feed.

    .venv/bin/python bench/events_latency.py                    # 50 fills a second for 20 s, twice
    .venv/bin/python bench/events_latency.py --rate 50 --seconds 20 \
        --database-url postgresql://root@127.0.0.1:5432/oms_bench_events

It makes its own database (``oms_bench_events`` on the embedded PostgreSQL, or the database
of --database-url, whose name must start with ``oms_bench``: dropped, created, migrated), a
paper strategy with an API key, OPEN orders to fill, and a webhook endpoint of that strategy
(kinds ``order.fill``) pointing at a receiver this script serves on 127.0.0.1. It starts
gunicorn (the feed) and a procrastinate worker (queues ``webhooks`` and ``maintenance``, the
one that retries a dead worker's jobs) as subprocesses. Then, twice:

1. **clean**: ``--rate`` fills a second for ``--seconds`` s, each committed by
   ``orders.services.fill_apply`` (its own transaction) in this process, on a fixed schedule;
2. **worker killed**: the same, with the worker SIGKILLed (its whole process group) half way
   through the burst and started again one second later.

For every fill it notes the moment its transaction committed, and the moment (same clock,
same process) the receiver got its signed POST (checked with ``oms_client.verify_webhook``)
and the moment the feed reader (``oms_client.OMSClient.events``, long-polling) yielded it. It
prints, per run and per path: fills committed, received, lost (committed, never heard),
deliveries repeated (the same event id again: at least once allows it), duplicated after
dedupe (another event id for a fill already heard: must be 0), and p50/p99 latency (targets:
p99 ≤ 100 ms; zero lost; zero duplicated). The killed run's p99 includes the outage (a dead
worker is found after OMS_WORKER_STALLED_SECONDS, its job retried by the minute's
``orders.retry_stalled_jobs`` or the webhooks' sweep), so its latency is reported, not held to
the target. Only 127.0.0.1 is contacted; every wait is bounded; the subprocesses are stopped at
the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
BASE_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BASE_DIR / "clients" / "python"))

import benchdb  # noqa: E402
from api_place import SERVER_ENV, start_server, stop_server  # noqa: E402
from fill_apply import fill_price, orders_make  # noqa: E402
from oms_client import OMSClient, WebhookVerificationError, verify_webhook  # noqa: E402

BENCH_DATABASE = "oms_bench_events"
TARGET_P99_MS = 100.0
INSTRUMENTS = 8
DRAIN_SECONDS = 150  # a killed worker's job: stalled threshold + the minute's retry or sweep
# The worker's and the server's settings for the run (on top of api_place's SERVER_ENV).
RUN_ENV = {
    "OMS_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
    "OMS_WORKER_HEARTBEAT_SECONDS": "1",
    "OMS_WORKER_STALLED_SECONDS": "4",
    "OMS_LOG_LEVEL": "WARNING",
    "OMS_QUEUE_LOG_LEVEL": "WARNING",
}


@dataclass
class Heard:
    """When each fill (by its trade id) was heard on one path, deduped by event id."""

    name: str
    first: dict[str, float] = field(default_factory=dict)  # trade id → first time heard
    events: dict[int, str] = field(default_factory=dict)  # event id → trade id
    repeated: int = 0  # the same event id again (at least once allows it)
    duplicated: int = 0  # another event id for a trade already heard (never allowed)
    refused: int = 0  # deliveries whose signature did not check out
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, event_id: int, trade_id: str, at: float) -> None:
        with self.lock:
            if event_id in self.events:
                self.repeated += 1
                return
            self.events[event_id] = trade_id
            if trade_id in self.first:
                self.duplicated += 1
                return
            self.first[trade_id] = at


@dataclass
class Run:
    name: str
    committed: dict[str, float] = field(default_factory=dict)  # trade id → commit time
    webhook: Heard = field(default_factory=lambda: Heard("webhook"))
    feed: Heard = field(default_factory=lambda: Heard("feed"))
    killed_at: float | None = None
    restarted_at: float | None = None
    late_start: int = 0  # fills committed more than 20 ms behind their schedule
    feed_error: str | None = None  # why the feed reader stopped, if it failed


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- set-up ----------------------------------------------------------------------------------


def fresh_database(explicit: str | None) -> str:
    """The bench database, dropped, created and migrated; Django set up on it."""
    if not explicit:
        return benchdb.fresh_database(BENCH_DATABASE)
    import psycopg

    parts = urlsplit(explicit)
    name = parts.path.lstrip("/")
    if not name.isidentifier() or not name.startswith("oms_bench"):
        raise SystemExit(f"--database-url: database {name!r} must be named oms_bench...")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": explicit, "OMS_LOG_LEVEL": "WARNING"}
    subprocess.run(  # noqa: S603
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--no-input", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )
    benchdb.django_setup(explicit)
    benchdb.without_shipped_limits()
    return explicit


def prepare(fills: int, receiver_url: str):
    """A paper strategy, its key, OPEN orders for ``fills`` fills, and its webhook endpoint;
    returns (strategy, key, orders by fill, secret)."""
    from orders.api_keys import api_key_create
    from orders.enums import StrategyMode, StrategyStatus
    from orders.models import Strategy
    from orders.services.webhooks import webhook_endpoint_create

    strategy = Strategy.objects.create(
        name="Bench events", status=StrategyStatus.ACTIVE, mode=StrategyMode.PAPER, config={}
    )
    _, key = api_key_create(strategy=strategy, name="bench", actor="bench/events_latency.py")
    by_fill = orders_make(strategy, fills, INSTRUMENTS, f"ev{uuid.uuid4().hex[:6]}")
    _, secret = webhook_endpoint_create(
        strategy=strategy, url=receiver_url, kinds=["order.fill"], actor="bench"
    )
    return strategy, key, by_fill, secret


class QuietServer(ThreadingHTTPServer):
    """A connection the killed worker left half open is no news: not printed."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Receiver:
    """The strategy's webhook receiver: verifies each POST, notes it, answers 204."""

    def __init__(self, secret: str):
        self.secret = secret
        self.run: Run | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                run = receiver.run
                try:
                    event = verify_webhook(receiver.secret, dict(self.headers), body)
                except WebhookVerificationError:
                    if run:
                        run.webhook.refused += 1
                    self.send_response(400)
                else:
                    if run and event.kind == "order.fill":
                        run.webhook.note(event.id, event.data["trade_id"], at)
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Worker:
    """``manage.py procrastinate worker`` as a subprocess in its own process group."""

    def __init__(self, database_url: str, polling_interval: float | None = None):
        self.env = {**os.environ, **SERVER_ENV, **RUN_ENV, "DATABASE_URL": database_url}
        self.polling = [] if polling_interval is None else ["-p", f"{polling_interval:g}"]
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                str(BASE_DIR / "manage.py"),
                "procrastinate",
                "worker",
                "--queues",
                "webhooks,maintenance",
                "--concurrency",
                "4",
                *self.polling,
            ],
            cwd=BASE_DIR,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        """SIGKILL, as a lost machine or the OOM killer: no clean-up at all."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if not self.process or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def feed_reader(url: str, key: str, after: int, run: Run, stop: threading.Event) -> None:
    """The strategy's feed loop: long polls, notes each fill as it is yielded."""
    try:
        with OMSClient(url, key, timeout=10) as client:
            while not stop.is_set():
                feed = client.events(after=after, wait=2, idle_timeout=2)
                for event in feed:
                    if event.kind == "order.fill":
                        run.feed.note(event.id, event.data["trade_id"], time.monotonic())
                after = feed.after
    except Exception as error:  # reported with the figures
        run.feed_error = f"{type(error).__name__}: {error}"


# --- a run -----------------------------------------------------------------------------------


def burst(
    run: Run, orders: list, *, rate: float, first: int, count: int, worker: Worker, kill: bool
) -> None:
    """``count`` fills at ``rate`` a second, each committed on its own; with ``kill`` the
    worker dies half way through and is started again a second later."""
    from django.utils import timezone

    from orders.enums import EventSource
    from orders.services import fill_apply

    started, executed = time.monotonic(), timezone.now()
    for number in range(first, first + count):
        step = number - first
        due = started + step / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        elif now - due > 0.02:
            run.late_start += 1
        if kill and step == count // 2:
            worker.kill()
            run.killed_at = time.monotonic()
            threading.Timer(1.0, lambda: (worker.start(), _restarted(run))).start()
        trade_id = f"B{number:09d}"
        fill_apply(
            orders[number],
            trade_id=trade_id,
            quantity=10,
            price=fill_price(number),
            executed_at=executed + timedelta(milliseconds=number),
            source=EventSource.BROKER,
        )
        run.committed[trade_id] = time.monotonic()


def _restarted(run: Run) -> None:
    run.restarted_at = time.monotonic()


def latest_event_id() -> int:
    """The feed's cursor now (the sequencer gives every committed event its id first)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(oms_events_sequence(), 0)")
        return cursor.fetchone()[0]


def wait_for_all(run: Run, seconds: float) -> float:
    """Until both paths heard every committed fill, or ``seconds``; returns the time waited."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        wanted = run.committed.keys()
        feed_done = run.feed_error is not None or wanted <= run.feed.first.keys()
        if wanted <= run.webhook.first.keys() and feed_done:
            break
        time.sleep(0.2)
    return time.monotonic() - began


def report(run: Run, *, rate: float, seconds: float) -> bool:
    """Prints the run's figures; returns whether it met the targets."""
    print(f"\n{run.name}: {len(run.committed)} fills at {rate:g}/s for {seconds:g} s", end="")
    if run.killed_at is not None:
        down = (run.restarted_at or run.killed_at) - run.killed_at
        print(f"; worker SIGKILLed half way, started again {down:.1f} s later", end="")
    print(f" ({run.late_start} fills committed >20 ms behind schedule)")
    print(
        f"{'path':<8} {'heard':>6} {'lost':>5} {'repeated':>9} {'dup.':>5} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    ok = True
    for heard in (run.webhook, run.feed):
        latencies = [
            (heard.first[trade] - committed) * 1000
            for trade, committed in run.committed.items()
            if trade in heard.first
        ]
        lost = len(run.committed.keys() - heard.first.keys())
        p99 = percentile(latencies, 99)
        print(
            f"{heard.name:<8} {len(latencies):>6} {lost:>5} {heard.repeated:>9} "
            f"{heard.duplicated:>5} {percentile(latencies, 50):>8.1f} {p99:>8.1f} "
            f"{max(latencies, default=float('nan')):>8.1f}"
            + (f"  ({heard.refused} refused signatures)" if heard.refused else "")
        )
        ok &= lost == 0 and heard.duplicated == 0 and heard.refused == 0
        if run.killed_at is None:
            ok &= p99 <= TARGET_P99_MS
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="fills a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each burst")
    parser.add_argument("--no-kill", action="store_true", help="skip the worker-killed run")
    parser.add_argument("--database-url", help="own database (name oms_bench...)")
    parser.add_argument(
        "--worker-polling-interval",
        type=float,
        help="the worker's --fetch-job-polling-interval (default: procrastinate's, as "
        "`make worker` runs it)",
    )
    options = parser.parse_args()
    if not 1 <= options.rate <= 500 or not 1 <= options.seconds <= 120:
        parser.error("--rate 1..500, --seconds 1..120")
    os.environ.update(RUN_ENV)  # this process creates the endpoint (a 127.0.0.1 URL)
    database_url = fresh_database(options.database_url)
    per_run = int(options.rate * options.seconds)
    runs = [Run("clean")] + ([] if options.no_kill else [Run("worker killed")])

    receiver = Receiver(secret="")
    _, key, orders, secret = prepare(per_run * len(runs), receiver.url)
    receiver.secret = secret
    server, url = start_server(database_url, workers=2, threads=4)
    worker = Worker(database_url, options.worker_polling_interval)
    worker.start()
    met = True
    try:
        time.sleep(3)  # the worker connects and listens
        for number, run in enumerate(runs):
            after = latest_event_id()
            receiver.run = run
            stop = threading.Event()
            reader = threading.Thread(
                target=feed_reader, args=(url, key, after, run, stop), daemon=True
            )
            reader.start()
            time.sleep(0.5)
            burst(
                run,
                orders,
                rate=options.rate,
                first=number * per_run,
                count=per_run,
                worker=worker,
                kill=run.name == "worker killed",
            )
            waited = wait_for_all(run, DRAIN_SECONDS)
            stop.set()
            reader.join(timeout=10)
            print(f"{run.name}: everything heard {waited:.1f} s after the last commit")
    finally:
        worker.stop()
        stop_server(server)
        receiver.close()
    for run in runs:
        met &= report(run, rate=options.rate, seconds=options.seconds)
        if run.feed_error:
            met = False
            print(f"the feed reader failed: {run.feed_error}")
    print(
        f"\ntargets (p99 <= {TARGET_P99_MS:g} ms on the clean run; none lost; none duplicated "
        f"after dedupe): {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
