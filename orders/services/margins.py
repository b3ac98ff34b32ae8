"""The pre-trade margin check of a LIVE order, just before it is sent (orders.services.submission).

Kite is asked what the order would block (POST /margins/orders, one call per order: each order
is sent by its own job, so there is no burst to group), and that is compared with the
account's available funds, which come from a cache shared by every process (the
``broker_margin_cache`` row of the account and segment):

- the funds (Kite's ``equity.net``) are fetched at most once every OMS_MARGIN_CACHE_SECONDS
  per account, by one process at a time (a session advisory lock per account: the others wait
  and read what it fetched), so a burst of 20 orders makes 1 GET /user/margins and 20
  POST /margins/orders;
- every order let through reserves its margin on the row, under the row's lock, so the orders
  of a burst are measured against what is left, not each against the whole balance. A fresh
  fetch starts the reservations again from zero: Kite's figure then counts the orders it
  already has (an order let through but not yet at Kite at that moment is missed until the
  next fetch; Kite's own check still refuses it if the money is not there).

A refusal moves the order to REJECTED (code ``margin_insufficient``, with the figures). When
Kite's margin API fails, OMS_MARGIN_API_ERROR_POLICY decides: ``refuse`` (the default: the
order is rejected, code ``margin_check_failed``) or ``allow`` (sent, with a NOTE event saying
the check could not run). Paper orders are not checked: the paper broker answers no margin
questions (it is not a MarginBroker). OMS_MARGIN_CHECK_ENABLED=false turns the check off.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from omsproject import money_format
from orders.brokers import BrokerError, BrokerRateLimited, BrokerSessionExpired
from orders.brokers.funds import MarginBroker
from orders.enums import EventKind, EventSource, OrderStatus
from orders.models import Order
from orders.services.events import order_locked, order_note, order_transition
from risk.models import MarginCache

logger = logging.getLogger("oms.orders.margins")

INSUFFICIENT = "margin_insufficient"
CHECK_FAILED = "margin_check_failed"
COMMODITY_EXCHANGES = frozenset({"MCX", "NCO"})


@dataclass(frozen=True)
class MarginVerdict:
    """Whether the order may be sent; ``details`` carry the figures, for the order's event."""

    send: bool
    reason: str = ""
    details: dict = field(default_factory=dict)


NOT_CHECKED = MarginVerdict(send=True, reason="no margin check")


def segment_of(order: Order) -> str:
    """Kite's funds segment for the order: commodity for MCX, equity for the rest (F&O too)."""
    return "commodity" if order.exchange in COMMODITY_EXCHANGES else "equity"


def order_margin_verdict(broker, order: Order) -> MarginVerdict:
    """Decide whether ``order`` (SUBMITTED, not yet sent) may go to ``broker``, and record it.

    Call with no transaction open: it talks to the broker. Guarantees: an order refused here
    is REJECTED (one TRANSITION event whose details carry the code and the figures) and must
    not be sent; one let through has its margin reserved on the account's cache row; a margin
    API error never lets an order through unless OMS_MARGIN_API_ERROR_POLICY is "allow", and
    then a NOTE event says the check did not run. No session or a full rate is not an API
    error: it is raised, and the job asks again when the broker says.
    """
    if not settings.OMS_MARGIN_CHECK_ENABLED or not isinstance(broker, MarginBroker):
        return NOT_CHECKED
    if (order.metadata or {}).get(BASKET_CHECKED):
        return MarginVerdict(send=True, reason="margin checked with its basket")
    segment = segment_of(order)
    account = broker.margin_account_key()
    try:
        margins = broker.order_margins([order])
        if len(margins) != 1:
            raise BrokerError(f"Kite answered {len(margins)} margins for one order")
        # An order that reduces a position may need nothing (Kite counts the positions).
        required = max(margins[0].total, Decimal("0.00"))
        _funds_refresh(broker, account, segment)
    except (BrokerSessionExpired, BrokerRateLimited):
        # Nothing was asked: no session yet, or the user's rate is full. The submission job
        # waits and asks again (the broker's own retry_in), as it would for the order itself.
        raise
    except BrokerError as error:
        return _api_error(order, error, segment)
    verdict = _reserve(account, segment, required)
    if verdict.send:
        logger.info(
            "margin check passed: order %s needs %s of the %s left in %s",
            order.pk,
            money_format.amount(required),
            money_format.amount(Decimal(verdict.details["available"])),
            segment,
        )
        return verdict
    _refuse(order, verdict)
    return verdict


def _reserve(account: str, segment: str, required: Decimal) -> MarginVerdict:
    """Measure ``required`` against what is left of the cached funds and, if it fits, set it
    aside: one short transaction holding the account's row."""
    with transaction.atomic():
        row = MarginCache.objects.select_for_update().get(account_key=account, segment=segment)
        remaining = row.remaining
        details = {
            "code": INSUFFICIENT,
            "required": str(required),
            "available": str(remaining),
            "segment": segment,
        }
        if required > remaining:
            return MarginVerdict(
                send=False,
                reason=(
                    f"margin insufficient: required {money_format.amount(required)}, "
                    f"available {money_format.amount(remaining)} ({segment})"
                ),
                details=details,
            )
        row.reserved += required
        row.save(update_fields=["reserved"])
    return MarginVerdict(
        send=True, reason="margin check passed", details={**details, "code": "margin_ok"}
    )


