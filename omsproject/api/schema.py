"""OpenAPI (drf-spectacular) pieces shared by the API's views: the Bearer scheme, error answers."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.CharField())


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API."""

    error = ErrorDetailSerializer()


class ViolationSerializer(serializers.Serializer):
    code = serializers.CharField()
    field = serializers.CharField()
    message = serializers.CharField()
    value = serializers.CharField(
        required=False, help_text="A limit check's measured value, a decimal string."
    )
    limit = serializers.CharField(
        required=False, help_text="A limit check's limit, a decimal string."
    )


class RefusalDetailSerializer(ErrorDetailSerializer):
    violations = ViolationSerializer(many=True)
    order_id = serializers.IntegerField(help_text="The order, recorded as REJECTED.")
    kill_switch = serializers.ChoiceField(
        choices=["REDUCING", "HALTED"], required=False, help_text="On a 423 only."
    )


class RefusalSerializer(serializers.Serializer):
    """A placement refused by the pre-trade checks (422), or by the kill switch (423)."""

    error = RefusalDetailSerializer()


class StrategyKeyScheme(OpenApiAuthenticationExtension):
    target_class = "omsproject.api.authentication.StrategyKeyAuthentication"
    name = "strategyKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "oms_<prefix>_<secret>",
            "description": "A strategy's API key (admin, or `manage.py strategy_key create`).",
        }


def _error(description: str, *examples: OpenApiExample) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description, examples=list(examples))


UNAUTHENTICATED = _error(
    "No key, or a key that is unknown or revoked.",
    OpenApiExample(
        "Unknown key",
        value={
            "error": {
                "code": "authentication_failed",
                "message": "API key: unknown or revoked",
                "fields": {},
            }
        },
        response_only=True,
        status_codes=["401"],
    ),
)
FORBIDDEN = _error("Not allowed: staff writing, or a call only a strategy (or staff) may make.")
NOT_FOUND = _error("No such row for this strategy (another strategy's rows do not exist for it).")
THROTTLED = _error("Over the key's request rate; the Retry-After header says when to retry.")
INVALID = _error(
    "Invalid input; ``fields`` names each bad field and its rule.",
    OpenApiExample(
        "Missing price",
        value={
            "error": {
                "code": "invalid_order",
                "message": "price missing: a LIMIT order needs a price",
                "fields": {"price": "price missing: a LIMIT order needs a price"},
            }
        },
        response_only=True,
        status_codes=["400"],
    ),
)
CONFLICT = _error("The request clashes with the order's state or an earlier request.")
MODIFY_REFUSED = _error(
    "Refused by the pre-trade checks (e.g. the strategy is paused or inactive); the order is "
    "left as it was."
)
LOCKED = _error("The kill switch refuses the order; ``kill_switch`` gives its state.")
REFUSED = OpenApiResponse(
    RefusalSerializer,
    description="Refused by the pre-trade checks, every violation listed; the order is kept "
    "as REJECTED (``order_id``).",
    examples=[
        OpenApiExample(
            "Strategy inactive",
            value={
                "error": {
                    "code": "risk_rejected",
                    "message": "strategy Momentum is INACTIVE: it may not trade",
                    "fields": {"strategy": "strategy Momentum is INACTIVE: it may not trade"},
                    "violations": [
                        {
                            "code": "strategy_inactive",
                            "field": "strategy",
                            "message": "strategy Momentum is INACTIVE: it may not trade",
                        }
                    ],
                    "order_id": 42,
                }
            },
            response_only=True,
            status_codes=["422"],
        )
    ],
)
KILL_SWITCH = OpenApiResponse(
    RefusalSerializer,
    description="Refused by the kill switch (HALTED, or REDUCING and the order would not reduce "
    "a position); the order is kept as REJECTED.",
    examples=[
        OpenApiExample(
            "Halted",
            value={
                "error": {
                    "code": "kill_switch_engaged",
                    "message": "kill switch is HALTED: no order passes",
                    "fields": {"kill_switch": "kill switch is HALTED: no order passes"},
                    "violations": [
                        {
                            "code": "kill_switch_halted",
                            "field": "kill_switch",
                            "message": "kill switch is HALTED: no order passes",
                        }
                    ],
                    "order_id": 43,
                    "kill_switch": "HALTED",
                }
            },
            response_only=True,
            status_codes=["423"],
        )
    ],
)

UNAVAILABLE = _error(
    "The database is unavailable (restart, failover): send the same request again after the "
    "Retry-After header's seconds."
)
TOO_LARGE = _error(
    "The body is over the server's upload limit (DATA_UPLOAD_MAX_MEMORY_SIZE); nothing was read."
)
# Answered by the web server (gunicorn) before the OMS sees the request, as its plain page.
URI_TOO_LONG = OpenApiResponse(
    description="The request line (path and query) is over the web server's limit (gunicorn: "
    "4094 bytes): nothing was read. Send fewer or shorter query parameters."
)
# Every authenticated endpoint may answer these.
READ_ERRORS = {
    400: INVALID,
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    414: URI_TOO_LONG,
    429: THROTTLED,
    503: UNAVAILABLE,
}
OBJECT_ERRORS = {**READ_ERRORS, 404: NOT_FOUND}
