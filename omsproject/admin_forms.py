"""Admin forms that speak in words, and changes that are confirmed with a reason.

``ConstraintWordsForm``: a database rule Django checks before saving (a model's check or
unique constraint) reads as the field and its rule (omsproject.constraint_words), never as
"Constraint “risk_limit_loss_positive” is violated."

``ConfirmedChangeAdmin``: saving a change of a controlled object (a strategy, a limit) first
shows a page listing each field's old → new value and asks for a reason; only that page's
POST, with the reason, saves it. The admin's save_model / save_formset pass the reason
(``change_reason(request)``) to the services that make the change and record it in the
admin's change log (risk.audit), so Django's own "Changed Status" entry is not written.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib.admin.utils import unquote
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms.formsets import all_valid
from django.template.response import TemplateResponse

from omsproject.admin_tools import inr
from omsproject.constraint_words import NON_FIELD, constraint_words, named_constraint_in

CONFIRM_FLAG = "_confirm_change"
REASON_FIELD = "_change_reason"


class ConstraintWordsForm(forms.ModelForm):
    """A ModelForm whose constraint errors name the field and the rule in words."""

    def _update_errors(self, errors):
        super()._update_errors(self._in_words(errors))

    def _in_words(self, errors: ValidationError) -> ValidationError:
        by_field = errors.error_dict if hasattr(errors, "error_dict") else {NON_FIELD: errors}
        worded: dict[str, list] = {}
        for field, found in by_field.items():
            for error in found if isinstance(found, list) else found.error_list:
                text = " ".join(error.messages) if isinstance(error, ValidationError) else error
                name = named_constraint_in(str(text))
                words = constraint_words(name) if name else None
                if words is None:
                    worded.setdefault(field, []).append(error)
                    continue
                target, rule = words
                if target not in self.fields:
                    target = NON_FIELD_ERRORS
                worded.setdefault(target, []).append(ValidationError(rule, code="rule"))
        return ValidationError(worded)


def change_reason(request) -> str:
    """The reason typed on the confirmation page (blank when none)."""
    return (request.POST.get(REASON_FIELD) or "").strip()


def _shown(value, name: str = "") -> str:
    """A value as the confirmation page shows it: amounts in rupees (a percentage as one)."""
    if value is None or value == "":
        return "blank"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value}%" if "percent" in name else inr(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class ConfirmedChangeAdmin:
    """A ModelAdmin mixin: a change (and, with ``confirm_additions``, an addition) is saved
    only from a confirmation page that lists old → new values and requires a reason."""

    confirm_additions = False
    confirm_change_template = "admin/oms_confirm_change.html"

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and "_popup" not in request.POST:
            pending = self._pending_changes(request, object_id)
            if pending is not None:
                confirmed = request.POST.get(CONFIRM_FLAG) == "yes"
                if not confirmed or not change_reason(request):
                    error = "reason: required for this change" if confirmed else ""
                    return self._confirmation(request, pending, error=error)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def log_change(self, request, obj, message):
        # The services wrote the entry (old → new and the reason); Django's "Changed Status"
        # would only repeat it with less.
        if request.POST.get(CONFIRM_FLAG) == "yes":
            return None
        return super().log_change(request, obj, message)

    def _pending_changes(self, request, object_id):
        """(object, [(what, old, new)]) the POST would save, or None: nothing to confirm (no
        change, an invalid form — the form page shows its errors — or no permission)."""
        add = object_id is None
        if add and not self.confirm_additions:
            return None
        obj = None if add else self.get_object(request, unquote(object_id))
        if not add and (obj is None or not self.has_change_permission(request, obj)):
            return None
        if add and not self.has_add_permission(request):
            return None
        before = None if add else self.get_object(request, unquote(object_id))
        form = self.get_form(request, obj, change=not add)(
            request.POST, request.FILES, instance=obj
        )
        valid = form.is_valid()
        formsets, _ = self._create_formsets(request, form.instance, change=not add)
        if not (all_valid(formsets) and valid):
            return None
        lines = [
            (
                str(form.fields[name].label or name),
                _shown(getattr(before, name, None), name),
                _shown(form.cleaned_data.get(name), name),
            )
            for name in form.changed_data
        ]
        for formset in formsets:
            for inline_form in formset.forms:
                if not inline_form.has_changed():
                    continue
                scope = str(formset.model._meta.verbose_name)
                for name in inline_form.changed_data:
                    lines.append(
                        (
                            f"{scope}: {inline_form.fields[name].label or name}",
                            _shown(inline_form.initial.get(name), name),
                            _shown(inline_form.cleaned_data.get(name), name),
                        )
                    )
        # A field the form calls changed whose value reads the same (a JSON field's "{}") is
        # no change: the services compare the values too, and record nothing for it.
        lines = [(what, old, new) for what, old, new in lines if old != new]
        if not lines:
            return None
        return before, lines

    def _confirmation(self, request, pending, *, error: str = ""):
        obj, lines = pending
        kept = [
            (key, value)
            for key, values in request.POST.lists()
            if key not in ("csrfmiddlewaretoken", CONFIRM_FLAG, REASON_FIELD)
            for value in values
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Confirm the change of {obj}" if obj else "Confirm the new row",
            "object": obj,
            "lines": lines,
            "kept": kept,
            "reason": change_reason(request),
            "reason_error": error,
            "confirm_flag": CONFIRM_FLAG,
            "reason_field": REASON_FIELD,
        }
        return TemplateResponse(request, self.confirm_change_template, context)
