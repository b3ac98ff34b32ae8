"""Safe by default: a global risk_limits row, so that a fresh install refuses a fat-fingered
order (an outside review filled a 100,000-share TCS MARKET order, Rs 38.9 Cr, on a fresh
install). Created only when no global row exists; a desk's own row is never overwritten.

The values are frozen here, as a migration's must be; README "Safe defaults" explains them and
risk staff change them in the admin (Risk limits, the global row).
"""

from decimal import Decimal

from django.db import migrations

SHIPPED = {
    # A LIMIT price more than 5 % from the last price is refused: NSE's common circuit band,
    # wide enough for a working day in a stock, narrow enough to catch a misplaced digit.
    "price_band_percent": Decimal("5.00"),
    "max_order_quantity": 1000,
    "max_order_value": Decimal("1000000.00"),  # Rs 10 lakh
    "max_open_orders": 25,
    "orders_per_second": 10,  # SEBI: an unregistered algo stays under 10 orders a second
    "daily_loss_limit": Decimal("50000.00"),  # Rs 50,000: beyond it only reducing orders pass
}


def create_global_limits(apps, schema_editor):
    RiskLimit = apps.get_model("risk", "RiskLimit")
    if RiskLimit.objects.filter(strategy__isnull=True).exists():
        return  # the desk set its own: keep it
    RiskLimit.objects.create(strategy=None, **SHIPPED)


def delete_global_limits(apps, schema_editor):
    """Deletes the global row only if it is still exactly the one shipped here."""
    RiskLimit = apps.get_model("risk", "RiskLimit")
    RiskLimit.objects.filter(
        strategy__isnull=True,
        max_position_quantity__isnull=True,
        max_strategy_exposure__isnull=True,
        max_total_exposure__isnull=True,
        drawdown_limit__isnull=True,
        rejection_burst__isnull=True,
        rejection_window_seconds=60,
        halt_on_critical_issue=True,
        **SHIPPED,
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("risk", "0007_kill_switch_order")]

    operations = [migrations.RunPython(create_global_limits, delete_global_limits)]
