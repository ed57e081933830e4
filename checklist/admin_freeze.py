"""A decided release is read-only in the admin. The rule and its refusals live in
``signoffs.freeze`` (every write to a row of a decided release refuses, whatever the path); the
admin only asks first, so that a user sees a read-only page and a clear message, never a 500
and never "changed successfully" when nothing changed:

- ``FrozenRows`` (part of ``ReleaseScoped``): no change, delete or inline add on a row of a
  decided release, for anyone (a superuser too); its page opens read-only.
- ``FrozenAdmin`` (part of ``AuditedAdmin``): the banner "Decided: DEFER on …, by …; reopen to
  change." on the change page of the release and of its rows; every bulk action (delete
  included) refuses with an error message when a selected row belongs to a decided release,
  unless the admin names it in ``freeze_exempt_actions``; an add or change form that would put
  a row into a decided release is refused on the form; list_editable rows of a decided release
  are not saved.
"""

from __future__ import annotations

import functools
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from signoffs.freeze import (
    FROZEN_MODELS,
    Decision,
    banner_text,
    release_change_refusals,
    release_decision,
)

from .choices import ReleaseStatus
from .models import Release
from .permissions import managed_releases


def release_id_of(obj: Any, path: str) -> int | None:
    """The key of the release ``obj`` belongs to, following ``path`` (empty: obj is one)."""
    if not path:
        return obj.pk
    *hops, last = path.split("__")
    for hop in hops:
        obj = getattr(obj, hop, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


def release_frozen(request: HttpRequest, release_id: int) -> bool:
    """Whether the release is decided, read from the database once per release and request
    (the admin asks the permission questions many times while rendering one page)."""
    statuses = request.__dict__.setdefault("_release_statuses", {})
    if release_id not in statuses:
        statuses[release_id] = (
            Release.objects.filter(pk=release_id).values_list("status", flat=True).first()
        )
    return statuses[release_id] == ReleaseStatus.DECIDED


def decision_html(decision: Decision | None) -> SafeString | str:
    """The final decision as the release list shows it: "DEFER on 2026-11-02 by …", or a
    warning when its signature is no longer valid (the release was reopened)."""
    if decision is None:
        return "—"
    if decision.is_valid:
        return format_html(
            '<strong class="decision decision-{}">{}</strong> on {} by {}',
            decision.meaning,
            decision.label,
            decision.date,
            decision.by,
        )
    return format_html(
        '<span class="decision-stale" style="color:#b45309;font-weight:bold">⚠ {} on {} by {}'
        " — {}</span>",
        decision.label,
        decision.date,
        decision.by,
        decision.state_label,
    )


class FrozenRows:
    """Answers "is this row frozen?" for the permission hooks of a release-scoped admin."""

    release_path = "release"

    def frozen(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None or self.model._meta.label not in FROZEN_MODELS:
            return False
        if isinstance(obj, Release) and obj.pk is not None:  # just read: its status is current
            request.__dict__.setdefault("_release_statuses", {}).setdefault(obj.pk, obj.status)
        release_id = release_id_of(obj, self.release_path)
        return release_id is not None and release_frozen(request, release_id)


def _refusing_frozen_rows(action, release_path: str):
    """The action, refused as a whole (nothing run, one error per decided release) when a
    selected row belongs to a decided release."""

    @functools.wraps(action)
    def guarded(modeladmin, request: HttpRequest, queryset: QuerySet):
        ids = queryset.values(f"{release_path}__pk" if release_path else "pk")
        decided = Release.objects.filter(pk__in=ids, status=ReleaseStatus.DECIDED)
        refusals = [r for release in decided for r in release_change_refusals(release=release)]
        for refusal in refusals:
            modeladmin.message_user(request, f"{refusal} Nothing was changed.", messages.ERROR)
        if refusals:
            return None
        return action(modeladmin, request, queryset)

    return guarded


def _refusing_frozen_release(form_class: type[forms.ModelForm], release_path: str):
    """The model form, refused when its row is in, or would be put into, a decided release."""
    hop, _, rest = release_path.partition("__")

    class Guarded(form_class):
        def clean(self) -> dict[str, Any]:
            data = super().clean()
            if not hop:  # the release itself
                target = self.instance
            elif hop in self.fields:
                target = data.get(hop)
            else:
                target = getattr(self.instance, hop, None)
            release_id = release_id_of(target, rest) if target is not None else None
            if release_id is not None:
                for refusal in release_change_refusals(release=release_id):
                    self.add_error(hop if hop in self.fields else None, refusal)
            return data

    Guarded.__name__ = Guarded.__qualname__ = form_class.__name__
    return Guarded


class FrozenAdmin(FrozenRows):
    """The admin hooks of a decided release (see the module docstring)."""

    # Actions that write no row of the release, or whose service refuses a decided one itself.
    freeze_exempt_actions: tuple[str, ...] = ()

    def _guards_frozen(self) -> bool:
        return self.model._meta.label in FROZEN_MODELS

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not self._guards_frozen():
            return actions
        return {
            name: (
                (func, *rest)
                if name in self.freeze_exempt_actions
                else (_refusing_frozen_rows(func, self.release_path), *rest)
            )
            for name, (func, *rest) in actions.items()
        }

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if not self._guards_frozen():
            return form
        return _refusing_frozen_release(form, self.release_path)

    def get_changelist_form(self, request: HttpRequest, **kwargs):
        """A list edited in place: a row of a decided release is refused on its row (the list
        says "Please correct the errors below") and nothing of the list is saved."""
        form = super().get_changelist_form(request, **kwargs)
        if not self._guards_frozen():
            return form
        return _refusing_frozen_release(form, self.release_path)

    def render_change_form(self, request: HttpRequest, context: dict, *args, **kwargs):
        obj = kwargs.get("obj", args[3] if len(args) > 3 else None)
        if self.frozen(request, obj):
            release_id = release_id_of(obj, self.release_path)
            context["frozen_banner"] = banner_text(release_decision(release_id))
            user = request.user
            if user.is_superuser or managed_releases(user).filter(pk=release_id).exists():
                context["frozen_reopen_url"] = reverse(
                    "admin:checklist_release_reopen", args=[release_id]
                )
        return super().render_change_form(request, context, *args, **kwargs)
