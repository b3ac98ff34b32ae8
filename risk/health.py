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

from django.db import connection
from django.utils import timezone

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


def workers_alive() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM procrastinate_workers "
            "WHERE last_heartbeat > now() - make_interval(secs => %s)",
            [WORKER_HEARTBEAT_WITHIN],
        )
        return cursor.fetchone()[0]


def worker_check(workers: int) -> HealthCheck:
    if workers:
        return HealthCheck("worker", OK, f"{workers} worker(s) beating", {"workers": workers})
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
                summary += f"; {len(live)} LIVE strategy(ies) refused"
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
            f"{marks.stale} of {marks.open_positions} LIVE position(s) on a stale mark ({age}): "
            "stop-loss / take-profit exits wait for a fresh price; is market_feed running?",
            details,
        )
    return HealthCheck(
        "market data", OK, f"{marks.open_positions} LIVE position(s), {age}", details
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
    return HealthCheck("webhooks", OK, f"{hooks.endpoints} endpoint(s) delivering", details)


def holidays_check(now: datetime | None = None) -> HealthCheck:
    holidays = calendar.holidays_health(calendar.ist(now).date() if now else None)
    details = {"missing_years": list(holidays.missing_years)}
    return HealthCheck("holidays", OK if holidays.ok else WARNING, holidays.message, details)


def system_health(now: datetime | None = None) -> SystemHealth:
    """Every part's state now. Raises the database's error when it cannot be read."""
    workers = workers_alive()
    checks = [
        worker_check(workers),
        orders_check(now),
        *broker_account_checks(now),
        market_data_check(now),
        webhooks_check(),
        holidays_check(now),
    ]
    return SystemHealth(checks=checks, workers=workers)


def live_trading() -> bool:
    return Strategy.objects.filter(mode=StrategyMode.LIVE).exists()
