"""The orders API: thin views that parse, call one service or selector, and render.

Every queryset goes through ``strategy_of(request)``: a strategy's key reaches its own rows
only (another strategy's order is a 404, indistinguishable from one that does not exist).
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from omsproject.api.authentication import actor_of, strategy_of
from omsproject.api.exceptions import REPLAY_HEADER, order_refused
from omsproject.api.pagination import ExecutedAtPagination, NewestFirstPagination
from omsproject.api.permissions import StrategyOnly, StrategyOrMonitoringStaff
from omsproject.api.schema import (
    CONFLICT,
    INVALID,
    KILL_SWITCH,
    LOCKED,
    MODIFY_REFUSED,
    OBJECT_ERRORS,
    READ_ERRORS,
    REFUSED,
    TOO_LARGE,
)
from orders import jobs
from orders.api.filters import OrderFilter, TradeFilter
from orders.api.serializers import (
    OrderCancelSerializer,
    OrderDetailSerializer,
    OrderModifySerializer,
    OrderPlaceSerializer,
    OrderSerializer,
    PricesAcceptedSerializer,
    PricesSerializer,
    StrategyOverviewSerializer,
    StrategySteerSerializer,
    TradeSerializer,
)
from orders.domain import OrderRequest
from orders.enums import EventSource, OrderStatus, StrategyMode
from orders.models import Strategy
from orders.selectors import order_with_history, orders_of, strategy_overview, trades_of
from orders.services import order_cancel, order_modify, order_place, strategy_steer
from risk.health import live_trading, system_health

PLACE_EXAMPLES = [
    OpenApiExample(
        "Limit buy",
        value={
            "client_order_id": "momentum-2025-01-02-0001",
            "symbol": "RELIANCE",
            "exchange": "NSE",
            "side": "BUY",
            "quantity": 10,
            "order_type": "LIMIT",
            "price": "2450.50",
            "product": "MIS",
            "validity": "DAY",
            "stop_loss": "2420.00",
            "take_profit": "2500.00",
            "tag": "breakout",
        },
        request_only=True,
    ),
    OpenApiExample(
        "Market sell",
        value={
            "client_order_id": "momentum-2025-01-02-0002",
            "symbol": "INFY",
            "side": "SELL",
            "quantity": 5,
            "order_type": "MARKET",
            "product": "CNC",
        },
        request_only=True,
    ),
    OpenApiExample(
        "Stop-loss limit",
        value={
            "client_order_id": "momentum-2025-01-02-0003",
            "symbol": "TCS",
            "side": "SELL",
            "quantity": 2,
            "order_type": "SL",
            "price": "3880.00",
            "trigger_price": "3885.00",
            "product": "MIS",
        },
        request_only=True,
    ),
]
ORDER_EXAMPLE = OpenApiExample(
    "Order",
    value={
        "id": 42,
        "strategy": 1,
        "client_order_id": "momentum-2025-01-02-0001",
        "broker_order_id": None,
        "symbol": "RELIANCE",
        "exchange": "NSE",
        "segment": "EQ",
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "price": "2450.50",
        "trigger_price": None,
        "product": "MIS",
        "validity": "DAY",
        "status": "PENDING",
        "filled_quantity": 0,
        "remaining_quantity": 10,
        "average_price": None,
        "stop_loss": "2420.00",
        "take_profit": "2500.00",
        "tag": "breakout",
        "status_message": "",
        "modification_count": 0,
        "pending_modification": None,
        "created_at": "2025-01-02T09:20:01.123456+05:30",
        "updated_at": "2025-01-02T09:20:01.123456+05:30",
        "submitted_at": None,
        "acknowledged_at": None,
        "last_fill_at": None,
        "filled_at": None,
        "cancel_requested_at": None,
        "cancelled_at": None,
        "rejected_at": None,
        "expired_at": None,
    },
    response_only=True,
    status_codes=["201", "200"],
)


@extend_schema_view(
    list=extend_schema(
        summary="List orders",
        description="The strategy's orders, newest first, filtered; cursor-paginated.",
        responses={200: OrderSerializer(many=True), **READ_ERRORS, 404: OBJECT_ERRORS[404]},
    ),
    retrieve=extend_schema(
        summary="One order with its events and trades",
        responses={200: OrderDetailSerializer, **OBJECT_ERRORS},
    ),
)
class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Place, list, read, modify and cancel the calling strategy's orders."""

    permission_classes = [StrategyOrMonitoringStaff]
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    pagination_class = NewestFirstPagination
    lookup_value_regex = r"[0-9]{1,18}"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        strategy = strategy_of(self.request)
        if self.action == "retrieve":
            return order_with_history(strategy=strategy)
        return orders_of(strategy=strategy)

    def get_serializer_class(self):
        return OrderDetailSerializer if self.action == "retrieve" else OrderSerializer

    @extend_schema(
        summary="Place an order",
        description=(
            "Records the order and queues it for the broker; answers at once, before the "
            "broker has seen it (status PENDING). Idempotent on ``client_order_id``: the same "
            "request again answers 200 with the original order (header "
            f"``{REPLAY_HEADER}: true``); the same id with different content is a 409. An "
            "order refused by the pre-trade checks is kept as REJECTED and answered 422 (or 423 "
            "for the kill switch) with every violation; a replay of it gets that same refusal, "
            f"with ``{REPLAY_HEADER}: true``."
        ),
        request=OrderPlaceSerializer,
        parameters=[
            OpenApiParameter(
                REPLAY_HEADER,
                str,
                location=OpenApiParameter.HEADER,
                response=[200, 422, 423],
                description="``true`` when the answer is the original order of a replay.",
            )
        ],
        examples=[*PLACE_EXAMPLES, ORDER_EXAMPLE],
        responses={
            201: OpenApiResponse(OrderSerializer, description="Placed."),
            200: OpenApiResponse(OrderSerializer, description="A replay: the original order."),
            **READ_ERRORS,
            400: INVALID,
            409: CONFLICT,
            413: TOO_LARGE,
            422: REFUSED,
            423: KILL_SWITCH,
        },
    )
    def create(self, request):
        strategy = self._acting_strategy()
        serializer = OrderPlaceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order_request = OrderRequest(strategy_id=strategy.pk, **serializer.validated_data)
        result = order_place(order_request, actor=actor_of(request), source=EventSource.API)
        if result.status == OrderStatus.REJECTED and result.violations:
            raise order_refused(result)
        order = result.order or self.get_queryset().get(pk=result.order_id)
        headers = {REPLAY_HEADER: "true"} if result.replayed else {}
        return Response(
            OrderSerializer(order).data,
            status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
            headers=headers,
        )

    @extend_schema(
        summary="Modify a working order",
        description=(
            "Changes quantity, price, trigger price or type of an OPEN, TRIGGER_PENDING or "
            "PARTIALLY_FILLED order. The change is checked like a new order, recorded (a MODIFY "
            "event) and sent to the broker by a job: 202, with the change under "
            "``pending_modification`` until the broker accepts it."
        ),
        request=OrderModifySerializer,
        examples=[
            OpenApiExample("New price", value={"price": "2448.00"}, request_only=True),
            OpenApiExample("Reduce quantity", value={"quantity": 5}, request_only=True),
        ],
        responses={
            202: OpenApiResponse(OrderSerializer, description="Modification requested."),
            **OBJECT_ERRORS,
            409: CONFLICT,
            413: TOO_LARGE,
            422: MODIFY_REFUSED,
            423: LOCKED,
        },
    )
    def partial_update(self, request, pk=None):
        self._acting_strategy()
        order = self.get_object()
        serializer = OrderModifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order_modify(
            order.pk, actor=actor_of(request), source=EventSource.API, **serializer.validated_data
        )
        return Response(self._fresh(order.pk), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Cancel an order",
        description=(
            "An order not yet sent is cancelled at once (200, CANCELLED); one at the broker "
            "goes to CANCEL_PENDING while a job asks the broker (202). Fills that race the "
            "cancel still count."
        ),
        request=OrderCancelSerializer,
        responses={
            200: OpenApiResponse(OrderSerializer, description="Cancelled."),
            202: OpenApiResponse(OrderSerializer, description="Cancel sent to the broker."),
            **OBJECT_ERRORS,
            409: CONFLICT,
            413: TOO_LARGE,
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        self._acting_strategy()
        order = self.get_object()
        serializer = OrderCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = order_cancel(
            order.pk,
            actor=actor_of(request),
            source=EventSource.API,
            reason=serializer.validated_data["reason"],
        )
        done = order.status == OrderStatus.CANCELLED
        return Response(
            self._fresh(order.pk),
            status=status.HTTP_200_OK if done else status.HTTP_202_ACCEPTED,
        )

    def _acting_strategy(self) -> Strategy:
        strategy = strategy_of(self.request)
        if strategy is None:  # the permission lets staff read only; this is a second lock
            raise PermissionDenied("only a strategy's key may act on orders")
        return strategy

    def _fresh(self, order_id: int) -> dict:
        return OrderSerializer(orders_of(strategy=strategy_of(self.request)).get(pk=order_id)).data


@extend_schema_view(
    list=extend_schema(
        summary="List trades (fills)",
        description="The strategy's fills, latest first, with their charges; ``?order=<id>`` "
        "gives one order's fills.",
        responses={200: TradeSerializer(many=True), **READ_ERRORS, 404: OBJECT_ERRORS[404]},
    ),
    retrieve=extend_schema(summary="One trade", responses={200: TradeSerializer, **OBJECT_ERRORS}),
)
class TradeViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [StrategyOrMonitoringStaff]
    serializer_class = TradeSerializer
    filterset_class = TradeFilter
    pagination_class = ExecutedAtPagination
    lookup_value_regex = r"[0-9]{1,18}"

    def get_queryset(self):
        return trades_of(strategy=strategy_of(self.request))


class StrategyView(APIView):
    """The calling strategy: status, mode, limits, today's PnL and the kill switch in force."""

    permission_classes = [StrategyOrMonitoringStaff]

    @extend_schema(
        summary="The calling strategy",
        parameters=[
            OpenApiParameter(
                "strategy", int, description="Staff only: the strategy to show.", required=False
            )
        ],
        responses={200: StrategyOverviewSerializer, **OBJECT_ERRORS},
    )
    def get(self, request):
        strategy = strategy_of(request) or self._staff_choice(request)
        overview = strategy_overview(strategy=strategy)
        return Response(StrategyOverviewSerializer(overview).data)

    @extend_schema(
        summary="Pause or resume the calling strategy",
        description=(
            "A strategy pauses itself (`PAUSED`) or lifts a pause it made itself (`ACTIVE`), "
            "with a reason; the change is a `strategy.status` event in its feed. A pause staff "
            "set, an INACTIVE or ERROR status are never lifted this way (409, nothing changed); "
            "nor is the kill switch, which this call does not touch (the answer's "
            "`kill_switch` says which one is in force). Asking for the status the strategy "
            "already has changes nothing. Staff change statuses in the admin, or with "
            "`manage.py strategy`."
        ),
        request=StrategySteerSerializer,
        responses={200: StrategyOverviewSerializer, 409: CONFLICT, **READ_ERRORS},
        examples=[
            OpenApiExample(
                "Pause",
                value={"status": "PAUSED", "reason": "feed gap on NIFTY; resuming when back"},
                request_only=True,
            )
        ],
    )
    def patch(self, request):
        strategy = strategy_of(request)
        if strategy is None:
            raise PermissionDenied(StrategyOnly.message)
        change = StrategySteerSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        steered = strategy_steer(strategy, **change.validated_data, actor=actor_of(request))
        return Response(StrategyOverviewSerializer(strategy_overview(strategy=steered)).data)

    def _staff_choice(self, request) -> Strategy:
        raw = request.query_params.get("strategy", "")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # "²" is a digit too
            raise serializers.ValidationError(
                {"strategy": "strategy: staff must name one, as ?strategy=<id>"}
            )
        strategy = Strategy.objects.filter(pk=int(raw)).first()
        if strategy is None:
            raise NotFound(f"strategy {raw}: not found")
        return strategy


class PricesView(APIView):
    """Post last traded prices for the calling paper strategy's own book (PAPER only)."""

    permission_classes = [StrategyOnly]

    @extend_schema(
        summary="Post own last prices (paper trading)",
        description=(
            "Queues the prices as the calling strategy's own: from then on its pre-trade "
            "checks, paper fills and marks on those instruments use them instead of the shared "
            "market price. A job matches its working paper orders, marks its positions and "
            "checks its exits. No other strategy, and no LIVE one, ever sees them. Each price "
            "is of an instrument in the master, on its tick, and within "
            "OMS_PAPER_PRICE_BAND_PERCENT (20 %) of the shared market price when one is known "
            "(400 naming the field otherwise). Only a PAPER strategy's key may post prices "
            "(403 for a LIVE one)."
        ),
        request=PricesSerializer,
        examples=[
            OpenApiExample(
                "Two prices",
                value={
                    "prices": [
                        {"symbol": "RELIANCE", "exchange": "NSE", "price": "2451.05"},
                        {"symbol": "NIFTY25JANFUT", "exchange": "NFO", "price": "23510.00"},
                    ]
                },
                request_only=True,
            )
        ],
        responses={202: PricesAcceptedSerializer, **READ_ERRORS, 413: TOO_LARGE},
    )
    def post(self, request):
        strategy = strategy_of(request)
        if strategy.mode != StrategyMode.PAPER:
            raise PermissionDenied(
                f"strategy {strategy.name} is {strategy.mode}: only PAPER strategies feed prices"
            )
        serializer = PricesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticks = serializer.validated_data["prices"]
        jobs.defer_prices(
            [[tick["symbol"], tick["exchange"], str(tick["price"])] for tick in ticks],
            strategy_id=strategy.pk,
        )
        return Response({"accepted": len(ticks)}, status=status.HTTP_202_ACCEPTED)


HealthSerializer = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["ok", "degraded", "down"]),
        "database": serializers.ChoiceField(choices=["ok", "down"]),
        "worker": serializers.ChoiceField(choices=["ok", "down", "unknown"]),
        "workers": serializers.IntegerField(allow_null=True),
        "broker": serializers.ChoiceField(choices=["paper", "configured", "not_configured"]),
        "checks": inline_serializer(
            "HealthCheck",
            {
                "name": serializers.CharField(),
                "state": serializers.ChoiceField(choices=["ok", "warning", "critical"]),
                "summary": serializers.CharField(),
            },
            many=True,
        ),
        "time": serializers.DateTimeField(),
    },
)


