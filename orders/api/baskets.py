"""The baskets API: several orders in one request, checked all together (POST /baskets/), and a
basket with its legs' states (GET /baskets/{id}/). Thin: parse, call orders.services.baskets."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from omsproject.api.authentication import actor_of, strategy_of
from omsproject.api.exceptions import REPLAY_HEADER, ApiError
from omsproject.api.pagination import NewestFirstPagination
from omsproject.api.permissions import StrategyOrMonitoringStaff
from omsproject.api.schema import (
    CONFLICT,
    INVALID,
    OBJECT_ERRORS,
    READ_ERRORS,
    TOO_LARGE,
    ErrorDetailSerializer,
    ViolationSerializer,
)
from orders.api.serializers import OrderPlaceSerializer, OrderSerializer
from orders.domain import CLIENT_ID_RE, OrderRequest, OrderRequestError
from orders.enums import EventSource
from orders.models import Basket
from orders.services.baskets import MAX_LEGS, BasketRefused, basket_place


class BasketPlaceSerializer(serializers.Serializer):
    """A basket: its own client id (idempotency) and its legs, each a normal order payload."""

    client_basket_id = serializers.RegexField(
        CLIENT_ID_RE,
        max_length=64,
        help_text="Your id for the basket, unique per strategy: sending it again replays.",
    )
    legs = OrderPlaceSerializer(many=True, allow_empty=False, max_length=MAX_LEGS)


class BasketSerializer(serializers.ModelSerializer):
    """A basket and its legs as they are now (each lives its own life after placement)."""

    legs = serializers.SerializerMethodField()
    margin_required = serializers.DecimalField(
        max_digits=18, decimal_places=2, read_only=True, allow_null=True, coerce_to_string=True
    )

    class Meta:
        model = Basket
        fields = ("id", "client_basket_id", "margin_required", "created_at", "legs")
        read_only_fields = fields

    @extend_schema_field(OrderSerializer(many=True))
    def get_legs(self, basket: Basket) -> list[dict]:
        return OrderSerializer(sorted(basket.orders.all(), key=lambda o: o.pk), many=True).data


class BasketRefusalDetailSerializer(ErrorDetailSerializer):
    leg = serializers.IntegerField(
        allow_null=True, help_text="The index of the leg refused (null: the basket, e.g. margin)."
    )
    violations = ViolationSerializer(many=True)


class BasketRefusalSerializer(serializers.Serializer):
    """A basket (or a sliced order) refused before anything was written."""

    error = BasketRefusalDetailSerializer()


BASKET_REFUSED = OpenApiResponse(
    BasketRefusalSerializer, description="A leg (or the basket's margin) refused: nothing written."
)


def basket_refused(error: BasketRefused) -> ApiError:
    return ApiError(
        status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        code=error.code,
        message=error.message,
        fields=error.fields,
        leg=error.leg,
        violations=[v.as_dict() for v in error.violations],
    )


@extend_schema_view(
    list=extend_schema(
        summary="List baskets",
        responses={200: BasketSerializer(many=True), **READ_ERRORS, 404: OBJECT_ERRORS[404]},
    ),
    retrieve=extend_schema(
        summary="One basket with its legs", responses={200: BasketSerializer, **OBJECT_ERRORS}
    ),
)
class BasketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Place several orders at once; read a basket and its legs."""

    permission_classes = [StrategyOrMonitoringStaff]
    serializer_class = BasketSerializer
    pagination_class = NewestFirstPagination
    lookup_value_regex = r"[0-9]{1,18}"
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        baskets = Basket.objects.prefetch_related("orders").order_by("-created_at", "-id")
        strategy = strategy_of(self.request)
        return baskets if strategy is None else baskets.filter(strategy=strategy)

    @extend_schema(
        summary="Place a basket of orders",
        description=(
            "Every leg passes the pre-trade checks (and, for a LIVE strategy, the basket's "
            "margin at Kite, hedges offsetting) or nothing is written: 422 ``basket_refused`` "
            "with ``leg`` (its index), ``fields`` (``legs.<i>.<field>``) and ``violations``. "
            "Accepted legs are each queued for the broker and then live their own lives. "
            f"Idempotent on ``client_basket_id`` (200 and ``{REPLAY_HEADER}: true`` on a replay)."
        ),
        request=BasketPlaceSerializer,
        responses={
            201: OpenApiResponse(BasketSerializer, description="Placed."),
            200: OpenApiResponse(BasketSerializer, description="A replay: the first basket."),
            **READ_ERRORS,
            400: INVALID,
            404: OBJECT_ERRORS[404],
            409: CONFLICT,
            413: TOO_LARGE,
            422: BASKET_REFUSED,
        },
    )
    def create(self, request):
        strategy = strategy_of(request)
        if strategy is None:
            raise PermissionDenied("only a strategy's key may place baskets")
        serializer = BasketPlaceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        legs = []
        for index, leg in enumerate(data["legs"]):
            try:
                legs.append(OrderRequest(strategy_id=strategy.pk, **leg))
            except OrderRequestError as error:
                fields = {f"legs.{index}.{name}": rule for name, rule in error.errors.items()}
                raise ApiError(
                    status_code=status.HTTP_400_BAD_REQUEST,
                    code="invalid_order",
                    message="; ".join(f"legs.{index}: {rule}" for rule in error.errors.values()),
                    fields=fields,
                    leg=index,
                ) from error
        try:
            result = basket_place(
                strategy_id=strategy.pk,
                client_basket_id=data["client_basket_id"],
                legs=legs,
                actor=actor_of(request),
                source=EventSource.API,
            )
        except BasketRefused as error:
            raise basket_refused(error) from error
        basket = self.get_queryset().get(pk=result.basket.pk)
        return Response(
            BasketSerializer(basket).data,
            status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
            headers={REPLAY_HEADER: "true"} if result.replayed else {},
        )
