"""Risk controls: the kill switch's append-only event log (its current state is the last event)."""

from django.db import models
from django.db.models import Q

from omsproject.pg import append_only_triggers, choices_check
from orders.models import Strategy


class KillSwitchState(models.TextChoices):
    ACTIVE = "ACTIVE", "Active (trading allowed)"
    REDUCING = "REDUCING", "Reducing (only orders that shrink a position)"
    HALTED = "HALTED", "Halted (nothing passes)"


class KillSwitchScope(models.TextChoices):
    GLOBAL = "GLOBAL", "Global"
    STRATEGY = "STRATEGY", "Strategy"


class ActorType(models.TextChoices):
    PERSON = "PERSON", "Person"
    RULE = "RULE", "Automatic rule"


class KillSwitchEvent(models.Model):
    """One change of the kill switch, by a person or a named automatic rule, with its reason."""

    state = models.CharField(max_length=8, choices=KillSwitchState.choices)
    scope = models.CharField(max_length=8, choices=KillSwitchScope.choices)
    strategy = models.ForeignKey(
        Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="kill_switch_events"
    )
    reason = models.TextField()
    actor = models.CharField(max_length=150)
    actor_type = models.CharField(max_length=6, choices=ActorType.choices, default=ActorType.PERSON)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "kill_switch_events"
        ordering = ["-created_at", "-id"]
        constraints = [
            choices_check("state", KillSwitchState, "kill_switch_state_valid"),
            choices_check("scope", KillSwitchScope, "kill_switch_scope_valid"),
            choices_check("actor_type", ActorType, "kill_switch_actor_type_valid"),
            models.CheckConstraint(
                condition=Q(scope=KillSwitchScope.GLOBAL, strategy__isnull=True)
                | Q(scope=KillSwitchScope.STRATEGY, strategy__isnull=False),
                name="kill_switch_scope_matches_strategy",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="kill_switch_reason_required"),
            models.CheckConstraint(condition=~Q(actor=""), name="kill_switch_actor_required"),
            # Only a person may lift the switch.
            models.CheckConstraint(
                condition=~Q(state=KillSwitchState.ACTIVE) | Q(actor_type=ActorType.PERSON),
                name="kill_switch_resume_by_person",
            ),
        ]
        indexes = [
            models.Index(
                fields=["scope", "strategy", "-created_at"], name="kill_switch_current_idx"
            )
        ]
        triggers = append_only_triggers()

    def __str__(self) -> str:
        where = self.strategy or "global"
        return f"{self.state} ({where}) by {self.actor}"
