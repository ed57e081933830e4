"""The audit trail in the admin: read-only for everyone (no add, change or delete, even for a
superuser); auditors and administrators with the view permission can search and filter it.
Every value is shown through the admin's autoescaping (a username typed as markup stays text).

Who reads which rows (``checklist.permissions``): an auditor of some releases reads the events
tied to those releases; events tied to no release (sign-ins, lockouts, purges) and the purge
markers only an organisation-wide auditor (the group "Organisation auditors") or a superuser."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models_audit import AuditEvent, AuditPurge
from .permissions import audited_releases, is_organisation_auditor


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nothing added, changed or deleted here, whoever asks."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def organisation_wide(request: HttpRequest) -> bool:
    """Asked once per request: the list, its count and its date drill-down each ask."""
    if not hasattr(request, "_organisation_auditor"):
        request._organisation_auditor = is_organisation_auditor(request.user)
    return request._organisation_auditor


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "username", "release", "object_repr", "ip")
    list_filter = ("kind",)
    search_fields = ("username", "object_repr", "ip")
    date_hierarchy = "at"
    list_select_related = ("release",)
    readonly_fields = ("at", "actor", "username", "kind", "release", "object_repr", "ip", "detail")
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if organisation_wide(request):
            return queryset
        ids = sorted(audited_releases(request.user).values_list("pk", flat=True))
        return queryset.filter(release_id__in=ids)  # events tied to no release: never


@admin.register(AuditPurge)
class AuditPurgeAdmin(ReadOnlyAdmin):
    """The retention purges: when, the cutoff, the purge's audit event and which rows went."""

    list_display = ("at", "cutoff", "event")
    date_hierarchy = "at"
    list_select_related = ("event",)
    readonly_fields = ("at", "cutoff", "event", "purged")
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """A purge spans releases that no longer exist: organisation-wide auditors only."""
        queryset = super().get_queryset(request)
        return queryset if organisation_wide(request) else queryset.none()
