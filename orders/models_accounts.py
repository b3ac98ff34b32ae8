"""The Kite logins a desk trades through (``broker_accounts``): one row per Kite user id."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from omsproject.crypto import EncryptedTextField
from omsproject.pg import updated_at_trigger


class BrokerAccount(models.Model):
    """One Kite Connect login a desk trades through: a Kite user id with its app's API key.

    The API key, the API secret and the day's access token are encrypted at rest
    (omsproject.crypto) and never shown back. The access token comes from the morning login
    (the admin's "Connect Kite", orders.services.broker_accounts) and is valid until 06:00 IST
    the next day (``token_expires_at``). Rate limits, margins and reconciliation are per
    account: Kite counts them per user id.
    """

    name = models.CharField(max_length=64, unique=True)
    user_id = models.CharField(max_length=32, unique=True, help_text="Kite user id, e.g. AB1234")
    api_key = EncryptedTextField()
    api_secret = EncryptedTextField()
    access_token = EncryptedTextField(blank=True, default="")
    token_expires_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    connected_by = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    # The IST day staff were last told this account has no session (banner + e-mail once a day).
    session_alerted_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "broker_accounts"
        ordering = ["name"]
        permissions = [("connect_brokeraccount", "Can log in to Kite for the account")]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="broker_account_name_not_blank"),
            models.CheckConstraint(
                condition=Q(user_id__regex=r"^[A-Z0-9]{2,32}$"),
                name="broker_account_user_id_format",
            ),
            models.CheckConstraint(
                condition=Q(access_token="") | Q(token_expires_at__isnull=False),
                name="broker_account_token_has_expiry",
            ),
        ]
        triggers = [updated_at_trigger()]

    def __str__(self) -> str:
        return f"{self.name} ({self.user_id})"
