"""The OMS's health, one definition read by ``/api/v1/health/`` (load balancers, monitors) and
the admin (the dashboard's health cards, the banner on every page).

Each part is a HealthCheck: ``ok``, ``warning`` (worth a look, e.g. next year's holidays not
loaded) or ``critical`` (trading is affected now: a LIVE strategy's orders are refused or wait,
exits wait for a fresh price). The whole is ``degraded`` when any part is critical; the
database being down is the health view's own ``down``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from django.conf import settings
from django.db import connection
from django.utils import timezone

from omsproject.money_format import plural
from orders.broker_sessions import IST, session_problem, session_state
from orders.enums import OrderStatus, StrategyMode, StrategyStatus
from orders.models import Order, Strategy
from orders.selectors import orders_in_flight_health, webhooks_health
from positions.selectors import marks_health
from risk import calendar

OK, WARNING, CRITICAL = "ok", "warning", "critical"
WORKER_HEARTBEAT_WITHIN = 60  # seconds; procrastinate workers beat every OMS_WORKER_HEARTBEAT


@dataclass(frozen=True)
class HealthCheck:
    name: str
    state: str
    summary: str
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state == OK


@dataclass(frozen=True)
class SystemHealth:
    checks: list[HealthCheck]
    workers: int

    @property
    def status(self) -> str:
        """``degraded`` when a part is critical; warnings are shown, not counted."""
        return "degraded" if any(c.state == CRITICAL for c in self.checks) else "ok"

    @property
    def problems(self) -> list[HealthCheck]:
        return [check for check in self.checks if not check.ok]

    def named(self, prefix: str) -> list[HealthCheck]:
        return [check for check in self.checks if check.name.startswith(prefix)]


@dataclass(frozen=True)
class Background:
    """The background work, read in one statement (``background_read``): workers beating,
    jobs failed lately / running too long / waiting too long, the latest whole-book
    reconciliation run (None: none yet), the open issues by severity, and whether staff
    closed the market today (for "is reconciliation due now")."""

    workers: int
    jobs_failed: int
    jobs_stalled: int
    jobs_waiting: int
    run_started_at: datetime | None
    run_finished_at: datetime | None
    run_differences: int
    issues: dict
    staff_holiday: bool


# Failed jobs are found through the partial index of risk migration 0018; running and waiting
# ones through procrastinate's own indexes of todo and doing jobs.
_BACKGROUND = """
SELECT
  (SELECT count(*) FROM procrastinate_workers
    WHERE last_heartbeat > now() - make_interval(secs => %(heartbeat)s)),
  (SELECT count(*) FROM procrastinate_jobs job WHERE job.status = 'failed' AND EXISTS (
      SELECT FROM procrastinate_events event WHERE event.job_id = job.id
         AND event.type = 'failed' AND event.at > now() - make_interval(hours => %(failed)s))),
  (SELECT count(*) FROM procrastinate_jobs job WHERE job.status = 'doing' AND (
      SELECT max(event.at) FROM procrastinate_events event WHERE event.job_id = job.id
         AND event.type = 'started') < now() - make_interval(secs => %(doing)s)),
  (SELECT count(*) FROM procrastinate_jobs job WHERE job.status = 'todo' AND COALESCE(
      job.scheduled_at, (SELECT min(event.at) FROM procrastinate_events event
         WHERE event.job_id = job.id AND event.type = 'deferred'))
      < now() - make_interval(secs => %(waiting)s)),
  run.started_at, run.finished_at, run.differences,
  (SELECT json_object_agg(severity, n) FROM (
      SELECT severity, count(*) AS n FROM reconciliation_log
       WHERE NOT resolved GROUP BY severity) AS open_issues),
  EXISTS (SELECT FROM market_holidays WHERE date = %(today)s)
FROM (SELECT) AS one
LEFT JOIN LATERAL (
    SELECT started_at, finished_at, differences FROM reconciliation_runs
     WHERE strategy_id IS NULL ORDER BY finished_at DESC LIMIT 1
) AS run ON true
"""


def background_read(now: datetime | None = None) -> Background:
    with connection.cursor() as cursor:
        cursor.execute(
            _BACKGROUND,
            {
                "heartbeat": WORKER_HEARTBEAT_WITHIN,
                "failed": settings.OMS_HEALTH_JOBS_FAILED_HOURS,
                "doing": settings.OMS_HEALTH_JOB_RUNNING_SECONDS,
                "waiting": settings.OMS_HEALTH_JOB_WAITING_SECONDS,
                "today": calendar.ist(now).date(),
            },
        )
        row = cursor.fetchone()
    issues = dict.fromkeys(("CRITICAL", "WARNING", "INFO"), 0)
    issues.update(row[7] or {})
    return Background(*row[:6], row[6] or 0, issues, row[8])


def workers_alive() -> int:
    return background_read().workers


def worker_check(workers: int) -> HealthCheck:
    if workers:
        return HealthCheck(
            "worker", OK, f"{plural(workers, 'worker')} beating", {"workers": workers}
        )
    return HealthCheck(
        "worker",
        CRITICAL,
        f"no worker heartbeat in the last {WORKER_HEARTBEAT_WITHIN} s: orders wait, "
        "nothing reaches the broker",
        {"workers": 0},
    )


# Each active Kite account with the ACTIVE LIVE strategies trading through it, and (id NULL)
# the ACTIVE LIVE strategies without an account: one statement, read on every admin page. The
# token is ciphertext: only whether there is one is read.
_SESSIONS = """
SELECT a.id, a.user_id, a.name, a.access_token <> '', a.token_expires_at,
       ARRAY(SELECT s.name FROM strategies s WHERE s.broker_account_id = a.id
             AND s.mode = %(live)s AND s.status = %(active)s ORDER BY s.name)
