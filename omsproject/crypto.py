"""Secrets at rest: a broker account's API key, API secret and the day's access token.

Fernet (AES-128-CBC with an HMAC-SHA256, from the ``cryptography`` package) under the keys in
OMS_SECRETS_KEYS, newest first: values are written with the first key and read with any of them
(MultiFernet), so a key is rotated by putting the new one first and re-saving the rows
(``manage.py broker_account rotate``). Without OMS_SECRETS_KEYS (development, tests) the key is
derived from DJANGO_SECRET_KEY; production (OMS_PRODUCTION) refuses to start without it.

EncryptedTextField stores the Fernet token in a text column and hands the plain text to Python:
a database dump, a replica or a stray ``SELECT *`` shows ciphertext only.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        digest = hashlib.sha256(f"oms-secrets:{secret_key}".encode()).digest()
        keys = (base64.urlsafe_b64encode(digest).decode(),)
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured(
            f"OMS_SECRETS_KEYS: each key must be 32 url-safe base64-encoded bytes ({error}); "
            "make one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`"
        ) from error


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.OMS_SECRETS_KEYS), settings.SECRET_KEY)


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


class SecretUnreadable(Exception):
    """A stored secret no key opens: OMS_SECRETS_KEYS lost the key it was written with."""


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted with OMS_SECRETS_KEYS: put the key it was "
            "written with back in the list (newest first), or enter the secret again"
        ) from error


def rotated(token: str) -> str:
    """``token`` written again under the newest key."""
    return fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text value stored encrypted (Fernet); the empty string is stored as is (no secret)."""

    description = "Text encrypted at rest"

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)
