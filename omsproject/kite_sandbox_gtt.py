"""The Kite sandbox's GTTs (``/gtt/triggers``): single and two-leg (OCO) triggers held per
account, checked against the sandbox's prices whenever they move; a trigger that is hit places
its leg as a LIMIT order of the account (``result.order_result.order_id``), the other leg of
an OCO going with it, as Kite does. Mixed into SandboxExchange (its lock, orders and prices).
Stdlib only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from omsproject.kite_sandbox_records import Account, Instrument, KiteError, input_error

GTT_TYPES = ("single", "two-leg")


class SandboxGtts:
    """GTT book of the sandbox; SandboxExchange provides ``_lock``, ``_timestamp``,
    ``instrument``, ``prices`` and ``order_place``."""

    def _gtt_book(self) -> dict[int, dict[str, Any]]:
        if not hasattr(self, "_gtts"):
            self._gtts: dict[int, dict[str, Any]] = {}
        return self._gtts

    def gtt_place(self, account: Account, form: Mapping[str, str]) -> int:
        with self._lock:
            entry = self._gtt_entry(account, form)
            book = self._gtt_book()
            entry["id"] = 100000 + len(book) + 1
            book[entry["id"]] = entry
            return entry["id"]

    def gtt_modify(self, account: Account, trigger_id: str, form: Mapping[str, str]) -> int:
        with self._lock:
            current = self._gtt(account, trigger_id)
            if current["status"] != "active":
                raise input_error(f"GTT {trigger_id} is {current['status']}: cannot be modified")
            entry = self._gtt_entry(account, form)
            current.update(
                {k: entry[k] for k in ("type", "condition", "orders", "updated_at")},
            )
            return current["id"]

    def gtt_delete(self, account: Account, trigger_id: str) -> int:
        with self._lock:
            current = self._gtt(account, trigger_id)
            if current["status"] != "active":
                raise input_error(f"GTT {trigger_id} is {current['status']}: cannot be deleted")
            current["status"], current["updated_at"] = "deleted", self._timestamp()
            return current["id"]

    def gtt_list(self, account: Account) -> list[dict[str, Any]]:
        with self._lock:
            return [
                _public(g) for g in self._gtt_book().values() if g["user_id"] == account.user_id
            ]

    def gtt_get(self, account: Account, trigger_id: str) -> dict[str, Any]:
        with self._lock:
            return _public(self._gtt(account, trigger_id))

    def _gtt(self, account: Account, trigger_id: str) -> dict[str, Any]:
        entry = self._gtt_book().get(int(trigger_id)) if trigger_id.isdigit() else None
        if entry is None or entry["user_id"] != account.user_id:
            raise KiteError(404, "InputException", f"GTT {trigger_id}: not found")
        return entry

    def _gtt_entry(self, account: Account, form: Mapping[str, str]) -> dict[str, Any]:
        kind = form.get("type") or ""
        if kind not in GTT_TYPES:
            raise input_error(f"type {kind}: must be single or two-leg")
        try:
            condition = json.loads(form.get("condition") or "")
            orders = json.loads(form.get("orders") or "")
        except ValueError:
            raise input_error("condition, orders: must be JSON") from None
        instrument = self.instrument(
            f"{condition.get('exchange')}:{condition.get('tradingsymbol')}"
        )
        values = [Decimal(str(v)) for v in condition.get("trigger_values") or ()]
        if len(values) != (2 if kind == "two-leg" else 1) or len(orders) != len(values):
            raise input_error("trigger_values, orders: one per leg (two for a two-leg GTT)")
        if kind == "two-leg" and not values[0] < values[1]:
            raise input_error("trigger_values: the lower trigger first")
        now = self._timestamp()
        return {
            "user_id": account.user_id,
            "parent_trigger": None,
            "type": kind,
            "created_at": now,
            "updated_at": now,
            "expires_at": None,
            "status": "active",
            "condition": {
                "exchange": instrument.exchange,
                "tradingsymbol": instrument.symbol,
                "instrument_token": instrument.token,
                "trigger_values": [float(v) for v in values],
                "last_price": condition.get("last_price"),
            },
            "orders": [{**leg, "result": None} for leg in orders],
            "meta": {},
            "_account": account,
        }

    def _gtts_trigger(self, instrument: Instrument) -> None:
        """Fire the active GTTs on ``instrument`` that its price reaches (under the lock)."""
        price = self.prices[instrument.key]
        for entry in list(self._gtt_book().values()):
            condition = entry["condition"]
            if entry["status"] != "active" or (
                f"{condition['exchange']}:{condition['tradingsymbol']}" != instrument.key
            ):
                continue
            values = [Decimal(str(v)) for v in condition["trigger_values"]]
            if entry["type"] == "two-leg":
                leg = 0 if price <= values[0] else 1 if price >= values[1] else None
            else:
                below = Decimal(str(condition.get("last_price") or 0)) > values[0]
                leg = 0 if (price <= values[0] if below else price >= values[0]) else None
            if leg is not None:
                self._gtt_fire(entry, leg, price)

    def _gtt_fire(self, entry: dict[str, Any], leg: int, price: Decimal) -> None:
        order = entry["orders"][leg]
        form = {
            "exchange": entry["condition"]["exchange"],
            "tradingsymbol": entry["condition"]["tradingsymbol"],
            "transaction_type": order["transaction_type"],
            "quantity": str(order["quantity"]),
            "price": str(order["price"]),
            "order_type": "LIMIT",
            "product": order["product"],
            "validity": "DAY",
        }
        entry["status"], entry["updated_at"] = "triggered", self._timestamp()
        try:
            order_id, result = self.order_place(entry["_account"], "regular", form), "success"
            reason = ""
        except KiteError as error:
            order_id, result, reason = "", "failed", error.message
        order["result"] = {
            "account_id": entry["user_id"],
            **form,
            "meta": json.dumps({"gtt": entry["id"]}),
            "timestamp": entry["updated_at"],
            "triggered_at": float(price),
            "order_result": {"status": result, "order_id": order_id, "rejection_reason": reason},
        }


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    """A GTT as Kite's JSON shows it (a copy, without the sandbox's own keys)."""
    return json.loads(json.dumps({k: v for k, v in entry.items() if not k.startswith("_")}))