def _funds_refresh(broker, account: str, segment: str) -> None:
    """Make the account's cached funds at most OMS_MARGIN_CACHE_SECONDS old: fetched by one
    process at a time, the others waiting for it and then reading its figure."""
    if _fresh(account, segment):
        return
    with _account_lock(f"margins:{account}:{segment}"):
        if _fresh(account, segment):
            return
        funds = broker.available_funds(segment)  # no transaction open: a broker call
        MarginCache.objects.update_or_create(
            account_key=account,
            segment=segment,
            defaults={"available": funds.net, "reserved": Decimal(0), "fetched_at": timezone.now()},
        )
        logger.info(
            "available funds of %s (%s): %s", account, segment, money_format.amount(funds.net)
        )


def _fresh(account: str, segment: str) -> bool:
    oldest = timezone.now() - timedelta(seconds=settings.OMS_MARGIN_CACHE_SECONDS)
    return MarginCache.objects.filter(
        account_key=account, segment=segment, fetched_at__gte=oldest
    ).exists()


@contextmanager
def _account_lock(key: str):
    """A session advisory lock (not a transaction): held across the funds call so that one
    process fetches while the others wait, released whatever happens."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def _api_error(order: Order, error: BrokerError, segment: str) -> MarginVerdict:
    details = {"code": CHECK_FAILED, "error": str(error), "segment": segment}
    policy = settings.OMS_MARGIN_API_ERROR_POLICY
    logger.warning("margin check of order %s could not run (%s): %s", order.pk, policy, error)
    if policy == "allow":
        verdict = MarginVerdict(
            send=True,
            reason=f"margin check could not run, sent anyway (policy allow): {error}",
            details={**details, "policy": "allow"},
        )
        with transaction.atomic():
            order_note(
                order_locked(order.pk),
                kind=EventKind.NOTE,
                source=EventSource.SYSTEM,
                reason=verdict.reason,
                details=verdict.details,
            )
        return verdict
    verdict = MarginVerdict(
        send=False,
        reason=f"margin check could not run, not sent (policy refuse): {error}",
        details={**details, "policy": "refuse"},
    )
    _refuse(order, verdict)
    return verdict


def _refuse(order: Order, verdict: MarginVerdict) -> None:
    with transaction.atomic():
        locked = order_locked(order.pk)
        order_transition(
            locked,
            target=OrderStatus.REJECTED,
            source=EventSource.SYSTEM,
            reason=verdict.reason,
            details=verdict.details,
        )


BASKET_CHECKED = "margin_checked_with_basket"


def basket_margin_verdict(broker, orders: list[Order]) -> MarginVerdict:
    """The margin of a basket's legs together (one POST /margins/basket: hedges offset) against
    the account's available funds, before any leg is written. Call with no transaction open.

    Nothing is reserved here: the basket may still be refused by the pre-trade checks. Once it
    is written, ``basket_margin_reserve`` sets the figure aside, and its legs are not checked
    one by one at submission (``order_margin_verdict``; a hedged leg alone may need more than
    the basket). An API error refuses the basket unless OMS_MARGIN_API_ERROR_POLICY is allow.
    """
    if not settings.OMS_MARGIN_CHECK_ENABLED or not isinstance(broker, MarginBroker):
        return NOT_CHECKED
    segment = segment_of(orders[0])
    account = broker.margin_account_key()
    try:
        required = max(broker.basket_margins(orders).final, Decimal("0.00"))
        _funds_refresh(broker, account, segment)
    except (BrokerSessionExpired, BrokerRateLimited):
        raise
    except BrokerError as error:
        allowed = settings.OMS_MARGIN_API_ERROR_POLICY == "allow"
        return MarginVerdict(
            send=allowed,
            reason=f"basket margin check could not run: {error}",
            details={"code": CHECK_FAILED, "error": str(error), "segment": segment},
        )
    remaining = MarginCache.objects.get(account_key=account, segment=segment).remaining
    details = {
        "code": "margin_ok" if required <= remaining else INSUFFICIENT,
        "required": str(required),
        "available": str(remaining),
        "segment": segment,
        "account": account,
    }
    if required > remaining:
        reason = (
            f"basket margin insufficient: required {money_format.amount(required)}, "
            f"available {money_format.amount(remaining)} ({segment})"
        )
        return MarginVerdict(send=False, reason=reason, details=details)
    return MarginVerdict(send=True, reason="basket margin check passed", details=details)


def basket_margin_reserve(verdict: MarginVerdict) -> None:
    """Set a written basket's margin aside on the account's cached funds (it was measured by
    ``basket_margin_verdict``; the orders after it are measured against what is left)."""
    details = verdict.details
    if "account" not in details:
        return
    with transaction.atomic():
        row = MarginCache.objects.select_for_update().get(
            account_key=details["account"], segment=details["segment"]
        )
        row.reserved += Decimal(details["required"])
        row.save(update_fields=["reserved"])
