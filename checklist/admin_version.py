"""No lost update in the admin: every change form of an audited row carries the version the page
was opened at, and its save is refused when the row changed since (the rule:
``checklist.versions``).

- The version travels in a hidden field (``row_version``), signed with the site's secret
  (``django.core.signing``) together with the model and the row's key: it cannot be made up,
  raised, or copied from another row's page. A missing, altered or foreign token is refused like
  a stale one ("reload the page"), never ignored.
- The check runs in the form's validation, inside the admin's save transaction, after taking the
  row's lock (``select_for_update``): of two saves of one version, the second waits for the
  first to commit, then sees its history entry and is refused with who changed the row, when and
  why. Nothing of the page is saved then (the form, its inlines, the history).
- Inline rows are covered by the page's own row: saving the page always writes a history entry
  of that row, so a second save of the same page is refused whatever it changed.

``VersionedAdmin`` is part of every ``AuditedAdmin``; a model without history is left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.core import signing
from django.db.models import Model
from django.http import HttpRequest

from .versions import GONE, NOT_VERIFIED, row_lock, row_version, stale_edit_refusals

logger = logging.getLogger(__name__)

VERSION_FIELD = "row_version"
_SALT = "checklist.admin_version"


def version_token(obj: Model) -> str:
    """The signed version of ``obj`` now, for the page being opened."""
    return signing.dumps([obj._meta.label_lower, str(obj.pk), row_version(obj)], salt=_SALT)


def token_version(token: str | None, obj: Model) -> int | None:
    """The version ``token`` was issued at for ``obj``; None when it is missing, altered, or
    was issued for another row."""
    if not token:
        return None
    try:
        label, pk, version = signing.loads(token, salt=_SALT)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    if label != obj._meta.label_lower or pk != str(obj.pk) or type(version) is not int:
        return None
    return version


class VersionField(forms.CharField):
    """The hidden, signed version: never a change of the row (no history reason, no log)."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, strip=True, **kwargs)

    def has_changed(self, initial: Any, data: Any) -> bool:
        return False


def versioned_form(form_class: type[forms.ModelForm]) -> type[forms.ModelForm]:
    """``form_class`` carrying the version it was opened at, refused when the row changed."""

    class Versioned(form_class):
        row_version = VersionField()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if not self.is_bound and self.instance.pk is not None:
                self.initial[VERSION_FIELD] = version_token(self.instance)

        def clean(self) -> dict[str, Any]:
            data = super().clean()
            for problem in self.version_refusals(self.cleaned_data.get(VERSION_FIELD)):
                self.add_error(None, problem)
            return data

        def version_refusals(self, token: str | None) -> list[str]:
            obj = self.instance
            if obj.pk is None:
                return []
            version = token_version(token, obj)
            if version is None:
                logger.warning(
                    "Refused an edit of %s %s: its version token is missing or not valid",
                    obj._meta.label,
                    obj.pk,
                )
                return [NOT_VERIFIED]
            if not row_lock(obj):
                return [GONE]
            return stale_edit_refusals(obj=obj, version=version)

    Versioned.__name__ = Versioned.__qualname__ = form_class.__name__
    return Versioned


def _has_history(model: type[Model]) -> bool:
    return hasattr(model._meta, "simple_history_manager_attribute")


class VersionedAdmin:
    """The change form of a row with history carries its signed version (module docstring).
    Only a page its user may save gets one: a read-only page needs no version."""

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if (
            not change
            or obj is None
            or not _has_history(self.model)
            or not self.has_change_permission(request, obj)
        ):
            return form
        return versioned_form(form)