class HealthView(APIView):
    """Liveness for load balancers and people: the database, then every part of
    ``risk.health.system_health`` (worker heartbeat, each Kite account's session, ...).

    503 only when the database is down (nothing works then). Any other part that is not ok
    makes the whole ``degraded``, still 200: orders are accepted and wait. ``broker`` sums the
    Kite accounts up: ``paper`` (no LIVE strategy), ``configured`` (every LIVE strategy's
    account has today's session) or ``not_configured``.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        summary="Health (no authentication)",
        responses={200: HealthSerializer, 503: HealthSerializer},
    )
    def get(self, request):
        body = {"status": "ok", "database": "ok", "worker": "unknown", "workers": None}
        try:
            health = system_health()
            live = live_trading()
        except Exception:  # any failure to reach the database is "down"
            body.update(status="down", database="down", broker="paper", checks=[])
            body["time"] = timezone.now()
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        accounts = [check for check in health.named("kite") if check.state == "critical"]
        body["workers"] = health.workers
        body["worker"] = "ok" if health.workers else "down"
        body["broker"] = "paper" if not live else ("not_configured" if accounts else "configured")
        body["status"] = health.status
        body["checks"] = [
            {"name": check.name, "state": check.state, "summary": check.summary}
            for check in health.checks
        ]
        body["time"] = timezone.now()
        return Response(body)
