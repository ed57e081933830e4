"""The reason for change in the admin (§11.10(e): the audit trail says why).

- ``ReasonForChangeForm`` / ``ReasonForChangeAdmin``: the edit forms of items, risks, action
  items and criteria carry a "Reason for change" field. When it is required is decided by
  ``checklist.change_reasons.change_reason_refusals`` (a release under review: yes; a draft:
  no), and the refusal is shown on the field.
- ``ReasonedAdmin`` (part of every ``AuditedAdmin``): each admin write passes its reason on to
  the history — the one given, else a readable default naming what changed (``Changed in the
  admin: status, actual value``, ``Added in the admin``, ``Deleted in the admin``), for the
  page's row, its inline rows, a deletion and the rows it cascades to, and list_editable rows.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest

from .change_reasons import (
    NOTHING_CHANGED,
    change_reason_refusals,
    default_reason,
    field_label,
    reason_text,
)

REASON_FIELD = "change_reason"
ADDED = "Added in the admin"
CHANGED = "Changed in the admin"
DELETED = "Deleted in the admin"


def given_reason(form: forms.BaseForm | None) -> str:
    """The reason typed in the form, stripped; empty when none (or no such field)."""
    data = getattr(form, "cleaned_data", None) or {}
    return (data.get(REASON_FIELD) or "").strip()


def admin_change_reason(form: forms.BaseForm, *, change: bool) -> str:
    """The history's reason for an admin save: the one given, else what the form changed."""
    given = given_reason(form)
    if given:
        return given
    if not change:
        return ADDED
    model = form._meta.model
    names = [name for name in form.changed_data if name != REASON_FIELD]
    if not names:
        return f"{NOTHING_CHANGED} in the admin"
    return reason_text(CHANGED, fields=(field_label(model, name) for name in names))


class ReasonForChangeForm(forms.ModelForm):
    """A model form with the "Reason for change"; refused empty when the rule requires it."""

    change_reason = forms.CharField(
        label="Reason for change",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text=(
            "Why this change is made; kept in the history with your name. Required while the "
            "release is in review; in a draft, left empty, the changed fields are recorded."
        ),
    )

    def _releases(self) -> list[Any]:
        """The releases the change touches: the row's own, and the one it is moved to."""
        releases = []
        if getattr(self.instance, "release_id", None):
            releases.append(self.instance.release)
        chosen = getattr(self, "cleaned_data", {}).get("release")
        if chosen is not None:
            releases.append(chosen)
        return releases

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for problem in change_reason_refusals(
            releases=self._releases(), reason=data.get(REASON_FIELD, "")
        ):
            self.add_error(REASON_FIELD, problem)
        return data


def _history_page(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and (match.url_name or "").endswith("_simple_history"))


class ReasonForChangeAdmin:
    """A model admin whose edit page ends with the "Reason for change" (its form must be a
    ``ReasonForChangeForm``). Shown only to someone who may save the page."""

    form = ReasonForChangeForm
    reason_fieldset = ("Reason for change", {"fields": (REASON_FIELD,)})

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            may_save = self.has_add_permission(request)
        else:
            may_save = self.has_change_permission(request, obj)
        if may_save and not _history_page(request):
            fieldsets.append(self.reason_fieldset)
        return fieldsets


class ReasonedAdmin:
    """Every admin write leaves its reason in the history (see the module docstring)."""

    def save_model(self, request: HttpRequest, obj: Any, form, change: bool) -> None:
        obj._change_reason = admin_change_reason(form, change=change)
        super().save_model(request, obj, form, change)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        given = given_reason(form)
        deleted = set(map(id, formset.deleted_forms))
        for row in formset.forms:
            if id(row) in deleted:
                row.instance._change_reason = given or DELETED
            elif row.has_changed():
                row.instance._change_reason = given or admin_change_reason(
                    row, change=row.instance.pk is not None
                )
        super().save_formset(request, form, formset, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        obj._change_reason = DELETED
        name = obj._meta.verbose_name
        with default_reason(f"{DELETED} with the {name} “{str(obj)[:80]}”"):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with default_reason(f"{DELETED} (selected {queryset.model._meta.verbose_name_plural})"):
            super().delete_queryset(request, queryset)
