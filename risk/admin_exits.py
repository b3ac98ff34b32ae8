"""Targeted exits from the admin: flatten every open position of the desk, of one strategy
(``?strategy=<id>``, from the strategy's page) or one position (``?position=<id>``, from the
position's page). The page lists the exact orders the exit will place (symbol, side,
quantity, product, type: positions.exits.exit_plans) and requires a reason; the POST places
them through positions.exits (the one owner of exits) and records who and why: on each exit
order (its actor and metadata) and in the admin's log of each position.

Who may: ``risk.change_kill_switch`` (risk officers, risk.roles), as for the kill switch.
Under a HALT no order passes, exits included: the page says so and offers no button.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse

from omsproject.money_format import plural
from positions.exits import exit_plans, position_flatten, positions_flatten
from positions.models import Position
from risk.models import KillSwitchState
from risk.selectors import kill_switch_state


def _position_scope(request) -> Position | None:
    """The position ``?position=<id>`` names (None without one); a value naming none is a
    404, never a wider scope."""
    raw = request.GET.get("position", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise Http404(f"position {raw!r}: must be a position id, as ?position=<id>")
    position = Position.objects.select_related("strategy").filter(pk=int(raw)).first()
    if position is None:
        raise Http404(f"position {raw}: not found")
    return position


def flatten_page(model_admin, request, *, form_class, strategy_scope, open_positions_of):
    """GET: the positions of the scope and the orders their exits will place. POST with a
    reason: the exits, through position_flatten (one position) or positions_flatten."""
    if not model_admin.has_switch_permission(request):
        raise PermissionDenied
    position = _position_scope(request)
    strategy = position.strategy if position is not None else strategy_scope(request)
    if position is not None:
        positions = [position] if position.is_open else []
        back = reverse("admin:positions_position_change", args=[position.pk])
    else:
        positions = open_positions_of(strategy)
        back = reverse("admin:risk_kill_switch")
    halted = kill_switch_state(strategy=strategy) == KillSwitchState.HALTED
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid() and positions and not halted:
        reason = form.cleaned_data["reason"]
        actor = request.user.get_username()
        if position is not None:
            results = [position_flatten(position, actor=actor, reason=reason)]
        else:
            results = positions_flatten(actor=actor, reason=reason, strategy=strategy)
        for result in results:
            model_admin.log_change(
                request, result.position, f"Flatten: {result.describe()} — {reason}"
            )
        failed = [result for result in results if result.failed]
        for result in failed:
            model_admin.message_user(request, result.describe(), messages.ERROR)
        model_admin.message_user(
            request,
            f"{len(results) - len(failed)} of {plural(len(results), 'position')} closing"
            + (f"; {plural(len(failed), 'exit')} FAILED (listed above)" if failed else "")
            + ".",
            messages.WARNING if failed else messages.SUCCESS,
        )
        return HttpResponseRedirect(back)
    plans = exit_plans(positions)
    return model_admin._render(
        request,
        "flatten",
        title="Close this position?" if position is not None else "Flatten positions?",
        positions=positions,
        plans=plans,
        orders_planned=sum(len(plan.orders) for plan in plans),
        position=position,
        strategy=strategy,
        halted=halted,
        form=form,
        back=back,
    )
