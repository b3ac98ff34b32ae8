"""The daily statistics and market prices back office: read-only lists (computed by
``manage.py compute_daily_stats``; prices written by market data and commands)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from omsproject.admin_tools import ReadOnlyAdmin, inr, pnl, quantity
from positions.models import DailyStats, MarketPrice


@admin.register(DailyStats)
class DailyStatsAdmin(ReadOnlyAdmin):
    """Computed by ``manage.py compute_daily_stats``: read-only."""

    list_display = (
        "date",
        "scope",
        "orders",
        "trades",
        "gross",
        "charges",
        "net",
        "turnover_display",
        "drawdown",
    )
    list_filter = ("strategy",)
    list_select_related = ("strategy",)
    date_hierarchy = "date"

    @admin.display(description="strategy", ordering="strategy__name")
    def scope(self, stats):
        return stats.strategy or format_html("<strong>{}</strong>", "All strategies")

    @admin.display(description="orders (filled / cancelled / rejected)")
    def orders(self, stats):
        return format_html(
            '{}<br><small class="quiet">{} / {} / {}</small>',
            quantity(stats.total_orders),
            quantity(stats.filled_orders),
            quantity(stats.cancelled_orders),
            quantity(stats.rejected_orders),
        )

    @admin.display(description="trades (won / lost)")
    def trades(self, stats):
        return format_html(
            '{}<br><small class="quiet">{} / {}</small>',
            quantity(stats.total_trades),
            quantity(stats.winning_trades),
            quantity(stats.losing_trades),
        )

    @admin.display(description="gross PnL", ordering="gross_pnl")
    def gross(self, stats):
        return pnl(stats.gross_pnl)

    @admin.display(description="charges", ordering="total_charges")
    def charges(self, stats):
        return inr(stats.total_charges)

    @admin.display(description="net PnL", ordering="net_pnl")
    def net(self, stats):
        return pnl(stats.net_pnl)

    @admin.display(description="turnover", ordering="turnover")
    def turnover_display(self, stats):
        return inr(stats.turnover)

    @admin.display(description="max drawdown", ordering="max_drawdown")
    def drawdown(self, stats):
        return inr(stats.max_drawdown)


@admin.register(MarketPrice)
class MarketPriceAdmin(ReadOnlyAdmin):
    """Shared last prices (market data, commands): read-only here. A paper strategy's own
    posted prices are in strategy_prices, never here."""

    list_display = ("symbol", "exchange", "last_price", "updated_at")
    list_filter = ("exchange",)
    search_fields = ("^symbol",)
    ordering = ("symbol", "exchange")
