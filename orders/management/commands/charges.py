"""manage.py charges: one leg's Zerodha charges, as a table or as JSON.

python manage.py charges --segment EQ --product MIS --side BUY --quantity 10 --price 2450
"""

import json
from datetime import date, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.charges import (
    EXCHANGES,
    PRODUCTS,
    SEGMENTS,
    SIDES,
    Charges,
    ChargesInputError,
    calculate_zerodha_charges,
    india_today,
)

LABELS = {
    "brokerage": "Brokerage",
    "stt": "STT",
    "exchange_charges": "Exchange charges",
    "sebi_charges": "SEBI fee",
    "stamp_duty": "Stamp duty",
    "gst": "GST",
    "total": "Total",
}


class Command(BaseCommand):
    help = "Print the Zerodha charges of one executed order (one leg), per charges.md."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--side", required=True, type=str.upper, choices=SIDES)
        parser.add_argument("--product", required=True, type=str.upper, choices=PRODUCTS)
        parser.add_argument("--segment", default="EQ", type=str.upper, choices=SEGMENTS)
        parser.add_argument(
            "--exchange",
            default="NSE",
            type=str.upper,
            choices=EXCHANGES,
            help="NFO and BFO are NSE's and BSE's F&O venues (segment FUT or OPT).",
        )
        parser.add_argument("--quantity", required=True, help="Whole number, at least 1.")
        parser.add_argument(
            "--price", required=True, help="Decimal, e.g. 2450.50 (the premium for options)."
        )
        parser.add_argument(
            "--date", help="Trade date YYYY-MM-DD, picks the rate card (default: today in IST)."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object of decimal strings."
        )

    def handle(self, *args, **options) -> None:
        quantity = _parse_quantity(options["quantity"])
        on = _parse_date(options["date"]) if options["date"] else india_today()
        try:
            charges = calculate_zerodha_charges(
                options["side"],
                quantity,
                str(options["price"]),
                options["product"],
                exchange=options["exchange"],
                segment=options["segment"],
                on=on,
            )
        except ChargesInputError as exc:
            if exc.argument == "on":  # the library's `on` is this command's --date
                raise CommandError(f"date {on.isoformat()}: {exc.rule}") from exc
            raise CommandError(str(exc)) from exc

        if options["json"]:
            self.stdout.write(json.dumps(_as_strings(charges)))
            return
        leg = (
            f"{options['side']} {quantity} @ {options['price']}  "
            f"{options['exchange']} {options['segment']} {options['product']}  on {on.isoformat()}"
        )
        self.stdout.write(leg)
        self.stdout.write(_table(charges))


def _parse_quantity(raw: object) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise CommandError(f"quantity {str(raw)!r}: must be a whole number such as 10") from None


def _parse_date(raw: object) -> date:
    try:
        return datetime.strptime(str(raw), "%Y-%m-%d").date()
    except ValueError:
        raise CommandError(
            f"date {str(raw)!r}: must be a calendar date written YYYY-MM-DD"
        ) from None


def _as_strings(charges: Charges) -> dict[str, str]:
    return {name: f"{amount:.2f}" for name, amount in charges.as_dict().items()}


def _table(charges: Charges) -> str:
    amounts = _as_strings(charges)
    label_width = max(len(label) for label in LABELS.values())
    amount_width = max(len(amount) for amount in amounts.values())
    rows = [
        f"{LABELS[name]:<{label_width}}  {amount:>{amount_width}}"
        for name, amount in amounts.items()
    ]
    rows.insert(-1, "-" * (label_width + 2 + amount_width))
    return "\n".join(rows)
