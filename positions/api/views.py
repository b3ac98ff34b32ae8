"""The positions API: the calling strategy's positions, open by default."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from omsproject.api.authentication import strategy_of
from omsproject.api.pagination import OpenedAtPagination
from omsproject.api.permissions import StrategyOrMonitoringStaff
from omsproject.api.schema import OBJECT_ERRORS, READ_ERRORS
from positions.api.filters import PositionFilter
from positions.api.serializers import PositionSerializer
from positions.selectors import positions_of


@extend_schema_view(
    list=extend_schema(
        summary="List positions",
        description="Open positions by default; ``?status=closed`` or ``?status=all``.",
        responses={200: PositionSerializer(many=True), **READ_ERRORS, 404: OBJECT_ERRORS[404]},
    ),
    retrieve=extend_schema(
        summary="One position", responses={200: PositionSerializer, **OBJECT_ERRORS}
    ),
)
class PositionViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [StrategyOrMonitoringStaff]
    serializer_class = PositionSerializer
    filterset_class = PositionFilter
    pagination_class = OpenedAtPagination
    lookup_value_regex = r"[0-9]{1,18}"

    def get_queryset(self):
        status = self.request.query_params.get("status", "open")
        if self.action == "retrieve":
            status = "all"
        return positions_of(strategy=strategy_of(self.request), status=status)
