"""Place-order throughput and latency, against a bare one-INSERT endpoint on the same server.

    .venv/bin/python bench/api_place.py                  # a few seconds, defaults below
    .venv/bin/python bench/api_place.py --clients 16 --seconds 10 --workers 2 --threads 8
    .venv/bin/python bench/api_place.py --url http://127.0.0.1:8000 --key oms_...  # a running
        server started with OMS_BENCH_ENDPOINTS=true (and limits that let the orders through)

Without --url it uses its own database (``oms_bench`` on the embedded PostgreSQL, or
--database-url), migrates it, makes a paper strategy and a key, and starts gunicorn on
127.0.0.1 with the project. The same server then answers, in turn:

- ``POST /api/v1/bench/bare-insert/``: a plain Django view doing one INSERT of the JSON body
  into ``bench_inserts`` (no DRF, no authentication): the floor of any durable write here;
- ``POST /api/v1/orders/``: a real placement (key, throttle, validation, pre-trade checks,
  order row, event, submission job, answer).

N client threads with keep-alive connections send requests for a fixed time; the script
prints requests per second, p50 and p99 latency for each, and the ratio of the two
throughputs (the target is at least 0.28). For a server it started, it also prints the CPU
time each answered request cost the gunicorn workers ("app") and the database's sessions
("db"), read from /proc (Linux): steadier than throughput on a shared machine. Only 127.0.0.1
is ever contacted; every loop is bounded in time; the server it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import benchdb

BASE_DIR = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.28  # what placement held before the checks became exact under concurrency
BENCH_DATABASE = "oms_bench"

# The server's settings for the run: the bench endpoint on, and no limit that would refuse a
# benchmark's orders (the API and the checks still run in full).
SERVER_ENV = {
    "OMS_BENCH_ENDPOINTS": "true",
    "OMS_API_THROTTLE_RATE": "1000000/s",
    "OMS_ORDERS_PER_SECOND": "1000000",
    "OMS_PAPER_MARKET_HOURS": "ignore",
    "OMS_LOG_LEVEL": "WARNING",
    "DJANGO_DEBUG": "false",
    "PYTHONWARNINGS": "ignore:No directory at:UserWarning",  # no collectstatic for a bench
}


@dataclass
class Run:
    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    elapsed: float = 0.0
    app_cpu: float | None = None  # CPU seconds of the server's workers during the run
    db_cpu: float | None = None  # CPU seconds of the database sessions of the bench database

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def cpu_ms(self, seconds: float | None) -> str:
        """CPU milliseconds per answered request, or "-" when not measured."""
        return "-" if seconds is None or not self.ok else f"{seconds * 1000 / self.ok:.2f}"

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


# --- set-up ----------------------------------------------------------------------------------


def prepare(database_url: str, *, strategies: int = 1) -> list[str]:
    """Migrate the bench database, make the bench strategies and a key each; returns the keys."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omsproject.settings")
    os.environ.setdefault("OMS_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import connection

    from orders.api_keys import api_key_create
    from orders.enums import StrategyMode, StrategyStatus
    from orders.models import Strategy
    from risk.models import Instrument

    call_command("migrate", verbosity=0, interactive=False)
    benchdb.without_shipped_limits()  # its 10 orders a second would beat OMS_ORDERS_PER_SECOND
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_inserts ("
            " id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(),"
            " payload jsonb NOT NULL)"
        )
        cursor.execute("TRUNCATE bench_inserts")
        # Jobs of earlier runs: no worker runs in this database.
        cursor.execute("DELETE FROM procrastinate_jobs WHERE status = 'todo'")
    bench_strategies = [
        Strategy.objects.update_or_create(
            name="Bench" if number == 0 else f"Bench {number + 1}",
            defaults={"status": StrategyStatus.ACTIVE, "mode": StrategyMode.PAPER, "config": {}},
        )[0]
        for number in range(strategies)
    ]
    Instrument.objects.get_or_create(
        tradingsymbol="RELIANCE",
        exchange="NSE",
        defaults={
            "instrument_token": 738561,
            "segment": "NSE",
            "instrument_type": "EQ",
            "tick_size": Decimal("0.05"),
            "lot_size": 1,
        },
    )
    keys = [
        api_key_create(
            strategy=strategy, name=f"bench {uuid.uuid4().hex[:8]}", actor="bench/api_place.py"
        )[1]
        for strategy in bench_strategies
    ]
    connection.close()
    return keys


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(database_url: str, *, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, **SERVER_ENV, "DATABASE_URL": database_url}
    command = [
        str(BASE_DIR / ".venv" / "bin" / "gunicorn"),
        "omsproject.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=BASE_DIR, env=env, start_new_session=True)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/v1/health/")
            if connection.getresponse().status in (200, 503):
                return server, url
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    raise SystemExit("gunicorn did not answer within 60 s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


# --- CPU accounting (Linux /proc) -------------------------------------------------------------


def _process_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # the fields after the command name


def _cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU time so far of each process still running."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        stat = _process_stat(pid)
        if stat is not None:
            found[pid] = (int(stat[11]) + int(stat[12])) / ticks
    return found


class CpuMeter:
    """CPU spent, between two samples, by a server's worker processes and by the database
    sessions of the bench database (the PostgreSQL server is on this machine)."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def _workers(self) -> list[int]:
        workers = []
        for name in os.listdir("/proc"):
            stat = _process_stat(int(name)) if name.isdigit() else None
            if stat is not None and stat[1] == str(self.server_pid):  # its parent
                workers.append(int(name))
        return workers

    def _sessions(self) -> list[int]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [pid for (pid,) in cursor.fetchall()]

    def sample(self) -> tuple[dict[int, float], dict[int, float]]:
        return _cpu_seconds(self._workers()), _cpu_seconds(self._sessions())

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        # A process that started during the run counts whole; one that ended is lost.
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# --- load ------------------------------------------------------------------------------------


def order_body(run_id: str, client: int, sequence: int) -> dict:
    return {
        "client_order_id": f"bench-{run_id}-{client}-{sequence}",
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "side": "BUY",
        "quantity": 1,
        "order_type": "LIMIT",
        "price": "2450.00",
        "product": "MIS",
    }


def drive(
    url: str,
    path: str,
    headers: dict,
    body_for,
    *,
    clients: int,
    seconds: float,
    run: Run,
    method: str = "POST",
) -> None:
    """``clients`` threads, one keep-alive connection each, sending for ``seconds``."""
    parts = urlsplit(url)
    lock = threading.Lock()
    start_line = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        sent_headers = headers(number) if callable(headers) else headers
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        latencies, statuses, errors = [], {}, 0
        start_line.wait()
        deadline = time.monotonic() + seconds
        sequence = 0
        while time.monotonic() < deadline:
            sequence += 1
            payload = json.dumps(body_for(number, sequence)) if body_for else None
            began = time.perf_counter()
            try:
                connection.request(method, path, payload, sent_headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                continue
            took = time.perf_counter() - began
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.status in (200, 201):
                latencies.append(took)
            else:
                errors += 1
        connection.close()
        with lock:
            run.latencies.extend(latencies)
            run.errors += errors
            for status, count in statuses.items():
                run.statuses[status] = run.statuses.get(status, 0) + count

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    run.elapsed = time.perf_counter() - began


def measure(
    url: str,
    keys: list[str],
    *,
    clients: int,
    seconds: float,
    warmup: float,
    cpu: CpuMeter | None = None,
) -> list[Run]:
    """The bare INSERT, the order placement, and (to tell the framework's share from the
    placement's) the API's cheapest authenticated read: key, throttle, one SELECT."""
    run_id = uuid.uuid4().hex[:10]
    json_headers = {"Content-Type": "application/json", "Accept": "application/json"}

    # Client n places for the strategy of key n (mod their number): one strategy's orders are
    # checked one at a time (its lock), different strategies' in parallel.
    def authorized(client: int) -> dict:
        return {**json_headers, "Authorization": f"Bearer {keys[client % len(keys)]}"}

    targets = [
        (
            "bare INSERT",
            "POST",
            "/api/v1/bench/bare-insert/",
            json_headers,
            lambda client, sequence: {"client": client, "sequence": sequence, "run": run_id},
        ),
        (
            "POST /api/v1/orders/",
            "POST",
            "/api/v1/orders/",
            authorized,
            lambda client, sequence: order_body(run_id, client, sequence),
        ),
        ("GET /api/v1/orders/", "GET", "/api/v1/orders/?page_size=1", authorized, None),
    ]
    runs = []
    for name, method, path, headers, body_for in targets:
        warm = Run(f"{name} (warm-up)")
        warm_body = (lambda c, s, f=body_for: f(c + 1000, s)) if body_for else None
        drive(
            url,
            path,
            headers,
            warm_body,
            clients=clients,
            seconds=warmup,
            run=warm,
            method=method,
        )
        if not warm.ok:
            raise SystemExit(f"{name}: no request succeeded during warm-up: {warm.statuses}")
        run = Run(name)
        before = cpu.sample() if cpu else None
        drive(
            url, path, headers, body_for, clients=clients, seconds=seconds, run=run, method=method
        )
        if cpu:
            after = cpu.sample()
            run.app_cpu = cpu.spent(before[0], after[0])
            run.db_cpu = cpu.spent(before[1], after[1])
        runs.append(run)
    return runs


def report(runs: list[Run], *, clients: int, seconds: float, workers: int, threads: int) -> float:
    print(
        f"\n{clients} concurrent clients, {seconds:g} s each; gunicorn {workers} workers x "
        f"{threads} threads on 127.0.0.1; {os.cpu_count()} CPUs\n"
    )
    print(
        f"{'endpoint':<22} {'ok':>7} {'errors':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f"   CPU ms/request: {'app':>6} {'db':>6}"
    )
    for run in runs:
        print(
            f"{run.name:<22} {run.ok:>7} {run.errors:>7} {run.throughput:>9.1f} "
            f"{run.percentile(50):>8.2f} {run.percentile(99):>8.2f}"
            f"{'':>19}{run.cpu_ms(run.app_cpu):>6} {run.cpu_ms(run.db_cpu):>6}"
        )
    bare, place, _ = runs
    ratio = place.throughput / bare.throughput if bare.throughput else 0.0
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(
        f"\nratio place/bare throughput: {ratio:.2f} "
        f"(target >= {TARGET_RATIO}: {verdict}); "
        f"p50 {place.percentile(50) / bare.percentile(50):.1f}x the bare latency"
    )
    if bare.app_cpu is not None and place.app_cpu is not None and bare.ok and place.ok:
        # On a machine the server, the database and the clients share, throughput follows CPU.
        bare_cpu = (bare.app_cpu + bare.db_cpu) / bare.ok
        place_cpu = (place.app_cpu + place.db_cpu) / place.ok
        print(
            f"CPU per request (app + db): bare {bare_cpu * 1000:.2f} ms, place "
            f"{place_cpu * 1000:.2f} ms; their ratio, steadier than throughput's: "
            f"{bare_cpu / place_cpu:.2f}"
        )
    for run in runs:
        if run.errors:
            print(f"{run.name}: answers other than 200/201: {run.statuses}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--url", help="A running server (with OMS_BENCH_ENDPOINTS=true).")
    parser.add_argument("--key", help="With --url: a paper strategy's API key.")
    parser.add_argument(
        "--strategies",
        type=int,
        default=1,
        help="Strategies the clients place for (client n: strategy n mod N). One strategy's "
        "orders are checked one at a time; default 1, the worst case.",
    )
    parser.add_argument("--database-url", help="Own database (default: oms_bench, embedded).")
    options = parser.parse_args()
    if not 1 <= options.clients <= 64 or not 0 < options.seconds <= 120 or options.strategies < 1:
        parser.error("--clients 1..64, --seconds up to 120, --strategies at least 1")

    if options.url:
        if not options.key:
            parser.error("--url needs --key")
        host = urlsplit(options.url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("--url: only a server on this machine (127.0.0.1) is benchmarked")
        runs = measure(
            options.url,
            [options.key],
            clients=options.clients,
            seconds=options.seconds,
            warmup=options.warmup,
        )
        report(runs, clients=options.clients, seconds=options.seconds, workers=0, threads=0)
        return

    database_url = benchdb.existing_database_url(BENCH_DATABASE, options.database_url)
    keys = prepare(database_url, strategies=options.strategies)
    server, url = start_server(database_url, workers=options.workers, threads=options.threads)
    try:
        cpu = CpuMeter(server.pid) if Path("/proc/self/stat").exists() else None
        runs = measure(
            url,
            keys,
            clients=options.clients,
            seconds=options.seconds,
            warmup=options.warmup,
            cpu=cpu,
        )
    finally:
        stop_server(server)
    report(
        runs,
        clients=options.clients,
        seconds=options.seconds,
        workers=options.workers,
        threads=options.threads,
    )


if __name__ == "__main__":
    main()