FROM broker_accounts a WHERE a.is_active
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL,
       ARRAY(SELECT s.name FROM strategies s WHERE s.broker_account_id IS NULL
             AND s.mode = %(live)s AND s.status = %(active)s ORDER BY s.name)
"""


def broker_account_checks(now: datetime | None = None) -> list[HealthCheck]:
    """One check per active account: critical when ACTIVE LIVE strategies trade through an
    account that has no session now; and one for ACTIVE LIVE strategies with no account."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_SESSIONS, {"live": StrategyMode.LIVE, "active": StrategyStatus.ACTIVE})
        rows = cursor.fetchall()
    checks = []
    for pk, user_id, name, has_token, expires_at, live in rows:
        if pk is None:
            if live:
                summary = f"LIVE without a broker account: {', '.join(live)}"
                checks.append(HealthCheck("kite accounts", CRITICAL, summary, {"strategies": live}))
            continue
        account = SimpleNamespace(
            user_id=user_id,
            is_active=True,
            access_token="held" if has_token else "",
            token_expires_at=expires_at,
        )
        state = session_state(account, now=now)
        details = {
            "user_id": user_id,
            "name": name,
            "session": state,
            "expires_at": expires_at,
            "live_strategies": live,
        }
        if state == "connected":
            until = expires_at.astimezone(IST).strftime("%d %b %H:%M IST")
            summary, level = f"session until {until}", OK
        else:
            summary = session_problem(account, now=now)
            level = CRITICAL if live else WARNING
            if live:
                summary += f"; {plural(len(live), 'LIVE strategy', 'LIVE strategies')} refused"
        checks.append(HealthCheck(f"kite {user_id}", level, summary, details))
    return checks


def market_data_check(now: datetime | None = None) -> HealthCheck:
    """The marks of LIVE strategies' open positions: stale ones (older than
    OMS_MARK_STALE_SECONDS in the session) are prices the exits and checks treat as unknown."""
    marks = marks_health(now=now)
    details = {
        "newest_age_seconds": marks.newest_age,
        "stale": marks.stale,
        "open_positions": marks.open_positions,
    }
    if not marks.open_positions:
        return HealthCheck("market data", OK, "no open LIVE position to mark", details)
    age = "no mark yet" if marks.newest_age is None else f"newest mark {marks.newest_age:.0f} s old"
    if marks.stale:
        return HealthCheck(
            "market data",
            CRITICAL,
            f"{marks.stale} of {plural(marks.open_positions, 'LIVE position')} on a stale mark "
            f"({age}): "
            "stop-loss / take-profit exits wait for a fresh price; is market_feed running?",
            details,
        )
    return HealthCheck(
        "market data", OK, f"{plural(marks.open_positions, 'LIVE position')}, {age}", details
    )


PENDING_WITHIN = 60  # seconds an order may wait for its submission job before it is news


def orders_check(now: datetime | None = None) -> HealthCheck:
    """Orders waiting on us or on the broker: PENDING ones not sent for a minute (no worker
    takes the jobs), and those in flight the sweep has not settled (orders.selectors)."""
    now = now or timezone.now()
    flight = orders_in_flight_health(now=now)
    waiting = Order.objects.filter(
        status=OrderStatus.PENDING, created_at__lt=now - timedelta(seconds=PENDING_WITHIN)
    ).count()
    details = {
        "pending_unsent": waiting,
        "in_flight": flight.in_flight,
        "unattended": flight.unattended,
        "stuck": flight.stuck,
    }
    problems = []
    if waiting:
        problems.append(f"{waiting} PENDING for over {PENDING_WITHIN} s (not sent)")
    if flight.stuck:
        problems.append(f"{flight.stuck} stuck in flight: each needs a person (Issues)")
    if waiting or flight.stuck:
        return HealthCheck("orders", CRITICAL, "; ".join(problems), details)
    if flight.unattended:
        summary = f"{flight.unattended} in flight with no job: the sweep resumes them"
        return HealthCheck("orders", WARNING, summary, details)
    return HealthCheck("orders", OK, f"{flight.in_flight} in flight, none waiting", details)


