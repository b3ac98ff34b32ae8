"""A position as the strategy sees it; money as decimal strings (see omsproject.api.fields)."""

from omsproject.api.fields import AveragePriceField, FieldsOnceSerializer, MoneyField
from positions.models import Position


class PositionSerializer(FieldsOnceSerializer):
    """Signed quantity (long > 0, short < 0); a closed position has quantity 0 and closed_at."""

    average_price = AveragePriceField(read_only=True)
    realized_pnl = MoneyField(read_only=True, max_digits=18)
    unrealized_pnl = MoneyField(read_only=True, max_digits=18)
    total_pnl = MoneyField(read_only=True, max_digits=18)
    last_price = MoneyField(read_only=True, allow_null=True)
    stop_loss = MoneyField(read_only=True, allow_null=True)
    take_profit = MoneyField(read_only=True, allow_null=True)

    class Meta:
        model = Position
        fields = (
            "id",
            "strategy",
            "symbol",
            "exchange",
            "product",
            "quantity",
            "average_price",
            "realized_pnl",
            "unrealized_pnl",
            "total_pnl",
            "last_price",
            "last_price_at",
            "stop_loss",
            "take_profit",
            "opened_at",
            "closed_at",
            "updated_at",
        )
        read_only_fields = fields
