"""Endpoints brokers call: Kite's order postbacks, and the redirect of Kite's login.

A postback is a notification, not a report to apply: its checksum signs only the order id and
timestamp, so its status and figures could be anyone's. Once the checksum matches and the body
is well-formed, the view defers one job that asks Kite for the order's history and applies
that (orders.services.order_confirm_request), and answers 200 at once. It writes nothing else.
A postback for an order we do not know is acknowledged and logged.
Errors answer ``{"status": "error", "message": ...}``, the shape Kite's own API uses.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from omsproject.json_body import JsonBodyError, json_body_load
from orders.broker_sessions import IST
from orders.brokers.kite import order_update
from orders.brokers.postback import checksum_valid, figures_errors, postback_redacted
from orders.models import BrokerAccount
from orders.services import order_confirm_request
from orders.services.broker_accounts import (
    LoginRefused,
    broker_account_connect,
    login_state_read,
)

logger = logging.getLogger("oms.brokers.kite.postback")


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": "error", "message": message}, status=status)


@csrf_exempt
@require_POST
def kite_postback(request: HttpRequest) -> JsonResponse:
    try:
        body = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _error(413, f"body: must be at most {limit} bytes")
    try:
        # Money as Decimal from the first moment: no float ever holds a price.
        payload = json_body_load(body, parse_float=Decimal)
    except JsonBodyError as error:
        return _error(400, str(error))
    except ValueError:  # UnicodeDecodeError is one too
        return _error(400, "body: not JSON")
    if not isinstance(payload, dict):
        return _error(400, "body: a JSON object is expected")
    # Each Kite user's postbacks are signed with its own app's secret.
    try:
        account = BrokerAccount.objects.filter(user_id=str(payload.get("user_id") or "")).first()
    except (OperationalError, InterfaceError):
        return _database_unavailable()
    if account is None or not account.api_secret:
        logger.error(
            "Kite postback refused: no broker account for user_id %r", payload.get("user_id")
        )
        return _error(403, "checksum: cannot be verified (user_id: no broker account for it)")
    secret = account.api_secret
    if not checksum_valid(payload, secret):
        logger.warning(
            "Kite postback refused: bad or missing checksum",
            extra={"broker_order_id": str(payload.get("order_id"))},
        )
        return _error(403, "checksum: does not match order_id + order_timestamp")
    context = {"broker_order_id": payload["order_id"]}
    # What Kite said, for the record (it is not what the OMS applies): without the checksum.
    logger.info("Kite postback %s", postback_redacted(payload, secret), extra=context)
    if errors := figures_errors(payload):
        logger.error("Kite postback refused: %s", "; ".join(errors.values()), extra=context)
        return _error(400, "; ".join(errors.values()))
    try:
        update = order_update(payload)
    except (KeyError, TypeError, ValueError) as error:
        logger.error("Kite postback unreadable: %s", error, extra=context)
        return _error(400, f"postback: unreadable ({error})")
    try:
        order_confirm_request(update)
    except (OperationalError, InterfaceError) as error:
        # Nothing was deferred; Kite sends again on a 5xx, and the order poll catches up.
        logger.warning(
            "Kite postback not recorded, database unavailable: %s",
            (str(error).strip().splitlines() or [""])[0],
            extra=context,
        )
        return _database_unavailable()
    return JsonResponse({"status": "ok"})


def _database_unavailable() -> JsonResponse:
    """Nothing was recorded; Kite sends again on a 5xx, and the order poll catches up."""
    response = _error(503, "database unavailable: the order poll will catch up")
    response["Retry-After"] = "1"
    return response


@staff_member_required
@require_GET
def kite_login(request: HttpRequest) -> HttpResponseRedirect:
    """Kite's login sends the browser here (the Kite app's redirect URL) with a
    ``request_token`` and the ``state`` "Connect Kite" gave it: the account gets its day's
    session, and the person is back on the accounts page with what happened."""
    accounts = reverse("admin:orders_brokeraccount_changelist")
    actor = request.user.get_username()
    if request.GET.get("status") != "success":
        messages.error(request, "Kite login was not completed: no session was stored")
        return HttpResponseRedirect(accounts)
    try:
        if not request.user.has_perm("orders.connect_brokeraccount"):
            raise LoginRefused("you may not log in to Kite for an account")
        account_id = login_state_read(request.GET.get("state", ""), actor=actor)
        account = broker_account_connect(
            account_id, request_token=request.GET.get("request_token", ""), actor=actor
        )
    except (LoginRefused, BrokerAccount.DoesNotExist) as error:
        logger.warning("Kite login refused: %s", error)
        messages.error(request, f"Kite login refused: {error}")
        return HttpResponseRedirect(accounts)
    until = account.token_expires_at.astimezone(IST).strftime("%d %b %H:%M IST")
    LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=[account],
        action_flag=CHANGE,
        change_message=f"Connected to Kite: session until {until}",
        single_object=True,
    )
    messages.success(request, f"Kite account {account.user_id} connected: session until {until}")
    return HttpResponseRedirect(accounts)
