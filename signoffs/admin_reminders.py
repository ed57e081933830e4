"""Admin for the review reminders: the dispatch log (who got which digest about which release on
which day, its status and attempts — read-only, it is the record) and the PM's "Send this
release's digests now" action on the release list, which re-checks that the user manages each
release and calls ``release_digests_send``. Registered by one import at the end of
``signoffs/admin.py``; the action is added to the registered release admin. A claim older than
``REMINDER_CLAIM_STALE_MINUTES`` (its worker died before the send was recorded) is shown as
stuck, with its age, and the "Stuck claims" filter lists those beat will send again."""

from __future__ import annotations

import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from checklist.admin_base import managed_ids
from checklist.models import Release

from .admin import ReadOnlyAdmin
from .choices import DispatchStatus
from .models import ReminderDispatch
from .reminder_recovery import is_stuck, stale_cutoff, stale_minutes
from .reminder_services import Outcome, release_digests_send


def _age(delta: datetime.timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours // 24} days"


class StuckFilter(admin.SimpleListFilter):
    """Claims older than the stale limit: their worker died before recording a send."""

    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", f"Stuck claims (over {stale_minutes()} min)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(status=DispatchStatus.CLAIMED, claimed_at__lt=stale_cutoff())
        return queryset


@admin.register(ReminderDispatch)
class ReminderDispatchAdmin(ReadOnlyAdmin):
    """One row per digest claimed: recipient, release, day, status (claimed, sent, failed),
    attempts, the last mail-server error, and what the digest said."""

    list_display = (
        "date",
        "recipient",
        "release__version",
        "status",
        "claim_age",
        "attempts",
        "sent_at",
        "subject_short",
    )
    list_filter = ("status", StuckFilter, "date", "release")
    search_fields = ("recipient__username", "recipient__email", "subject", "release__version")
    list_select_related = ("recipient", "release")
    date_hierarchy = "date"
    fields = (
        "recipient",
        "release",
        "date",
        "status",
        "attempts",
        "claimed_at",
        "sent_at",
        "subject",
        "summary",
        "last_error",
    )
    readonly_fields = fields

    @admin.display(description="Claimed for", ordering="claimed_at")
    def claim_age(self, obj: ReminderDispatch) -> str | SafeString:
        """How long a claim has waited for its outcome; "stuck" past the stale limit."""
        if obj.status != DispatchStatus.CLAIMED:
            return "—"
        age = _age(timezone.now() - obj.claimed_at)
        if is_stuck(obj):
            return format_html('<strong class="dispatch-stuck">Stuck, {}</strong>', age)
        return age

    @admin.display(description="Subject", ordering="subject")
    def subject_short(self, obj: ReminderDispatch) -> str:
        return Truncator(obj.subject).chars(90)


@admin.action(description="Send this release's digests now", permissions=["change"])
def send_digests_now(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    """For each selected release the user manages: send today's digests in this request (a
    digest already sent today is not sent again); a release they do not manage is refused."""
    today = timezone.localdate()
    managed = managed_ids(request)
    for release in queryset.select_related("owner"):
        if not (request.user.is_superuser or release.pk in managed):
            refusal = PermissionDenied("you do not manage this release.")
            modeladmin.report_denied(request, refusal, prefix=f"{release}: ", release=release)
            continue
        try:
            results = release_digests_send(release=release, date=today, by=request.user)
        except PermissionDenied as error:
            modeladmin.report_denied(request, error, release=release)
            continue
        except ValidationError as error:
            modeladmin.report_validation_error(request, error)
            continue
        sent = sum(1 for r in results if r.outcome == Outcome.SENT)
        already = sum(1 for r in results if r.outcome == Outcome.ALREADY)
        failed = [r for r in results if r.outcome == Outcome.FAILED]
        modeladmin.log_change(request, release, f"Digests sent now: {sent}.")
        level = messages.WARNING if failed else messages.SUCCESS
        text = f"{release}: {sent} digest(s) sent, {already} already sent today"
        if failed:
            text += f", {len(failed)} failed (retry later): {failed[0].error}"
        elif not results:
            text += " (nobody has anything to act on)"
        modeladmin.message_user(request, text + ".", level)


def _add_release_action() -> None:
    release_admin = admin.site._registry.get(Release)
    if release_admin is not None and send_digests_now not in release_admin.actions:
        release_admin.actions = (*release_admin.actions, send_digests_now)


_add_release_action()
