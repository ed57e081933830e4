"""What every admin page of the portal shares: the audited base class (history with a readable
diff, never a revert; rows and permissions scoped to the releases granted to the user) and the
small renderers the changelists use (status badge, pass/fail, owner). Every user string is
escaped (``format_html``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject, ModelChange
from simple_history.template_utils import HistoricalRecordContextHelper

from .admin_freeze import FrozenAdmin, FrozenRows, release_id_of
from .admin_reason import ReasonedAdmin
from .admin_version import VersionedAdmin
from .audit import audit_denied
from .choices import STATUS_EMOJI, ItemStatus
from .models import Release
from .permissions import managed_releases, visible_releases
from .targets import format_number

EMPTY = "—"

# Text colour and background per status: the word is always shown, colour is only a cue.
STATUS_COLOURS = {
    ItemStatus.COMPLETE: ("#14532d", "#dcfce7"),
    ItemStatus.IN_PROGRESS: ("#713f12", "#fef9c3"),
    ItemStatus.NOT_STARTED: ("#374151", "#f3f4f6"),
    ItemStatus.BLOCKED: ("#7f1d1d", "#fee2e2"),
    ItemStatus.AT_RISK: ("#7c2d12", "#ffedd5"),
}

_BADGE_STYLE = "padding:1px 6px;border-radius:8px;white-space:nowrap;color:{};background:{}"


def status_badge(status: str) -> SafeString:
    """A coloured label with the legend's symbol and the status word, e.g. '✅ Complete'."""
    try:
        status = ItemStatus(status)
    except ValueError:
        return format_html("{}", status or EMPTY)
    colour, background = STATUS_COLOURS[status]
    return format_html(
        '<span class="status-badge status-{}" style="' + _BADGE_STYLE + '">{} {}</span>',
        status.value,
        colour,
        background,
        STATUS_EMOJI[status],
        status.label,
    )


def pass_fail(target_met: bool | None) -> SafeString:
    """✔ pass / ✘ fail for a measured target; a dash when nothing is measured."""
    if target_met is None:
        return format_html('<span class="target-unmeasured" title="not measured">{}</span>', EMPTY)
    if target_met:
        return format_html('<span class="target-pass" style="color:#15803d">{}</span>', "✔ pass")
    return format_html(
        '<span class="target-fail" style="color:#b91c1c;font-weight:bold">{}</span>', "✘ fail"
    )


def owner_display(obj: Any) -> str:
    """The owning user when one is assigned, else the owner as the document wrote it."""
    if obj.owner_id is not None:
        return str(obj.owner)
    return obj.owner_label or EMPTY


class ReadableHistoryHelper(HistoricalRecordContextHelper):
    """History diffs in words: choice labels instead of stored codes, numbers as written
    (350, not 350.000000), Yes/No, and a dash for an empty value or an empty relation (which
    simple-history would call "Deleted user (pk=None)"). Escaping is left to the parent class,
    which escapes after shortening."""

    def prepare_delta_change_value(self, change: ModelChange, value: Any) -> Any:
        value = super().prepare_delta_change_value(change, value)
        field = self.model._meta.get_field(change.field)
        if isinstance(field, models.ManyToManyField):
            return value
        if value is None or value == "" or (isinstance(value, DeletedObject) and value.pk is None):
            return EMPTY
        if field.choices:
            return dict(field.flatchoices).get(value, value)
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, Decimal):
            return format_number(value)
        return value


def visible_ids(request: HttpRequest) -> frozenset[int]:
    """The releases the user may see, asked once per request (an admin page asks every model
    admin, for the app list and each permission check)."""
    if not hasattr(request, "_visible_release_ids"):
        request._visible_release_ids = frozenset(
            visible_releases(request.user).values_list("pk", flat=True)
        )
    return request._visible_release_ids


def managed_ids(request: HttpRequest) -> frozenset[int]:
    if not hasattr(request, "_managed_release_ids"):
        request._managed_release_ids = frozenset(
            managed_releases(request.user).values_list("pk", flat=True)
        )
    return request._managed_release_ids