def webhooks_check() -> HealthCheck:
    """Strategies' webhook endpoints: a paused one hears nothing until someone resumes it (it
    then continues from where it stopped); a failing one is being retried."""
    hooks = webhooks_health()
    details = {
        "endpoints": hooks.endpoints,
        "paused": hooks.paused,
        "failing": hooks.failing,
        "undelivered": hooks.undelivered,
    }
    if hooks.paused or hooks.failing:
        summary = (
            f"{hooks.paused} paused, {hooks.failing} failing, {hooks.undelivered} events "
            "not delivered yet (admin: Webhook deliveries)"
        )
        return HealthCheck("webhooks", WARNING, summary, details)
    return HealthCheck("webhooks", OK, f"{plural(hooks.endpoints, 'endpoint')} delivering", details)


def holidays_check(now: datetime | None = None) -> HealthCheck:
    holidays = calendar.holidays_health(calendar.ist(now).date() if now else None)
    details = {"missing_years": list(holidays.missing_years)}
    return HealthCheck("holidays", OK if holidays.ok else WARNING, holidays.message, details)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def reconciliation_check(background: Background, now: datetime | None = None) -> HealthCheck:
    """The latest whole-book reconciliation run and the open issues: critical when a CRITICAL
    issue is open, or when the market is open and the last run is older than two of its
    intervals (OMS_RECONCILE_INTERVAL_MINUTES) and a minute (no worker runs it, or it fails);
    a warning for open WARNING issues, or for no run yet."""
    now = now or timezone.now()
    started_at, finished_at = background.run_started_at, background.run_finished_at
    market_open = (
        not background.staff_holiday
        and calendar.is_exchange_trading_day(calendar.ist(now).date())
        and calendar.in_session(now)
    )
    interval = settings.OMS_RECONCILE_INTERVAL_MINUTES
    due_within = timedelta(minutes=2 * interval + 1)
    issues = background.issues
    details = {
        "last_run_at": finished_at,
        "last_run_seconds": (
            round((finished_at - started_at).total_seconds(), 1) if finished_at else None
        ),
        "differences": background.run_differences,
        "open_issues": issues,
        "interval_minutes": interval,
    }
    open_issues = ", ".join(f"{n} {severity}" for severity, n in issues.items() if n)
    open_issues = f"open issues: {open_issues}" if open_issues else "no open issue"
    if finished_at is None:
        # Not overdue: a new install, or the first minutes of a worker, has not reached its
        # first run yet (a worker that is down is the worker card's; a run that fails, the
        # jobs card's).
        last, overdue = f"not run yet (every {interval} min while the market is open)", False
    else:
        age = (now - finished_at).total_seconds()
        took = details["last_run_seconds"]
        last = (
            f"last run {calendar.ist(finished_at):%H:%M} IST ({_ago(age)}, "
            f"took {took:.1f} s, {plural(background.run_differences, 'difference')})"
        )
        overdue = now - finished_at > due_within and market_open
    summary = f"{last}; {open_issues}"
    if overdue:
        summary = f"{last}: overdue (due every {interval} min while the market is open); " + (
            open_issues
        )
    if overdue or issues["CRITICAL"]:
        return HealthCheck("reconciliation", CRITICAL, summary, details)
    if issues["WARNING"] or finished_at is None:
        return HealthCheck("reconciliation", WARNING, summary, details)
    return HealthCheck("reconciliation", OK, summary, details)


def jobs_check(background: Background) -> HealthCheck:
    """Failed jobs in the last OMS_HEALTH_JOBS_FAILED_HOURS (a warning: each is a task that
    gave up), jobs running for over OMS_HEALTH_JOB_RUNNING_SECONDS or waiting to start for
    over OMS_HEALTH_JOB_WAITING_SECONDS (critical: the work is not being done)."""
    limits = {
        "failed": settings.OMS_HEALTH_JOBS_FAILED_HOURS,
        "doing": settings.OMS_HEALTH_JOB_RUNNING_SECONDS,
        "waiting": settings.OMS_HEALTH_JOB_WAITING_SECONDS,
    }
    failed, stalled, waiting = (
        background.jobs_failed,
        background.jobs_stalled,
        background.jobs_waiting,
    )
    details = {"failed": failed, "stalled": stalled, "waiting": waiting}
    problems = []
    if stalled:
        problems.append(f"{stalled} running for over {limits['doing']} s (stalled)")
    if waiting:
        problems.append(f"{waiting} waiting to start for over {limits['waiting']} s")
    if failed:
        problems.append(f"{failed} failed in the last {limits['failed']} h")
    if stalled or waiting:
        return HealthCheck("jobs", CRITICAL, "; ".join(problems), details)
    if failed:
        return HealthCheck("jobs", WARNING, "; ".join(problems), details)
    return HealthCheck("jobs", OK, f"none failed in {limits['failed']} h, none stalled", details)


def system_health(now: datetime | None = None) -> SystemHealth:
    """Every part's state now. Raises the database's error when it cannot be read."""
    background = background_read(now)
    workers = background.workers
    checks = [
        worker_check(workers),
        orders_check(now),
        jobs_check(background),
        reconciliation_check(background, now),
        *broker_account_checks(now),
        market_data_check(now),
        webhooks_check(),
        holidays_check(now),
    ]
    return SystemHealth(checks=checks, workers=workers)


def live_trading() -> bool:
    return Strategy.objects.filter(mode=StrategyMode.LIVE).exists()
