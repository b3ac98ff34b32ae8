"""The GTTs at the broker against the broker-held protections we expect (positions.protection):
one finding per difference, in the shape of positions.reconciliation's, for its run to record.

- a protection we hold ACTIVE whose GTT the broker does not list as active (deleted, expired,
  disabled, rejected, or not listed): CRITICAL, the position's stop is not at the broker (the
  OMS monitor is the only line; protections_poll ends the protection and the next sync places
  a new GTT);
- its GTT active with other terms (quantity, triggers): WARNING (the next sync amends it, as
  the protection's terms are what the position wants);
- an active GTT of the account that no protection holds (placed by hand in Kite, or by a run
  that died before recording it): WARNING, a person decides (delete it at Kite, or leave it).
A GTT that triggered is no difference: protections_poll adopts its order.
"""

from __future__ import annotations

from orders.brokers.base import BrokerGtt
from positions.models import BrokerProtection, IssueType, ProtectionState, Severity
from positions.protection import gtt_request, held_terms
from positions.reconciliation_findings import BookRun, Finding


def compare_gtts(protections, gtts: dict[str, BrokerGtt], *, broker: str) -> list[Finding]:
    """The differences between our live protections (with their positions) and the broker's
    GTTs by trigger id."""
    findings = []
    ours = set()
    for protection in protections:
        if protection.state != ProtectionState.ACTIVE:
            continue  # on its way; its job settles it
        ours.add(protection.trigger_id)
        position = protection.position
        gtt = gtts.get(protection.trigger_id)
        common = {
            "strategy_id": protection.strategy_id,
            "symbol": position.symbol,
            "exchange": position.exchange,
            "product": position.product,
            "internal_quantity": protection.quantity,
        }
        if gtt is None or gtt.status not in ("active", "triggered"):
            status = gtt.status if gtt else "not listed"
            findings.append(
                Finding(
                    IssueType.GTT_MISMATCH,
                    Severity.CRITICAL,
                    f"GTT:{broker}:{protection.trigger_id}",
                    f"position {position.pk} ({position.symbol}): its stop is not held at the "
                    f"broker: GTT {protection.trigger_id} is {status}",
                    broker_quantity=gtt.quantity if gtt else None,
                    details={"broker": broker, "protection": protection.pk, "status": status},
                    **common,
                )
            )
            continue
        wanted = gtt_request(position, held_terms(protection))
        if gtt.status == "active" and (
            gtt.quantity != protection.quantity or gtt.trigger_values != wanted.trigger_values
        ):
            findings.append(
                Finding(
                    IssueType.GTT_MISMATCH,
                    Severity.WARNING,
                    f"GTT:{broker}:{protection.trigger_id}",
                    f"position {position.pk} ({position.symbol}): GTT {gtt.trigger_id} holds "
                    f"{gtt.quantity} at {_levels(gtt.trigger_values)}, we expect "
                    f"{protection.quantity} at {_levels(wanted.trigger_values)}",
                    broker_quantity=gtt.quantity,
                    details={"broker": broker, "protection": protection.pk},
                    **common,
                )
            )
    claimed = set(
        BrokerProtection.objects.exclude(trigger_id="").values_list("trigger_id", flat=True)
    )
    for gtt in gtts.values():
        if gtt.status == "active" and gtt.trigger_id not in ours | claimed:
            findings.append(
                Finding(
                    IssueType.GTT_MISMATCH,
                    Severity.WARNING,
                    f"GTT:{broker}:{gtt.trigger_id}",
                    f"GTT {gtt.trigger_id} ({gtt.symbol} {gtt.quantity} at "
                    f"{_levels(gtt.trigger_values)}) is active at the broker and no position's",
                    symbol=gtt.symbol,
                    exchange=gtt.exchange,
                    broker_quantity=gtt.quantity,
                    details={"broker": broker},
                )
            )
    return findings


def gtts_check(run: BookRun) -> list[Finding]:
    """The GTT differences of one book (its strategies share one broker account), reading the
    broker's GTTs once; none when none of them holds a protection or wants one. A broker that
    cannot be read raises BrokerError: the run logs it and leaves the book's open issues alone."""
    strategies = run.book.strategies
    protections = list(
        BrokerProtection.objects.filter(
            strategy__in=strategies, state__in=ProtectionState.live()
        ).select_related("position")
    )
    if not protections and all(s.protection_mode == "OMS" for s in strategies):
        return []
    gtts = {gtt.trigger_id: gtt for gtt in run.broker.gtts()}
    return compare_gtts(protections, gtts, broker=run.name)


def _levels(values) -> str:
    return " / ".join(str(value) for value in values)
