"""Strategy API keys: created, revoked and checked here, by the admin, the command and the API.

A key is ``oms_<prefix>_<secret>``: ``prefix`` (8 hex characters) names it in lists, ``secret``
(43 URL-safe characters, 256 random bits) is the credential. Only the SHA-256 of the whole key
is stored, so a leaked table gives no working key; the plain key is returned once, at creation.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from omsproject.rows import column_count, from_row, select_columns
from orders.models import Strategy, StrategyApiKey
from risk.audit import ChangeReasonMissing, admin_change_record, change_reason_clean
from risk.models import AdminAction

logger = logging.getLogger("oms.api_keys")

KEY_PREFIX = "oms_"
# last_used_at is a hint for people, not an audit trail: one UPDATE a minute per key at most.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyError(Exception):
    """A key request that cannot be done; the message names the rule."""


def api_key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def api_key_create(*, strategy: Strategy, name: str, actor: str) -> tuple[StrategyApiKey, str]:
    """Make a new key for ``strategy``; returns the row and the plain key (never stored).

    Two live keys of a strategy may not share a name (ApiKeyError).
    """
    name = (name or "").strip()
    if not name:
        raise ApiKeyError("name '': a key needs a name saying what it is for")
    prefix = secrets.token_hex(4)
    plaintext = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    try:
        with transaction.atomic():
            row = StrategyApiKey.objects.create(
                strategy=strategy,
                name=name,
                prefix=prefix,
                key_hash=api_key_hash(plaintext),
                created_by=actor,
            )
    except IntegrityError:
        if StrategyApiKey.objects.filter(
            strategy=strategy, name=name, revoked_at__isnull=True
        ).exists():
            raise ApiKeyError(
                f"name {name!r}: strategy {strategy.name} already has a live key of that name"
            ) from None
        raise
    logger.info("api key %s created for %s by %s", prefix, strategy.name, actor)
    return row, plaintext


def api_key_revoke(
    key: StrategyApiKey, *, actor: str, reason: str = "", user=None
) -> StrategyApiKey:
    """Revoke a key: it fails authentication from the next request on. Revoking twice is a no-op.

    Revoked by a person in the back office (``user``), the reason is required (ApiKeyError)
    and the revocation is recorded in the admin's change log in the same transaction.
    """
    if user is not None:
        try:
            reason = change_reason_clean(reason)
        except ChangeReasonMissing as error:
            raise ApiKeyError(str(error)) from None
    with transaction.atomic():
        locked = StrategyApiKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked_at is None:
            locked.revoked_at = timezone.now()
            locked.revoked_by = actor
            locked.save(update_fields=["revoked_at", "revoked_by"])
            if user is not None:
                admin_change_record(
                    user=user,
                    target=locked,
                    action=AdminAction.KEY_REVOKE,
                    reason=reason,
                    changes={
                        "revoked_at": [None, locked.revoked_at.isoformat()],
                        "revoked_by": ["", actor],
                    },
                )
            logger.info(
                "api key %s of strategy %s revoked by %s", locked.prefix, key.strategy_id, actor
            )
    return locked


_KEY_AND_STRATEGY = """
    FROM strategy_api_keys AS api_key
    JOIN strategies AS strategy ON strategy.id = api_key.strategy_id
    WHERE api_key.key_hash = %(key_hash)s AND api_key.revoked_at IS NULL
"""
_KEY_COLUMNS = ", ".join(
    select_columns("api_key", StrategyApiKey) + select_columns("strategy", Strategy)
)
_AUTHENTICATE = f"SELECT {_KEY_COLUMNS}, NULL, NULL {_KEY_AND_STRATEGY}"
# The same, counting the request in the key's throttle window in the same statement.
_AUTHENTICATE_AND_COUNT = f"""
WITH api_key AS (SELECT api_key.id AS key_id, {_KEY_COLUMNS} {_KEY_AND_STRATEGY}),
counted AS (
    SELECT counted.* FROM api_key, oms_count_request(
        (%(bucket)s || key_id)::varchar, %(seconds)s::integer
    ) AS counted
)
SELECT api_key.*, counted.* FROM api_key LEFT JOIN counted ON true
"""  # noqa: S608 - column names and constant fragments only


def api_key_authenticate(
    plaintext: str, *, count_in: tuple[str, int] | None = None
) -> StrategyApiKey | None:
    """The live key (with its strategy) that ``plaintext`` is, or None.

    ``count_in``: (bucket prefix, window seconds) of the API's per-key throttle: the request is
    counted in the same statement, and ``key.window_count`` holds (hits, seconds left).
    Touches ``last_used_at`` at most once a minute, so authentication stays one statement.
    """
    if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 200:
        return None
    params = {"key_hash": api_key_hash(plaintext)}
    sql = _AUTHENTICATE
    if count_in is not None:
        sql = _AUTHENTICATE_AND_COUNT
        params.update(bucket=count_in[0], seconds=count_in[1])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    if count_in is not None:
        row = row[1:]  # the key's id, for the bucket
    key_width = column_count(StrategyApiKey)
    key = from_row(StrategyApiKey, row[:key_width])
    key.strategy = from_row(Strategy, row[key_width : key_width + column_count(Strategy)])
    hits, seconds_left = row[-2:]
    key.window_count = None if hits is None else (hits, seconds_left)
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        StrategyApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


def api_keys_of(strategy: Strategy, *, include_revoked: bool = True):
    """A strategy's keys, newest first (a selector, kept beside the services it mirrors)."""
    keys = StrategyApiKey.objects.filter(strategy=strategy).order_by("-created_at", "-id")
    return keys if include_revoked else keys.filter(revoked_at__isnull=True)
