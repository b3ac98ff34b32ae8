"""Today's global daily_stats row (strategy NULL), dated by the IST calendar."""

from zoneinfo import ZoneInfo

from django.db import migrations
from django.utils import timezone

IST = ZoneInfo("Asia/Kolkata")
FIGURES = (
    "total_orders",
    "filled_orders",
    "cancelled_orders",
    "rejected_orders",
    "total_trades",
    "winning_trades",
    "losing_trades",
    "gross_pnl",
    "total_charges",
    "net_pnl",
    "turnover",
    "max_drawdown",
)


def create_today_stats(apps, schema_editor):
    DailyStats = apps.get_model("positions", "DailyStats")
    DailyStats.objects.using(schema_editor.connection.alias).get_or_create(
        date=timezone.localdate(timezone=IST), strategy=None
    )


def remove_today_stats(apps, schema_editor):
    """Remove today's global row only while it is still empty: recorded figures are kept."""
    DailyStats = apps.get_model("positions", "DailyStats")
    DailyStats.objects.using(schema_editor.connection.alias).filter(
        date=timezone.localdate(timezone=IST), strategy=None, **dict.fromkeys(FIGURES, 0)
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("positions", "0002_views_functions"),
    ]

    operations = [
        migrations.RunPython(create_today_stats, remove_today_stats),
    ]
