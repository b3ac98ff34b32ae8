"""A real OMS cluster on 127.0.0.1 for the reliability tests.

Two gunicorn masters (one worker each, a few threads) on two free ports and two procrastinate
workers, all against pytest-django's test database (the embedded PostgreSQL's socket, or
DATABASE_URL's server). Every wait is bounded; every process runs in its own session, so a
stop reaches its children, and is stopped with SIGTERM, then SIGKILL. Each process writes to
its own log file, whose tail is shown when a test fails.

The cluster's Kite is a fake one (orders.tests.fake_kite.FakeKiteServer) served by the test
process on 127.0.0.1: a test that trades LIVE writes a broker account with a session (its
secrets encrypted with the key every process derives alike), and KITE_API_ROOT points the
processes at the fake Kite, so nothing ever leaves 127.0.0.1. A test says what Kite answers
(``cluster.kite.reply(...)``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

from orders.tests.fake_kite import FakeKiteServer

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"

WEB_THREADS = 6
WORKER_CONCURRENCY = 4
WORKER_QUEUES = "orders,prices,maintenance"  # maintenance: orders.retry_stalled_jobs
START_SECONDS = 60
STOP_SECONDS = 10
# A killed worker is found quickly; a live one beats 6 times within the stalled threshold.
HEARTBEAT_SECONDS = 1
STALLED_SECONDS = 6
APPLICATION_PREFIX = "oms-rel-"  # application_name of the cluster's database sessions
KITE_API_SECRET = "reliability-kite-secret"
KITE_API_KEY = "reliability-kite-key"
KITE_ACCESS_TOKEN = "reliability-kite-access-token"

# What the processes run with: no limit that would refuse a test's orders (the checks still
# run in full), paper strategies at any hour, Kite at the fake Kite (KITE_API_ROOT is set for
# each cluster: Cluster._env).
CLUSTER_ENV = {
    "DJANGO_SETTINGS_MODULE": "omsproject.settings",
    "DJANGO_DEBUG": "false",
    "OMS_PAPER_MARKET_HOURS": "ignore",
    "OMS_LOG_LEVEL": "WARNING",
    "OMS_QUEUE_LOG_LEVEL": "WARNING",
    "OMS_LOG_JSON": "false",
    "OMS_API_THROTTLE_RATE": "1000000/s",
    "OMS_ORDERS_PER_SECOND": "1000000",
    "OMS_DB_POOL_MIN": "1",
    "OMS_DB_POOL_MAX": "8",
    "OMS_DB_POOL_TIMEOUT": "10",
    # The feed's long polls end after 2 s (a client polls again): the schema fuzz sends any
    # wait up to 30 s, and must keep to its time budget.
    "OMS_EVENTS_MAX_WAIT": "2",
    "OMS_WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
    "OMS_WORKER_STALLED_SECONDS": str(STALLED_SECONDS),
    "OMS_RISK_EMAILS": "",
    "PYTHONWARNINGS": "ignore:No directory at:UserWarning",  # no collectstatic for tests
}
# Never handed down from the test run: the cluster's database is the test database.
NOT_INHERITED = (
    "DATABASE_URL",
    "OMS_PGDATA",
    "OMS_TEST_DATABASE_NAME",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "OMS_BENCH_ENDPOINTS",
)


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for Django's connection settings (a Unix socket directory as HOST too)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    if settings_dict.get("PASSWORD"):
        user += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict.get("HOST") or ""
    port = str(settings_dict.get("PORT") or "")
    # dj-database-url reads a percent-encoded path (%2F...) as a Unix socket directory.
    location = quote(host, safe="") if host.startswith("/") else host + (f":{port}" if port else "")
    return f"postgresql://{user}@{location}/{quote(settings_dict['NAME'], safe='')}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Member:
    """One process of the cluster."""

    name: str
    kind: str  # "web" or "worker"
    log_path: Path
    process: subprocess.Popen
    port: int | None = None
    stopped_on_purpose: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    """``query(sql, params)`` runs SQL on the test database from the test process; ``kite``
    is the fake Kite the processes talk to (KITE_API_ROOT)."""

    database_url: str
    log_dir: Path
    query: Callable[..., list[tuple]]
    kite: FakeKiteServer
    members: list[Member] = field(default_factory=list)
    stopped: bool = False
    started_in: float = 0.0

    # --- processes -----------------------------------------------------------------------

    @property
    def webs(self) -> list[Member]:
        return [m for m in self.members if m.kind == "web" and m.alive]

    @property
    def workers(self) -> list[Member]:
        return [m for m in self.members if m.kind == "worker" and m.alive]

    @property
    def urls(self) -> list[str]:
        return [web.url for web in self.webs]

    def _env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update(CLUSTER_ENV)
        env["DATABASE_URL"] = self.database_url
        env["KITE_API_ROOT"] = self.kite.root
        env["OMS_DB_APPLICATION_NAME"] = APPLICATION_PREFIX + name
        return env

    def _spawn(self, name: str, kind: str, argv: list[str], port: int | None = None) -> Member:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self._env(name),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        member = Member(name, kind, log_path, process, port=port)
        self.members.append(member)
        return member

    def start_web(self, name: str) -> Member:
        port = free_port()
        argv = [
            str(BIN / "gunicorn"),
            "omsproject.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            str(WEB_THREADS),
            "--keep-alive",
            "30",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
        ]
        return self._spawn(name, "web", argv, port=port)

    def start_worker(self, name: str) -> Member:
        """Start a worker and wait until it has registered (it is then taking jobs)."""
        before = self._last_worker_id()
        argv = [
            str(BIN / "python"),
            "manage.py",
            "procrastinate",
            "worker",
            "--queues",
            WORKER_QUEUES,
            "--concurrency",
            str(WORKER_CONCURRENCY),
        ]
        member = self._spawn(name, "worker", argv)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if not member.alive:
                raise RuntimeError(f"worker {name} exited at start:\n{member.tail()}")
            if self._last_worker_id() > before:
                return member
            time.sleep(0.1)
        raise RuntimeError(f"worker {name} did not register within {START_SECONDS}s")

    def _last_worker_id(self) -> int:
        return self.query("SELECT coalesce(max(id), 0) FROM procrastinate_workers")[0][0]

    def wait_healthy(self, web: Member, timeout: float = START_SECONDS) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not web.alive:
                raise RuntimeError(f"{web.name} exited:\n{web.tail()}")
            try:
                response = requests.get(f"{web.url}/api/v1/health/", timeout=5)
                last = response.status_code
                if response.status_code == 200:
                    return response.json()
            except requests.RequestException as error:
                last = error
            time.sleep(0.2)
        raise RuntimeError(f"{web.name} not healthy within {timeout}s (last: {last})")

    def start(self) -> None:
        began = time.monotonic()
        # The web servers boot while the workers start, one after the other (each is waited
        # for until it has registered).
        webs = [self.start_web("web-1"), self.start_web("web-2")]
        for name in ("worker-1", "worker-2"):
            self.start_worker(name)
        for web in webs:
            self.wait_healthy(web)
        self.started_in = time.monotonic() - began

    def kill(self, member: Member) -> None:
        """SIGKILL, as a machine lost or the OOM killer would: no clean-up at all."""
        member.stopped_on_purpose = True
        os.killpg(member.process.pid, signal.SIGKILL)
        member.process.wait(timeout=STOP_SECONDS)

    def stop_member(self, member: Member) -> None:
        member.stopped_on_purpose = True
        if not member.alive:
            return
        try:
            os.killpg(member.process.pid, signal.SIGTERM)
            member.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(member.process.pid, signal.SIGKILL)
            member.process.wait(timeout=STOP_SECONDS)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        # Workers first: no job runs while the web servers go.
        for member in sorted(self.members, key=lambda m: m.kind != "worker"):
            try:
                self.stop_member(member)
            except Exception:  # noqa: S112 (stop the others whatever happens to one)
                continue

    def dead(self) -> list[str]:
        """The members that should be running and are not, with their exit codes."""
        return [
            f"{m.name} (exit {m.process.returncode})"
            for m in self.members
            if not m.alive and not m.stopped_on_purpose
        ]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each kind of member, children included (Linux /proc)."""
        groups = {m.process.pid: m.kind for m in self.members}
        used = dict.fromkeys(("web", "worker"), 0.0)
        tick = os.sysconf("SC_CLK_TCK")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            kind = groups.get(int(fields[2]))  # the process group: the member's session
            if kind:
                used[kind] += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        return used

    def tails(self, lines: int = 30) -> str:
        return "\n\n".join(
            f"--- {m.name} ({'running' if m.alive else f'exit {m.process.returncode}'}) "
            f"{m.log_path}\n{m.tail(lines)}"
            for m in self.members
        )

    # --- the queue -------------------------------------------------------------------------

    def pending_jobs(self, queues: tuple[str, ...] = ("orders", "prices")) -> int:
        """Jobs due now (or within a few seconds) not yet done, in the given queues."""
        return self.query(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
            "AND queue_name = ANY(%s) "
            "AND (scheduled_at IS NULL OR scheduled_at < now() + interval '5 seconds')",
            [list(queues)],
        )[0][0]

    def drain(self, timeout: float = 60.0, queues: tuple[str, ...] = ("orders", "prices")) -> float:
        """Wait until the workers have run every due job; returns the seconds it took."""
        began = time.monotonic()
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.pending_jobs(queues) == 0:
                return time.monotonic() - began
            time.sleep(0.1)
        raise AssertionError(
            f"jobs still pending after {timeout}s: {self.pending_jobs(queues)}\n{self.tails()}"
        )

    def members_logging(self, text: str) -> list[Member]:
        """The members whose log has a line containing ``text``."""
        return [m for m in self.members if any(text in line for line in m.tail(10**6).splitlines())]

    def log_lines(self, text: str) -> list[str]:
        """Every line of every member's log containing ``text``."""
        found = []
        for member in self.members:
            try:
                content = member.log_path.read_text(errors="replace")
            except OSError:
                continue
            found += [f"{member.name}: {line}" for line in content.splitlines() if text in line]
        return found