def forget_access(request: HttpRequest) -> None:
    """After a change of grants within the request, ask again."""
    for name in ("_visible_release_ids", "_managed_release_ids"):
        request.__dict__.pop(name, None)


class ReleaseScoped(FrozenRows):
    """Rows and permissions follow the releases granted to the user (checklist.permissions):
    a superuser sees everything; anyone else sees the rows of releases they may view and
    changes, adds or deletes only in releases they manage. Model-level permissions never widen
    this (the Django admin alone would show every row to a user holding them).
    ``release_path`` leads from the model to its release; empty on the release itself."""

    release_path = "release"

    def _scoped(self, request: HttpRequest, releases: frozenset[int], obj: Any = None) -> bool:
        if obj is None:
            return bool(releases)
        release_id = release_id_of(obj, self.release_path)
        if release_id is None:  # not saved yet: allowed where the user manages some release
            return bool(releases)
        return release_id in releases

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        return self._scoped(request, visible_ids(request), obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self.frozen(request, obj):  # a decided release is read-only, for everyone
            return False
        if request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self._scoped(request, managed_ids(request), obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self.frozen(request, obj):
            return False
        if request.user.is_superuser:
            return super().has_delete_permission(request, obj)
        return self._scoped(request, managed_ids(request), obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return super().has_module_permission(request)
        return bool(visible_ids(request))


class ReleaseScopedInline(ReleaseScoped):
    """An inline on a release-owned page: the permissions of the page's object apply."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self.frozen(request, obj):
            return False
        if request.user.is_superuser:
            return super().has_add_permission(request, obj)
        return self._scoped(request, managed_ids(request), obj)


def _managed_choices(db_field: models.Field, request: HttpRequest) -> QuerySet | None:
    """A row can only be put in, or linked to, a release the user manages: the choices of a
    relation to a release, or to anything belonging to one, are limited to those releases."""
    if request.user.is_superuser:
        return None
    remote = db_field.remote_field.model
    managed = sorted(managed_ids(request))  # asked once per request, not once per field
    if remote is Release:
        return Release.objects.filter(pk__in=managed)
    if any(field.name == "release" for field in remote._meta.fields):
        return remote._default_manager.filter(release_id__in=managed)
    return None


def _is_release_path(entry: Any) -> bool:
    return isinstance(entry, str) and (entry == "release" or entry.endswith("__release"))


def _is_autocomplete(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    return match is not None and match.url_name == "autocomplete"


class VisibleReleaseFilter(admin.RelatedFieldListFilter):
    """The "By release" filter lists only the releases the user may see: the admin's own
    filter would name every release in the database."""

    def field_choices(self, field, request: HttpRequest, model_admin) -> list[tuple]:
        releases = Release.objects.filter(pk__in=visible_ids(request)).order_by(
            "-created_at", "version"
        )
        return [(release.pk, str(release)) for release in releases.only("name", "version")]


class AuditedAdmin(FrozenAdmin, VersionedAdmin, ReleaseScoped, ReasonedAdmin, SimpleHistoryAdmin):
    """Base for every model admin: rows scoped to the user's releases (``ReleaseScoped``),
    every write recorded with its reason (``ReasonedAdmin``), a change form refused when the
    row changed since the page was opened (``VersionedAdmin``), and a history page listing who
    changed what, when and why, with a readable ``field: old → new`` diff. History is
    read-only: there is no revert, whatever the settings say, and a POST to a historical
    version is refused with nothing written."""

    empty_value_display = EMPTY
    object_history_list_template = "admin/history_list.html"  # "System", never "None"

    def get_list_filter(self, request: HttpRequest) -> tuple:
        """Every "By release" filter, also one reached through a relation
        (``requirement__release``), lists only the releases the user may see."""
        return tuple(
            (entry, VisibleReleaseFilter) if _is_release_path(entry) else entry
            for entry in super().get_list_filter(request)
        )

    def get_changelist_instance(self, request: HttpRequest):
        """A filter value Django finds wrong (``?release__id__exact=abc``) answers 400 Bad
        Request (dcmms_release.input_guard), instead of the admin's redirect to the list
        without its filters, which would show every row as if the filter had applied."""
        try:
            return super().get_changelist_instance(request)
        except IncorrectLookupParameters:  # logged without the value it was sent
            raise BadRequest("Bad request: a list filter the list cannot apply") from None

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """An autocomplete answers for a form field that only accepts rows of releases the user
        manages (``_managed_choices``): it offers only those, not every row they may see."""
        queryset, duplicates = super().get_search_results(request, queryset, search_term)
        if _is_autocomplete(request) and not request.user.is_superuser:
            field = f"{self.release_path}__in" if self.release_path else "pk__in"
            queryset = queryset.filter(**{field: sorted(managed_ids(request))})
        if _is_autocomplete(request) and not queryset.ordered:
            queryset = queryset.order_by("pk")  # the autocomplete pages its answers
        return queryset, duplicates

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        # The ids asked once per request (visible_ids), not guardian's subquery in every query
        # of the page (list, count, filters).
        field = f"{self.release_path}__in" if self.release_path else "pk__in"
        return queryset.filter(**{field: sorted(visible_ids(request))})

    def has_add_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser or not self.release_path:
            return super().has_add_permission(request)
        return bool(managed_ids(request))

    # ------------------------------------------------ 404, never 403, for what is not granted
    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts, object_id: str):
        """A row outside the user's releases answers like a row that does not exist: 404 (the
        admin's default is a redirect with a message, which would still be an answer)."""
        raise Http404(f"No {opts.verbose_name} with this ID.")

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        """404 as soon as the row is not among the user's, before any permission check could
        answer 403 (a person with no release at all would otherwise get 403 for every id)."""
        obj = super().get_object(request, object_id, from_field)
        if obj is None and not request.user.is_superuser:
            raise Http404(f"No {self.model._meta.verbose_name} with this ID.")
        return obj

    def require_visible(self, request: HttpRequest, object_id: str) -> None:
        """404 unless the row (or, for a removed row, its last recorded state) belongs to a
        release the user may see."""
        if request.user.is_superuser:
            return
        object_id = unquote(object_id)
        if self.get_queryset(request).filter(pk=object_id).exists():
            return
        last = self.model.history.filter(**{self.model._meta.pk.attname: object_id}).first()
        if last is None or not self._scoped(request, visible_ids(request), last):
            raise Http404(f"No {self.model._meta.verbose_name} with this ID.")

    def history_view(self, request: HttpRequest, object_id: str, extra_context=None):
        self.require_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def _get_list_editable_queryset(self, request: HttpRequest, prefix: str) -> QuerySet:
        """Rows edited in place must belong to releases the user manages, whatever is posted."""
        queryset = super()._get_list_editable_queryset(request, prefix)
        if request.user.is_superuser:
            return queryset
        field = f"{self.release_path}__in" if self.release_path else "pk__in"
        return queryset.filter(**{field: managed_releases(request.user).values("pk")})

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        choices = _managed_choices(db_field, request)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs: Any):
        choices = _managed_choices(db_field, request)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_historical_record_context_helper(
        self, request: HttpRequest, historical_record: Any
    ) -> HistoricalRecordContextHelper:
        return ReadableHistoryHelper(self.model, historical_record)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context=None
    ) -> HttpResponse:
        self.require_visible(request, object_id)
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied("History is read-only: a past version cannot be restored.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def report_validation_error(
        self, request: HttpRequest, error: ValidationError, prefix: str = ""
    ) -> None:
        """Show a refused service call as an error message, one line per reason."""
        for message in error.messages:
            self.message_user(request, prefix + message, level=messages.ERROR)

    def report_denied(
        self, request: HttpRequest, error: PermissionDenied, prefix: str = "", *, release=None
    ) -> None:
        """Show a refusal for lack of right as an error message (never a 500, nothing written)
        and record it as a ``permission_denied`` audit event — once per request: a service that
        refused has recorded why already."""
        message = str(error) or "Permission denied."
        audit_denied(request, reason=prefix + message, release=release)
        self.message_user(request, prefix + message, level=messages.ERROR)
