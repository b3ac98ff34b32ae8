"""The benchmarks' own database on the embedded PostgreSQL: dropped, created and migrated.

The benchmarks of operations (daily_stats.py, reconcile.py) load hundreds of thousands of rows:
they never touch the development database ("oms") or a test database. Their database is made
fresh for each run (``DROP DATABASE ... WITH (FORCE)`` ends only sessions on that database)
and migrated with ``manage.py migrate``; Django is then set up on it in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "oms_bench_ops"


def _server_settings() -> dict:
    sys.path.insert(0, str(BASE_DIR))
    from omsproject import embedded_db

    return embedded_db.ensure_running(embedded_db.pgdata_path(BASE_DIR), database="postgres")


def database_url(name: str) -> str:
    server = _server_settings()
    return f"postgresql://{server['USER']}@{quote(server['HOST'], safe='')}/{name}"


def existing_database_url(name: str, explicit: str | None = None) -> str:
    """``explicit`` if given, else the URL of ``name`` on the embedded server, created (empty)
    when missing; the caller migrates it."""
    if explicit:
        return explicit
    sys.path.insert(0, str(BASE_DIR))
    from omsproject import embedded_db

    embedded_db.ensure_running(embedded_db.pgdata_path(BASE_DIR), database=name)
    return database_url(name)


def fresh_database(name: str = DEFAULT_DATABASE) -> str:
    """Drop and create ``name``, migrate it, set Django up on it; returns its URL."""
    import psycopg

    if not name.isidentifier() or not name.startswith("oms_bench"):
        raise SystemExit(f"database {name!r}: a bench database is named oms_bench...")
    server = _server_settings()
    with psycopg.connect(
        host=server["HOST"], user=server["USER"], dbname="postgres", autocommit=True
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "OMS_LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore",
    }
    began = time.perf_counter()
    subprocess.run(  # noqa: S603
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--no-input", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )
    print(f"database {name}: created and migrated in {time.perf_counter() - began:.1f} s")
    django_setup(url)
    without_shipped_limits()
    return url


def without_shipped_limits() -> None:
    """Remove the global limits row migration risk/0007 ships (Rs 10 lakh an order, 10 orders
    a second...): a benchmark measures throughput, not the desk's limits."""
    from risk.models import RiskLimit

    RiskLimit.objects.filter(strategy__isnull=True).delete()


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omsproject.settings")
    os.environ.setdefault("OMS_LOG_LEVEL", "WARNING")
    # One plain connection: a benchmark measures queries, not the pool.
    os.environ.setdefault("OMS_DB_POOL_DISABLED", "true")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def best_of(runs: int, work) -> float:
    """The fastest of ``runs`` timings of ``work()``, in seconds (the least disturbed one)."""
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        timings.append(time.perf_counter() - began)
    return min(timings)
