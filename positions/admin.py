from django.contrib import admin

from positions.models import DailyStats, MarketPrice, Position, ReconciliationIssue


@admin.register(Position)
class PositionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "strategy",
        "symbol",
        "exchange",
        "product",
        "quantity",
        "average_price",
        "last_price",
        "realized_pnl",
        "unrealized_pnl",
        "opened_at",
        "closed_at",
    )
    list_filter = ("product", "exchange", "strategy")
    list_select_related = ("strategy",)
    search_fields = ("symbol",)
    readonly_fields = [f.name for f in Position._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReconciliationIssue)
class ReconciliationIssueAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "severity",
        "issue_type",
        "strategy",
        "symbol",
        "internal_quantity",
        "broker_quantity",
        "resolved",
        "detected_at",
    )
    list_filter = ("resolved", "severity", "issue_type")
    list_select_related = ("strategy",)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DailyStats)
class DailyStatsAdmin(admin.ModelAdmin):
    list_display = (
        "date",
        "strategy",
        "total_orders",
        "total_trades",
        "gross_pnl",
        "total_charges",
        "net_pnl",
        "turnover",
    )
    list_filter = ("strategy",)
    list_select_related = ("strategy",)
    date_hierarchy = "date"

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MarketPrice)
class MarketPriceAdmin(admin.ModelAdmin):
    list_display = ("symbol", "exchange", "last_price", "updated_at")
    search_fields = ("symbol",)
