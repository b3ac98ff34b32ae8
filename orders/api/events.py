"""The calling strategy's event feed: GET /api/v1/events/ (cursor, page, long poll)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from omsproject.api.authentication import strategy_of
from omsproject.api.exceptions import ApiError
from omsproject.api.permissions import StrategyOnly
from omsproject.api.schema import READ_ERRORS
from orders.api.serializers import EventPageSerializer, EventQuerySerializer
from orders.event_feed import MAX_PAGE_SIZE, MAX_WAIT, TooManyWaiters, events_wait

FEED_DESCRIPTION = f"""
The calling strategy's own events, oldest first, after the cursor `after` (the last `id` it
has seen; 0 for everything): its orders' status changes (`order.status`), fills with their
charges (`order.fill`), modifications (`order.modified`), refused changes (`order.refused`),
kill switch changes that apply to it (`kill_switch`, global or its own) and changes of its own
status (`strategy.status`). Each carries the order's `client_order_id` where there is one.

`id` is stable and increasing, and given in commit order: once a call has returned events up
to `id` N, no event with an id of N or less ever appears later. Replaying from the last id
handled after a restart therefore misses nothing and repeats nothing. Feed `next_after` back
as `after`.

`page_size` 1..{MAX_PAGE_SIZE} (default 100). `wait` 0..{MAX_WAIT} seconds: when nothing is newer
than `after`, the call waits until an event of the strategy commits (answered within
milliseconds, through PostgreSQL LISTEN/NOTIFY, no polling) or the wait ends (200, no events,
the same cursor). Limits: a waiting call holds one server thread and one database connection
for at most `wait` seconds (or `OMS_EVENTS_MAX_WAIT`, when the server sets it lower); at most
`OMS_EVENTS_MAX_WAITERS` calls wait at once per server process, and one more is answered 429
with `Retry-After` (a call that finds events never waits, and is never refused for this).
"""


class EventFeedView(APIView):
    """The calling strategy's events after a cursor; optionally waits for the next one."""

    permission_classes = [StrategyOnly]

    @extend_schema(
        summary="The strategy's events (cursor, long poll)",
        description=FEED_DESCRIPTION,
        parameters=[EventQuerySerializer],
        responses={200: EventPageSerializer, **READ_ERRORS},
        examples=[
            OpenApiExample(
                "A fill",
                value={
                    "events": [
                        {
                            "id": 42,
                            "kind": "order.fill",
                            "order_id": 7,
                            "client_order_id": "mom-2026-001",
                            "created_at": "2026-12-02T04:01:02.345678Z",
                            "data": {
                                "trade_id": "T-1",
                                "side": "BUY",
                                "quantity": 10,
                                "price": "2450.50",
                                "filled_quantity": 10,
                                "order_quantity": 10,
                                "charges": {"brokerage": "0.00", "total": "6.85"},
                            },
                        }
                    ],
                    "next_after": 42,
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        query = EventQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after = query.validated_data["after"]
        try:
            events = events_wait(
                strategy_id=strategy_of(request).pk,
                after=after,
                limit=query.validated_data["page_size"],
                wait=query.validated_data["wait"],
            )
        except TooManyWaiters as busy:
            raise ApiError(
                status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                code="too_many_waiters",
                message=(
                    f"wait: this server holds its limit of waiting calls; retry in "
                    f"{busy.retry_after} s, or call without wait"
                ),
                fields={"wait": "too many waiting calls on this server now"},
                headers={"Retry-After": str(busy.retry_after)},
                retry_after=busy.retry_after,
            ) from None
        page = {"events": events, "next_after": events[-1].seq if events else after}
        return Response(EventPageSerializer(page).data)
