"""Sliced orders through the API: POST /parents/ (an order above the freeze quantity, cut into
child orders), GET /parents/{id}/ (its state derived from its children, and the children),
POST /parents/{id}/cancel/ (cancels the working children). Thin: orders.services.slicing."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from omsproject.api.authentication import actor_of, strategy_of
from omsproject.api.exceptions import REPLAY_HEADER
from omsproject.api.fields import AveragePriceField, MoneyField
from omsproject.api.pagination import NewestFirstPagination
from omsproject.api.permissions import StrategyOrMonitoringStaff
from omsproject.api.schema import CONFLICT, INVALID, OBJECT_ERRORS, READ_ERRORS, TOO_LARGE
from orders.api.baskets import BASKET_REFUSED, basket_refused
from orders.api.serializers import OrderCancelSerializer, OrderPlaceSerializer, OrderSerializer
from orders.domain import OrderRequest
from orders.enums import OrderStatus, Variety
from orders.models import OrderParent
from orders.services.baskets import BasketRefused
from orders.services.slicing import parent_cancel, parent_place
from orders.varieties import parent_state


class ParentSerializer(serializers.ModelSerializer):
    """A sliced parent: what was asked, and its state as its children make it."""

    price = MoneyField(read_only=True, allow_null=True)
    trigger_price = MoneyField(read_only=True, allow_null=True)
    status = serializers.SerializerMethodField()
    filled_quantity = serializers.SerializerMethodField()
    average_price = serializers.SerializerMethodField()
    children = serializers.SerializerMethodField()

    class Meta:
        model = OrderParent
        fields = (
            "id",
            "client_order_id",
            "symbol",
            "exchange",
            "side",
            "quantity",
            "order_type",
            "price",
            "trigger_price",
            "product",
            "validity",
            "freeze_quantity",
            "status",
            "filled_quantity",
            "average_price",
            "cancel_requested_at",
            "created_at",
            "children",
        )
        read_only_fields = fields

    def _state(self, parent: OrderParent):
        return parent_state(parent.quantity, list(parent.children.all()))

    @extend_schema_field(serializers.ChoiceField(choices=OrderStatus.choices))
    def get_status(self, parent: OrderParent) -> str:
        return self._state(parent).status

    def get_filled_quantity(self, parent: OrderParent) -> int:
        return self._state(parent).filled_quantity

    @extend_schema_field(AveragePriceField(allow_null=True))
    def get_average_price(self, parent: OrderParent):
        average = self._state(parent).average_price
        return None if average is None else AveragePriceField().to_representation(average)

    @extend_schema_field(OrderSerializer(many=True))
    def get_children(self, parent: OrderParent) -> list[dict]:
        return OrderSerializer(sorted(parent.children.all(), key=lambda o: o.pk), many=True).data


@extend_schema_view(
    list=extend_schema(
        summary="List sliced orders",
        responses={200: ParentSerializer(many=True), **READ_ERRORS, 404: OBJECT_ERRORS[404]},
    ),
    retrieve=extend_schema(
        summary="One sliced order with its children",
        responses={200: ParentSerializer, **OBJECT_ERRORS},
    ),
)
class ParentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Place an order above the freeze quantity as child orders; read or cancel it."""

    permission_classes = [StrategyOrMonitoringStaff]
    serializer_class = ParentSerializer
    pagination_class = NewestFirstPagination
    lookup_value_regex = r"[0-9]{1,18}"
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        parents = OrderParent.objects.prefetch_related("children").order_by("-created_at", "-id")
        strategy = strategy_of(self.request)
        return parents if strategy is None else parents.filter(strategy=strategy)

    def _acting_strategy(self):
        strategy = strategy_of(self.request)
        if strategy is None:
            raise PermissionDenied("only a strategy's key may place or cancel orders")
        return strategy

    @extend_schema(
        summary="Place an order above the freeze quantity, sliced",
        description=(
            "The quantity is cut into child orders within the instrument's freeze quantity "
            "(whole lots, largest first), client ids ``<client_order_id>.<n>``, checked and "
            "written all together (422 ``basket_refused`` naming the child, nothing written) "
            "and each sent as its own broker order. A quantity within the freeze quantity is "
            "a 400 (``within_freeze_quantity``): place one order. Idempotent on "
            "``client_order_id``."
        ),
        request=OrderPlaceSerializer,
        responses={
            201: OpenApiResponse(ParentSerializer, description="Placed."),
            200: OpenApiResponse(ParentSerializer, description="A replay."),
            **READ_ERRORS,
            400: INVALID,
            404: OBJECT_ERRORS[404],
            409: CONFLICT,
            413: TOO_LARGE,
            422: BASKET_REFUSED,
        },
    )
    def create(self, request):
        strategy = self._acting_strategy()
        serializer = OrderPlaceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data["variety"] != Variety.REGULAR:
            raise serializers.ValidationError({"variety": "a sliced order is regular"})
        order_request = OrderRequest(strategy_id=strategy.pk, **serializer.validated_data)
        try:
            result = parent_place(order_request, actor=actor_of(request))
        except BasketRefused as error:
            raise basket_refused(error) from error
        parent = self.get_queryset().get(pk=result.parent.pk)
        return Response(
            ParentSerializer(parent).data,
            status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
            headers={REPLAY_HEADER: "true"} if result.replayed else {},
        )

    @extend_schema(
        summary="Cancel a sliced order's working children",
        request=OrderCancelSerializer,
        responses={202: ParentSerializer, **OBJECT_ERRORS, 409: CONFLICT, 413: TOO_LARGE},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        strategy = self._acting_strategy()
        parent = self.get_object()
        serializer = OrderCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        parent_cancel(
            parent.pk,
            actor=actor_of(request),
            reason=serializer.validated_data["reason"],
            strategy=strategy,
        )
        fresh = self.get_queryset().get(pk=parent.pk)
        return Response(ParentSerializer(fresh).data, status=status.HTTP_202_ACCEPTED)
