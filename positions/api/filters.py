"""Query filters of the positions list."""

import django_filters as filters

from omsproject.api.filters import IdFilter, UpperCaseFilter
from orders.enums import Exchange, Product
from positions.models import Position

POSITION_STATUSES = [("open", "Open"), ("closed", "Closed"), ("all", "All")]


class PositionFilter(filters.FilterSet):
    # Applied by the view's selector (default "open"); declared here to be validated and
    # documented with the other filters.
    status = filters.ChoiceFilter(
        choices=POSITION_STATUSES, method="keep", help_text="open (default), closed or all."
    )
    symbol = UpperCaseFilter(field_name="symbol")
    exchange = filters.ChoiceFilter(choices=Exchange.choices)
    product = filters.ChoiceFilter(choices=Product.choices)
    strategy = IdFilter(field_name="strategy_id", help_text="Staff: one strategy's positions.")

    class Meta:
        model = Position
        fields = ()

    def keep(self, queryset, name, value):
        return queryset
