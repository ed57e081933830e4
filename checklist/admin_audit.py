"""The audit trail in the admin: read-only for everyone (no add, change or delete, even for a
superuser); auditors and administrators with the view permission can search and filter it.
Every value is shown through the admin's autoescaping (a username typed as markup stays text)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models_audit import AuditEvent, AuditPurge


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nothing added, changed or deleted here, whoever asks."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "username", "release", "object_repr", "ip")
    list_filter = ("kind",)
    search_fields = ("username", "object_repr", "ip")
    date_hierarchy = "at"
    list_select_related = ("release",)
    readonly_fields = ("at", "actor", "username", "kind", "release", "object_repr", "ip", "detail")
    fields = readonly_fields


@admin.register(AuditPurge)
class AuditPurgeAdmin(ReadOnlyAdmin):
    """The retention purges: when, the cutoff, the purge's audit event and which rows went."""

    list_display = ("at", "cutoff", "event")
    date_hierarchy = "at"
    list_select_related = ("event",)
    readonly_fields = ("at", "cutoff", "event", "purged")
    fields = readonly_fields
